"""The replay against a naive reference: for any tick path and a points or entry_pct stop, the exit is
the first tick at or through the stop level, and P&L gross = (exit − entry) × quantity × side."""
from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from tests.service.replay.synth import plan, replay, rules, ticks


def reference_level(entry: int, long: bool, kind: str, value: Fraction, tick: int = 5) -> int:
    distance = value * 100 if kind == "points" else entry * value / 100
    if long:  # towards the entry, at least a tick away from it
        return min(math.ceil((entry - distance) / tick) * tick, entry - tick)
    return max(math.floor((entry + distance) / tick) * tick, entry + tick)


def reference_exit(path: list[int], level: int, long: bool) -> tuple[int | None, int]:
    """(index of the first tick at or through the level or None, the price it leaves at)."""
    for n, price in enumerate(path):
        if (price <= level) if long else (price >= level):
            return n, price
    return None, path[-1]


@settings(max_examples=120, deadline=None)
@given(entry_ticks=st.integers(2_000, 40_000), long=st.booleans(), kind=st.sampled_from(["points", "entry_pct"]),
       value=st.decimals("0.05", "20", places=2), quantity=st.integers(1, 500),
       moves=st.lists(st.integers(-400, 400), min_size=1, max_size=60))
def test_the_exit_is_the_first_tick_through_the_stop_and_gross_is_the_move_times_quantity(
        entry_ticks, long, kind, value, quantity, moves):
    entry = entry_ticks * 5
    path, price = [], entry
    for move in moves:
        price = max(5, price + move)
        path.append(price)
    level = reference_level(entry, long, kind, Fraction(value))
    trade = plan(entry=entry / 100, quantity=quantity, side="LONG" if long else "SHORT",
                 rules_={"stop": {"type": kind, "value": str(value)}, "target": None, "trail": None})
    rows, _ = replay([trade], ticks([p / 100 for p in path], step_ms=100), brokerage="none")
    row = rows[("live", 1)]
    crossed, exit_price = reference_exit(path, level, long)
    if crossed is None:
        assert row.reason == "OPEN"
    else:
        assert (row.reason, row.level, row.trigger_seq, row.trigger_ltp) == ("STOP", level, crossed + 1, exit_price)
    assert row.exit_price == exit_price
    assert row.gross == (exit_price - entry) * quantity * (1 if long else -1)


@settings(max_examples=60, deadline=None)
@given(slip=st.integers(0, 5), moves=st.lists(st.integers(-300, 100), min_size=1, max_size=40))
def test_slippage_moves_the_exit_against_the_trade_by_whole_ticks(slip, moves):
    entry, path, price = 80_000, [], 80_000
    for move in moves:
        price = max(100, price + move)
        path.append(price)
    trade = plan(entry=800, rules_=rules(stop=("points", 3)))
    rows, _ = replay([trade], ticks([p / 100 for p in path], step_ms=100), slippage=f"ticks:{slip}")
    crossed, exit_price = reference_exit(path, 79_700, True)
    row = rows[("live", 1)]
    if crossed is not None:
        assert row.exit_price == max(5, exit_price - slip * 5)
        assert row.gross == (row.exit_price - entry) * 10
