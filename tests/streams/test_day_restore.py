"""The day so far after a restart (`RestoreDay`) and exits the engine decides outside the session.

Entry 1000.00 (100_000 paise), quantity 10 unless a case says otherwise; Monday 10:00 IST is T0.
"""
from __future__ import annotations

import datetime as dt

from tests.streams.streams_helpers import MONDAY, T0, intent, ist, rule, run_marbles, tick, trade

from streams import Arm, Engine, Halted, Resumed, RestoreDay, SetLimit
from streams.session import ist_day

TODAY = ist_day(T0)
TUESDAY = MONDAY + dt.timedelta(days=1)


def engine() -> tuple[Engine, list]:
    out: list = []
    return Engine(out.append), out


def kinds(out: list, *types: type) -> list:
    return [v for v in out if isinstance(v, types)]


def test_a_restored_halt_holds_until_the_day_rolls_and_is_not_announced_again():
    eng, out = engine()
    eng.on_clock(T0)
    eng.on_event(RestoreDay("account", "A1", TODAY, -60_000, halted=True))
    eng.on_event(SetLimit("account", "A1", 50_000))
    assert eng.halted == {("account", "A1")}
    assert kinds(out, Halted) == []  # it was announced when it happened, before the restart
    tuesday = ist(9, 0, day=TUESDAY)
    eng.on_clock(tuesday)
    assert eng.halted == frozenset()
    assert kinds(out, Resumed) == [Resumed("account", "A1", tuesday)]


def test_restored_realised_pnl_counts_toward_the_limit_with_todays_open_loss():
    def run(restored: int | None) -> list:
        eng, out = engine()
        eng.on_clock(T0)
        if restored is not None:
            eng.on_event(RestoreDay("strategy", "orb", TODAY, restored))
        eng.on_event(SetLimit("strategy", "orb", 10_000))
        eng.on_event(Arm(trade(7, "long", stop=rule("points", 50), strategy="orb")))
        eng.on_tick(tick(99_500))  # open -5 x 10 = -50.00
        return kinds(out, Halted)

    assert run(None) == []
    assert run(-6_000) == [Halted("strategy", "orb", -11_000, 10_000, T0)]


def test_a_restored_realised_loss_beyond_the_limit_halts_when_the_limit_is_set():
    eng, out = engine()
    eng.on_clock(T0)
    eng.on_event(RestoreDay("account", "A1", TODAY, -20_000))
    eng.on_event(SetLimit("account", "A1", 15_000))
    assert kinds(out, Halted) == [Halted("account", "A1", -20_000, 15_000, T0)]


def test_another_days_figures_are_ignored():
    eng, out = engine()
    eng.on_clock(T0)
    eng.on_event(RestoreDay("account", "A1", TODAY - 1, -1_000_000, halted=True))
    eng.on_event(SetLimit("account", "A1", 10_000))
    assert eng.halted == frozenset() and kinds(out, Halted) == []
    assert eng.limits.groups[("account", "A1")].realised == 0


def test_a_restore_before_the_first_clock_waits_for_it():
    eng, out = engine()
    eng.on_event(RestoreDay("account", "A1", TODAY, -5_000, halted=True))
    eng.on_event(RestoreDay("account", "A2", TODAY - 1, -5_000, halted=True))
    assert eng.halted == frozenset()  # no day is known yet
    eng.on_clock(T0)
    assert eng.halted == {("account", "A1")}
    assert kinds(out, Resumed) == []
    assert eng.limits.groups[("account", "A1")].realised == -5_000


def test_an_intraday_trade_armed_after_the_close_is_squared_off_at_the_next_open_not_at_once():
    intraday = trade(30, "long", stop=rule("points", 10))
    lookup = dict(k=ist(16), o=ist(9, 15, day=TUESDAY), x=Arm(intraday))
    got = run_marbles(ticks="-", events="--x", clock="-k---o", lookup=lookup)
    assert got == [(5, intent(30, "SQUARE_OFF", None, None))]


def test_an_intraday_trade_armed_after_the_square_off_in_session_goes_at_once():
    intraday = trade(31, "long", stop=rule("points", 10))
    lookup = dict(k=ist(15, 20), x=Arm(intraday))
    assert run_marbles(ticks="-", events="--x", clock="-k", lookup=lookup) == [(2, intent(31, "SQUARE_OFF", None, None))]


def test_a_square_off_time_first_seen_after_the_close_waits_for_the_next_open():
    intraday = trade(32, "long", stop=rule("points", 10))
    lookup = dict(k=ist(15), s=ist(15, 45), o=ist(9, 15, day=TUESDAY), x=Arm(intraday))
    got = run_marbles(ticks="-", events="--x", clock="-k--s--o", lookup=lookup)
    assert got == [(7, intent(32, "SQUARE_OFF", None, None))]


def test_a_flatten_decided_outside_the_session_waits_for_the_open():
    carried = trade(33, "long", stop=rule("points", 10), product="DELIVERY")
    lookup = dict(k=ist(16), o=ist(9, 15, day=TUESDAY), x=Arm(carried),
                  r=RestoreDay("account", "A1", ist_day(ist(16)), -20_000),
                  l=SetLimit("account", "A1", 15_000, flatten=True))
    got = run_marbles(ticks="-", events="--x-r-l", clock="-k------o", lookup=lookup, intents_only=False)
    assert (6, Halted("account", "A1", -20_000, 15_000, ist(16))) in got
    assert [(f, v) for f, v in got if type(v).__name__ == "ExitIntent"] == [(8, intent(33, "RISK", None, None))]
