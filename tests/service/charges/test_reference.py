"""The calculator against a plain reference: the formula with Fractions and the rates written here.

The rates below are typed from the published schedule independently of `schedule.json`, so a wrong
rate in the file, a charge on the wrong side, or a rounding slip in the calculator shows up here.
"""
from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction as F

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.charges import Fills, FillsError, PercentOfOrder, charges, flat_plan
from service.charges.brokerage import BrokeragePlan

PCT = F(1, 100)
BUDGET_2026 = dt.date(2026, 4, 1)
STT = {  # (percent, on what) before / from 2026-04-01
    "equity_intraday": (F("0.025"), F("0.025"), "S"),
    "equity_delivery": (F("0.1"), F("0.1"), "B+S"),
    "futures": (F("0.02"), F("0.05"), "S"),
    "options": (F("0.1"), F("0.15"), "S"),
}
EXCH = {("equity_intraday", "NSE"): F("0.00297"), ("equity_delivery", "NSE"): F("0.00297"),
        ("futures", "NSE"): F("0.00173"), ("options", "NSE"): F("0.03503"),
        ("equity_intraday", "BSE"): F("0.00375"), ("equity_delivery", "BSE"): F("0.00375"),
        ("futures", "BSE"): F(0), ("options", "BSE"): F("0.0325")}
STAMP = {"equity_intraday": F("0.003"), "equity_delivery": F("0.015"), "futures": F("0.002"), "options": F("0.003")}


def half_up(x: F) -> int:
    return math.floor(x + F(1, 2))


def reference(buys, sells, segment, exchange, day, brokerage_per_order) -> tuple[int, ...]:
    b, s = sum(buys), sum(sells)
    before, after, on = STT[segment]
    stt = (before if day < BUDGET_2026 else after) * PCT * (s if on == "S" else b + s)
    brokerage = half_up(sum((F(brokerage_per_order(v)) for v in buys + sells), F(0)))
    exch = half_up(EXCH[(segment, exchange)] * PCT * (b + s))
    sebi = half_up(F(10 * 100, 10**7 * 100) * (b + s))  # Rs 10 a crore
    stamp = half_up(STAMP[segment] * PCT * b)
    gst = half_up(F(18, 100) * (brokerage + exch + sebi))
    parts = (brokerage, half_up(stt), exch, sebi, stamp, gst)
    return parts + (sum(parts),)


orders = st.lists(st.tuples(st.integers(1, 100_000), st.integers(5, 5_000_000)).map(lambda qp: qp[0] * qp[1]),
                  max_size=4).map(tuple)
days = st.dates(dt.date(2024, 10, 1), dt.date(2027, 12, 31)) | st.sampled_from([dt.date(2026, 3, 31), BUDGET_2026])
plans = st.sampled_from([
    (flat_plan(20), lambda v: 2000),
    (flat_plan(0), lambda v: 0),
    (BrokeragePlan("pct", {s: PercentOfOrder("0.25", cap_paise=2000, minimum_paise=200) for s in STT}),
     lambda v: max(min(F(25, 10000) * v, 2000), 200)),
    (BrokeragePlan("uncapped", {s: PercentOfOrder("0.03") for s in STT}), lambda v: F(3, 10000) * v),
])


@given(buys=orders, sells=orders, segment=st.sampled_from(sorted(STT)), exchange=st.sampled_from(["NSE", "BSE"]),
       day=days, plan=plans)
def test_the_calculator_agrees_with_the_reference(buys, sells, segment, exchange, day, plan):
    got = charges(Fills(buys, sells), segment, exchange, day, plan[0])
    assert (got.brokerage, got.stt, got.exchange_txn, got.sebi, got.stamp, got.gst, got.total) == \
        reference(buys, sells, segment, exchange, day, plan[1])


@pytest.mark.parametrize(("make", "field"), [
    (lambda: Fills(buys=(100, 0)), "buys[1]"),
    (lambda: Fills(sells=(-5,)), "sells[0]"),
    (lambda: Fills(buys=(12.5,)), "buys[0]"),
    (lambda: Fills(buys=(True,)), "buys[0]"),
    (lambda: Fills.round_trip(0, 100, 100), "quantity"),
])
def test_fills_that_cannot_be_charged_are_refused(make, field):
    with pytest.raises(FillsError) as caught:
        make()
    assert caught.value.field == field
