from __future__ import annotations

import pytest

from service.charges import Uncharged, segment_of


@pytest.mark.parametrize(("exchange", "product", "option", "future", "expected"), [
    ("NSE", "INTRADAY", False, False, ("equity_intraday", "NSE")),
    ("BSE", "DELIVERY", False, False, ("equity_delivery", "BSE")),
    ("NFO", "INTRADAY", True, False, ("options", "NSE")),
    ("NFO", "CARRYFORWARD", False, True, ("futures", "NSE")),
    ("BFO", "INTRADAY", True, False, ("options", "BSE")),
])
def test_segment_of(exchange, product, option, future, expected):
    assert segment_of(exchange, product, option=option, future=future) == expected


@pytest.mark.parametrize(("exchange", "option", "future"), [("MCX", False, True), ("NFO", False, False),
                                                            ("NFO", True, True)])
def test_what_the_schedule_does_not_cover_is_named(exchange, option, future):
    with pytest.raises(Uncharged) as caught:
        segment_of(exchange, "INTRADAY", option=option, future=future)
    assert caught.value.exchange == exchange
