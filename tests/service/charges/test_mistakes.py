"""The mistakes public calculators make, each shown not to be made here (figures by hand)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

from service.charges import SHIPPED, Fills, charges, flat_plan, load_schedule

DAY = dt.date(2026, 4, 1)
NO_BROKERAGE = flat_plan(0)
ONE_CRORE = 1_00_00_000_00  # Rs 1 crore in paise


def test_the_sebi_fee_is_rs_10_a_crore_not_rs_1():
    # futures bought and sold at Rs 50 lakh each: T = Rs 1 crore, SEBI fee Rs 10 = 1000 p
    # (the mistake, 1e-7 x T, gives Rs 1 = 100 p)
    fills = Fills((ONE_CRORE // 2,), (ONE_CRORE // 2,))
    assert charges(fills, "futures", "NSE", DAY, NO_BROKERAGE).sebi == 1000


def test_gst_includes_the_sebi_fee():
    # the same Rs 1 crore of futures turnover, no brokerage:
    # exch 0.00173 % x Rs 1 crore = Rs 173 = 17 300 p; SEBI 1000 p
    # GST 0.18 x (17 300 + 1000) = 3294 p; without the SEBI fee it would be 0.18 x 17 300 = 3114 p
    fills = Fills((ONE_CRORE // 2,), (ONE_CRORE // 2,))
    got = charges(fills, "futures", "NSE", DAY, NO_BROKERAGE)
    assert (got.exchange_txn, got.sebi, got.gst) == (17300, 1000, 3294)


def test_neither_gst_nor_stamp_is_charged_on_stt(tmp_path):
    # delivery, Rs 1 lakh bought and sold on NSE, no brokerage:
    # STT 0.1 % x 2 lakh = Rs 200 = 20 000 p; exch 0.00297 % x 2 lakh = Rs 5.94 = 594 p; SEBI 20 p
    # GST 0.18 x (594 + 20) = 110.52 -> 111 p (on STT too it would be 0.18 x 20 614 = 3710.52 p)
    # stamp 0.015 % x 1 lakh = Rs 15 = 1500 p (on B + STT it would be 1503 p)
    fills = Fills((1_00_000_00,), (1_00_000_00,))
    got = charges(fills, "equity_delivery", "NSE", DAY, NO_BROKERAGE)
    assert (got.stt, got.exchange_txn, got.sebi, got.gst, got.stamp) == (20000, 594, 20, 111, 1500)
    # and with STT ten times higher, GST and stamp do not move
    document = json.loads(SHIPPED.read_text())
    for version in document["versions"]:
        version["segments"]["equity_delivery"]["stt"]["percent"] = "1"
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(document))
    dearer = charges(fills, "equity_delivery", "NSE", DAY, NO_BROKERAGE, schedule=load_schedule(path))
    assert dearer.stt == 200000
    assert dataclasses.replace(dearer, stt=got.stt, total=got.total) == got


def test_stamp_duty_is_on_the_buy_side_only():
    # a sell alone pays no stamp duty; a round trip pays it on the buy: 0.003 % x Rs 80 000 = 240 p
    for segment in ("equity_intraday", "equity_delivery", "futures", "options"):
        assert charges(Fills(sells=(81000_00,)), segment, "NSE", DAY, NO_BROKERAGE).stamp == 0
    assert charges(Fills.round_trip(100, 800_00, 810_00), "equity_intraday", "NSE", DAY, NO_BROKERAGE).stamp == 240
    # a buy alone pays it all; doubling the sell changes nothing
    bought = charges(Fills(buys=(80000_00,)), "equity_intraday", "NSE", DAY, NO_BROKERAGE).stamp
    sold_more = charges(Fills((80000_00,), (162000_00,)), "equity_intraday", "NSE", DAY, NO_BROKERAGE).stamp
    assert bought == sold_more == 240


def test_rates_are_exact_decimals():
    assert load_schedule().rates("futures", "NSE", DAY).exchange_txn.percent == Decimal("0.00173")
