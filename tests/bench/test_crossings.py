"""bench._crossings: the crossing tick and the exit's tag of a trade, and the sample's arithmetic."""
from __future__ import annotations

import pytest

from bench._crossings import Crossing, Exit


def test_the_crossing_tick_is_just_through_the_stop_on_the_price_grid():
    crossing = Crossing(trade_id=36, exchange="NSE", token="3045", stop=80_000)
    assert crossing.tag == "tg10X1"  # the exit's order tag: the trade id in base 36
    assert crossing.ltp == 79_840 and crossing.ltp % 5 == 0 and crossing.ltp < crossing.stop
    assert Crossing(1, "NSE", "1", stop=100_003).ltp == 99_800


def test_an_exit_is_timed_from_the_tick_sent_or_played():
    sample = Exit(asked_ns=0, played_ns=1_000_000, sent_ns=1_500_000, received_ns=4_000_000)
    assert (sample.from_played_ms, sample.from_sent_ms) == (3.0, 2.5)
    unsent = Exit(asked_ns=0, played_ns=1_000_000, sent_ns=None, received_ns=4_000_000)
    with pytest.raises(ValueError, match="sent to no socket"):
        unsent.from_sent_ms
