"""Golden cases for every rule of trading-semantics §4, long and short, on virtual time.

Entry 1000.00 (100_000 paise), tick 0.05. Frames are one second apart; the clock says 10:00 IST
at frame 1 unless a case says otherwise, and ticks are stamped 10:00 so they are fresh.
"""
from __future__ import annotations

import msgspec
import pytest
from tests.streams.streams_helpers import T0, intent, ist, rule, run_marbles, tick, trade, trail

from streams import (
    Amend,
    Arm,
    Armed,
    Close,
    Confirm,
    Disarm,
    Disarmed,
    EntryWindow,
    ExitIntent,
    ExitReason,
    Halted,
    Instrument,
    Rearm,
    Reduce,
    Refused,
    Resumed,
    SetLimit,
    Side,
    TrailMoved,
)

LONG_STOP = trade(1, "long", stop=rule("points", 10))  # stop 990.00
SHORT_STOP = trade(2, "short", stop=rule("points", 10))  # stop 1010.00
STOP_OF = {1: 99_000, 2: 101_000}


def _clock(at: int = T0) -> dict[str, int]:
    return {"k": at}


def run(ticks: str, lookup: dict, events: str = "--x", clock: str = "-k", **kwargs):
    return run_marbles(ticks=ticks, events=events, clock=clock, lookup=lookup | _clock(), **kwargs)


@pytest.mark.parametrize(
    ("trade_", "prices", "level"),
    [(LONG_STOP, (100_000, 99_005, 99_000), 99_000), (SHORT_STOP, (100_000, 100_995, 101_000), 101_000)],
)
def test_stop_fires_at_its_level(trade_, prices, level):
    a, b, c = (tick(p) for p in prices)
    got = run("---a-b-c-", dict(a=a, b=b, c=c, x=Arm(trade_)))
    assert got == [(7, intent(trade_.id, "STOP", level, c))]


@pytest.mark.parametrize(("trade_", "gap", "level"), [(LONG_STOP, 95_000, 99_000), (SHORT_STOP, 105_000, 101_000)])
def test_a_gap_through_fires_with_the_stop_as_level_and_the_tick_attached(trade_, gap, level):
    g = tick(gap)
    assert run("---g-", dict(g=g, x=Arm(trade_))) == [(3, intent(trade_.id, "STOP", level, g))]


@pytest.mark.parametrize(("trade_", "beyond"), [(LONG_STOP, 98_000), (SHORT_STOP, 102_000)])
def test_a_trade_fires_once_then_waits_exiting(trade_, beyond):
    a = tick(beyond)
    got = run("---a-a-a-", dict(a=a, x=Arm(trade_)))
    assert got == [(3, intent(trade_.id, "STOP", STOP_OF[trade_.id], a))]


def test_rearm_guards_again_and_fires_on_the_latest_tick_at_once():
    a, b = tick(98_000), tick(97_000)
    got = run("---a---b--", dict(a=a, b=b, x=Arm(LONG_STOP), r=Rearm(1)), events="--x--r---")
    # re-armed at frame 5 while the last tick (frame 3) is still fresh and beyond: fires at once
    assert got == [(3, intent(1, "STOP", 99_000, a)), (5, intent(1, "STOP", 99_000, a))]


def test_a_confirmed_trade_is_closed_for_good():
    a = tick(98_000)
    lookup = dict(a=a, x=Arm(LONG_STOP), f=Confirm(1, 97_950), r=Rearm(1))
    got = run("---a---a", lookup, events="--x--f-r", intents_only=False)
    assert (3, intent(1, "STOP", 99_000, a)) in got
    assert (5, Disarmed(1, "closed")) in got
    assert (7, Refused(1, "trade_id", "rearm: no such trade")) in got
    assert [t for t, v in got if type(v).__name__ == "ExitIntent"] == [3]


@pytest.mark.parametrize(
    ("side", "prices", "level"),
    [("long", (101_000, 101_995, 102_000), 102_000), ("short", (99_000, 98_005, 98_000), 98_000)],
)
def test_target_fires_when_price_reaches_it(side, prices, level):
    t = trade(3, side, stop=rule("points", 10), target=rule("points", 20))
    a, b, c = (tick(p) for p in prices)
    assert run("---a-b-c", dict(a=a, b=b, c=c, x=Arm(t))) == [(7, intent(3, "TARGET", level, c))]


def test_long_trailing_activates_ratchets_and_fires_as_trail():
    t = trade(4, "long", stop=rule("points", 10), trailing=trail("points", 5, rule("points", 5)))
    # 1003: not active (needs 1005). 1005: active, stop max(990, 1000)=1000. 1008: 1003.
    # 1006: never loosens. 1003: fires at the trailed stop.
    p = {k: tick(v) for k, v in dict(a=100_300, b=100_500, c=100_800, d=100_600, e=100_300).items()}
    got = run("---a-b-c-d-e", p | dict(x=Arm(t)), intents_only=False)
    moves = [(f, v.old_stop, v.new_stop) for f, v in got if isinstance(v, TrailMoved)]
    assert moves == [(5, 99_000, 100_000), (7, 100_000, 100_300)]
    assert got[-1] == (11, intent(4, "TRAIL", 100_300, p["e"]))


def test_short_trailing_activates_ratchets_and_fires_as_trail():
    t = trade(5, "short", stop=rule("points", 10), trailing=trail("points", 5, rule("points", 5)))
    p = {k: tick(v) for k, v in dict(a=99_700, b=99_500, c=99_200, d=99_400, e=99_700).items()}
    got = run("---a-b-c-d-e", p | dict(x=Arm(t)), intents_only=False)
    moves = [(f, v.old_stop, v.new_stop) for f, v in got if isinstance(v, TrailMoved)]
    assert moves == [(5, 101_000, 100_000), (7, 100_000, 99_700)]
    assert got[-1] == (11, intent(5, "TRAIL", 99_700, p["e"]))


@pytest.mark.parametrize(
    ("side", "prices", "stops"),
    [("long", (100_200, 100_100), (99_700, 99_900)), ("short", (99_800, 99_900), (100_300, 100_100))],
)
def test_trailing_without_activation_trails_from_the_entry(side, prices, stops):
    t = trade(6, side, trailing=trail("points", 3))
    a, b = (tick(p) for p in prices)
    got = run("---a-b", dict(a=a, b=b, x=Arm(t)), intents_only=False)
    armed = next(v for _, v in got if isinstance(v, Armed))
    assert armed.state.stop == stops[0] and armed.state.trail_active  # entry -/+ 3.00
    assert [v.new_stop for _, v in got if isinstance(v, TrailMoved)] == [stops[1]]  # best -/+ 3.00


@pytest.mark.parametrize(("trade_", "beyond"), [(LONG_STOP, 98_000), (SHORT_STOP, 102_000)])
def test_a_stale_tick_fires_nothing_a_fresh_one_does(trade_, beyond):
    old, fresh = tick(beyond, at=T0 - 5_001), tick(beyond, at=T0)
    got = run("---o-f", dict(o=old, f=fresh, x=Arm(trade_)))
    assert got == [(5, intent(trade_.id, "STOP", STOP_OF[trade_.id], fresh))]


def test_a_tick_exactly_at_the_staleness_limit_is_fresh():
    edge = tick(98_000, at=T0 - 5_000)
    assert run("---e", dict(e=edge, x=Arm(LONG_STOP))) == [(3, intent(1, "STOP", 99_000, edge))]


def test_no_clock_no_stops():
    assert run("---a", dict(a=tick(98_000), x=Arm(LONG_STOP)), clock="-") == []


@pytest.mark.parametrize("trade_", [LONG_STOP, SHORT_STOP])
def test_stops_fire_only_in_the_continuous_session(trade_):
    beyond = 98_000 if trade_.side is Side.LONG else 102_000
    pre, post, opening = tick(beyond, ist(9, 14, 59)), tick(beyond, ist(15, 30)), tick(beyond, ist(9, 15))
    lookup = dict(p=pre, q=post, o=opening, x=Arm(trade_), k=ist(9, 14, 59), m=ist(15, 30), n=ist(9, 15))
    early = run_marbles(ticks="---p-o", events="--x", clock="-k---n", lookup=lookup)
    assert early == [(5, intent(trade_.id, "STOP", STOP_OF[trade_.id], opening))]
    lookup["x"] = Arm(msgspec.structs.replace(trade_, product="CARRYFORWARD"))
    late = run_marbles(ticks="---q", events="--x", clock="-m", lookup=lookup)
    assert late == []


def test_a_trailing_stop_does_not_move_on_gated_ticks():
    t = trade(7, "long", stop=rule("points", 10), trailing=trail("points", 5))
    got = run("---a", dict(a=tick(101_000, at=T0 - 60_000), x=Arm(t)), intents_only=False)
    assert not [v for _, v in got if isinstance(v, TrailMoved)]


def test_square_off_closes_intraday_trades_at_the_segment_time():
    intraday = trade(8, "long", stop=rule("points", 10))
    carried = trade(9, "long", stop=rule("points", 10), product="CARRYFORWARD")
    late = trade(10, "short", stop=rule("points", 10))
    last = tick(100_000, ist(15, 14, 59))
    lookup = dict(k=ist(15, 14, 59), s=ist(15, 15), a=Arm(intraday), b=Arm(carried), l=Arm(late), t=last)
    got = run_marbles(ticks="--t", events="--a-b--l", clock="-k---s", lookup=lookup)
    assert got == [(5, intent(8, "SQUARE_OFF", None, last)), (7, intent(10, "SQUARE_OFF", None, last))]


def test_no_square_off_on_a_holiday_in_that_segment():
    from tests.streams.streams_helpers import MONDAY

    from streams import EngineConfig, PipelineConfig, default_calendar

    config = PipelineConfig(EngineConfig(default_calendar(nse_holidays=frozenset({MONDAY}))))
    lookup = dict(k=ist(15, 16), a=Arm(LONG_STOP))
    assert run_marbles(ticks="-", events="--a", clock="-k", lookup=lookup, config=config) == []


def test_the_entry_window_closes_at_the_cutoff():
    lookup = dict(k=ist(14, 59, 59), m=ist(15, 0))
    got = run_marbles(ticks="-", events="-", clock="-k-m", lookup=lookup, intents_only=False)
    nse = [(f, v.open) for f, v in got if isinstance(v, EntryWindow) and v.exchange == "NSE"]
    assert nse == [(1, True), (3, False)]


def test_a_trade_armed_beyond_its_stop_fires_on_the_latest_tick():
    a = tick(98_000)
    assert run("--a", dict(a=a, x=Arm(LONG_STOP)), events="---x") == [(3, intent(1, "STOP", 99_000, a))]


def test_a_tick_fires_only_the_trades_it_crossed_in_trade_id_order():
    t1 = trade(11, "long", stop=rule("points", 10))  # 990
    t2 = trade(12, "long", stop=rule("points", 20))  # 980
    t3 = trade(13, "long", stop=rule("points", 5))  # 995
    t4 = trade(14, "short", stop=rule("points", 10), token="11536")  # another token
    a = tick(98_500)
    lookup = dict(a=a, p=Arm(t1), q=Arm(t2), r=Arm(t3), s=Arm(t4))
    got = run_marbles(ticks="---------a", events="-p-q-r-s", clock="-k", lookup=lookup | _clock())
    assert got == [(9, intent(11, "STOP", 99_000, a)), (9, intent(13, "STOP", 99_500, a))]


def test_an_option_guarded_on_its_underlying_fires_on_underlying_ticks():
    option = trade(
        15, "long", entry=15_000, stop=rule("points", 50), token="43650", exchange="NFO",
        basis=Instrument("99926000", "NSE", 5), basis_entry=2_400_000, basis_side=Side.LONG,
    )  # fmt: skip
    own, under = tick(1_000, token="43650", exchange="NFO"), tick(2_394_900, token="99926000")
    assert run("---o-u", dict(o=own, u=under, x=Arm(option))) == [(5, intent(15, "STOP", 2_395_000, under))]


def test_bad_rules_and_unknown_segments_are_refused_not_armed():
    bad = trade(16, "long", stop=rule("points", 2000))
    nowhere = trade(17, "long", stop=rule("points", 10), exchange="XYZ")
    got = run("-", dict(x=Arm(bad), y=Arm(nowhere)), events="--x-y", intents_only=False)
    refused = [v for _, v in got if isinstance(v, Refused)]
    assert [(r.trade_id, r.field) for r in refused] == [(16, "stoploss"), (17, "exchange")]


def test_amend_moves_the_levels():
    amended = trade(1, "long", stop=rule("points", 20))  # 980
    a, b = tick(98_500), tick(97_900)
    got = run("-----a-b", dict(a=a, b=b, x=Arm(LONG_STOP), m=Amend(amended)), events="--x-m")
    assert got == [(7, intent(1, "STOP", 98_000, b))]


def test_amend_keeps_a_trailed_stop_that_is_tighter():
    t = trade(18, "long", stop=rule("points", 10), trailing=trail("points", 5))
    wider = trade(18, "long", stop=rule("points", 30), trailing=trail("points", 5))
    a, b = tick(101_000), tick(100_500)
    got = run("---a---b", dict(a=a, b=b, x=Arm(t), n=Amend(wider)), events="--x--n")
    assert got == [(7, intent(18, "TRAIL", 100_500, b))]


def test_resume_restores_a_persisted_trailed_stop_only_when_tighter():
    t = trade(19, "long", stop=rule("points", 10), trailing=trail("points", 5, rule("points", 50)))
    b = tick(99_400)
    tight = run("---b", dict(b=b, x=Arm(t, resume_stop=99_500, resume_trailing=True)))
    loose = run("---b", dict(b=b, x=Arm(t, resume_stop=98_000)))
    assert tight == [(3, intent(19, "TRAIL", 99_500, b))]
    assert loose == []


def test_disarm_stops_guarding():
    assert run("-----a", dict(a=tick(98_000), x=Arm(LONG_STOP), d=Disarm(1)), events="--x-d") == []


@pytest.mark.parametrize("trade_", [LONG_STOP, SHORT_STOP])
@pytest.mark.parametrize(("clock", "frame"), [(ist(10), 4), (ist(9, 0), 5)])
def test_manual_close_is_honoured_at_once_in_session_or_at_the_open(trade_, clock, frame):
    lookup = dict(k=clock, o=ist(9, 15), x=Arm(trade_), m=Close(trade_.id))
    got = run_marbles(ticks="-", events="--x-m", clock="-k---o", lookup=lookup)
    assert got == [(frame, intent(trade_.id, "MANUAL", None, None))]


@pytest.mark.parametrize(("clock", "frame"), [(ist(10), 4), (ist(9, 0), 5)])
def test_an_alerts_close_fires_with_reason_signal_at_once_or_at_the_open(clock, frame):
    lookup = dict(k=clock, o=ist(9, 15), x=Arm(LONG_STOP), m=Close(LONG_STOP.id, ExitReason.SIGNAL))
    got = run_marbles(ticks="-", events="--x-m", clock="-k---o", lookup=lookup)
    assert got == [(frame, intent(LONG_STOP.id, "SIGNAL", None, None))]


def test_manual_close_of_an_exiting_trade_sends_nothing_more():
    a = tick(98_000)
    got = run("---a", dict(a=a, x=Arm(LONG_STOP), m=Close(1)), events="--x--m")
    assert got == [(3, intent(1, "STOP", 99_000, a))]


def test_daily_loss_breach_halts_and_flattens_the_account():
    t1 = trade(20, "long", quantity=100, stop=rule("points", 50))
    t2 = trade(21, "short", quantity=50, stop=rule("points", 50), token="11536")
    # limit Rs 500 on A1. Long 100 @1000 marked at 996: -400. Short 50 @1000 at 1002.05: -102.50
    a, b = tick(99_600), tick(100_205, token="11536")
    lookup = dict(a=a, b=b, p=Arm(t1), q=Arm(t2), l=SetLimit("account", "A1", 50_000, flatten=True))
    got = run("-------a-b", lookup, events="-p-q-l", intents_only=False)
    halted = [(f, v) for f, v in got if isinstance(v, Halted)]
    assert halted == [(9, Halted("account", "A1", -50_250, 50_000, T0))]
    assert [(f, v) for f, v in got if type(v).__name__ == "ExitIntent"] == [
        (9, intent(20, "RISK", None, b)),
        (9, intent(21, "RISK", None, b)),
    ]


def test_daily_loss_counts_realised_pnl_and_halts_without_flattening():
    t1 = trade(22, "long", quantity=10, stop=rule("points", 50), strategy="orb")
    t2 = trade(23, "long", quantity=10, stop=rule("points", 50), strategy="orb", token="11536")
    # closed 10 @ 970 = -300 realised; limit Rs 250 on strategy orb
    lookup = dict(p=Arm(t1), q=Arm(t2), l=SetLimit("strategy", "orb", 25_000), f=Confirm(22, 97_000))
    got = run_marbles(ticks="-", events="-p-q-l-f", clock="-k", lookup=lookup | _clock(), intents_only=False)
    assert (7, Halted("strategy", "orb", -30_000, 25_000, T0)) in got
    assert not [v for _, v in got if type(v).__name__ == "ExitIntent"]


def test_a_halt_lifts_at_the_next_day():
    import datetime as dt

    from tests.streams.streams_helpers import MONDAY

    armed = Arm(trade(24, "long", stop=rule("points", 50)))
    lookup = dict(p=armed, f=Confirm(24, 90_000), l=SetLimit("account", "A1", 1), k=T0)
    tuesday = ist(9, 0, day=MONDAY + dt.timedelta(days=1))
    lookup["t"] = tuesday
    got = run_marbles(ticks="-", events="--p-f-l", clock="-k------t", lookup=lookup, intents_only=False)
    assert (6, Halted("account", "A1", -100_000, 1, T0)) in got
    assert (8, Resumed("account", "A1", tuesday)) in got


def test_a_long_and_a_short_on_one_token_net_out_and_close_cleanly():
    long = trade(25, "long", quantity=10, stop=rule("points", 50))
    short = trade(26, "short", quantity=10, stop=rule("points", 50))
    # flat net: the price move does not matter; realised -100 + -50 = -150 > -200: no halt
    lookup = dict(p=Arm(long), q=Arm(short), l=SetLimit("account", "A1", 20_000), a=tick(99_005))
    lookup |= dict(f=Confirm(25, 99_000), g=Confirm(26, 100_500))
    got = run("-------a", lookup, events="-p-q-l---f-g", intents_only=False)
    assert [v for _, v in got if isinstance(v, Disarmed)] == [Disarmed(25, "closed"), Disarmed(26, "closed")]
    assert not [v for _, v in got if isinstance(v, Halted)]


def test_a_consumer_that_answers_intents_synchronously_does_not_reenter_a_tick():
    from streams import Engine, ExitIntent

    engine: Engine
    seen: list = []

    def consumer(item: object) -> None:
        seen.append(item)
        if isinstance(item, ExitIntent):
            engine.on_event(Confirm(item.trade_id, item.tick.ltp))  # an instant fill

    engine = Engine(consumer)
    engine.on_clock(T0)
    for trade_id in (31, 32, 33):
        engine.on_event(Arm(trade(trade_id, "long", stop=rule("points", 10))))
    engine.on_tick(tick(98_000))
    order = [(type(v).__name__, v.trade_id) for v in seen if isinstance(v, (ExitIntent, Disarmed))]
    assert order == [("ExitIntent", 31), ("ExitIntent", 32), ("ExitIntent", 33),
                     ("Disarmed", 31), ("Disarmed", 32), ("Disarmed", 33)]  # fmt: skip
    assert engine.states() == []


def test_a_token_number_on_another_exchange_is_another_instrument():
    nse = trade(34, "long", stop=rule("points", 10))  # NSE 2885 stop 990
    bse_tick, nse_tick = tick(98_000, exchange="BSE"), tick(98_000)
    assert run("---b-n", dict(b=bse_tick, n=nse_tick, x=Arm(nse))) == [(5, intent(34, "STOP", 99_000, nse_tick))]


def test_the_last_tick_of_a_token_nobody_guards_any_more_never_settles_the_next_trade():
    """The service unsubscribes a token with no trade left on it: its last tick is no longer followed by
    fresher ones, so a trade armed there later waits for a tick of its own."""
    a, b = tick(98_000), tick(99_500)
    second = trade(5, "long", stop=rule("points", 10))
    lookup = dict(a=a, b=b, x=Arm(LONG_STOP), f=Confirm(1, 97_950), y=Arm(second))
    got = run("---a-----b", lookup, events="--x--f-y-")
    assert got == [(3, intent(1, "STOP", 99_000, a))]  # trade 5 is not fired on frame 3's price


def test_a_special_session_on_a_sunday_has_its_own_square_off_and_entry_window():
    import datetime as dt

    from tests.streams.streams_helpers import MONDAY

    from streams import EngineConfig, PipelineConfig, SegmentHours, default_calendar

    sunday = MONDAY - dt.timedelta(days=1)
    muhurat = SegmentHours(dt.time(18, 0), dt.time(19, 0), square_off=dt.time(18, 45), entry_cutoff=dt.time(18, 30))
    calendar = msgspec.structs.replace(default_calendar(), sessions={"NSE": {sunday: muhurat}})
    config = PipelineConfig(EngineConfig(calendar))
    intraday = trade(8, "long", stop=rule("points", 50))  # 950.00: the tick at 980.00 fires only trade 1
    before, through = tick(98_000, ist(17, 59, day=sunday)), tick(98_000, ist(18, 10, day=sunday))
    lookup = dict(b=ist(17, 59, day=sunday), o=ist(18, 10, day=sunday), e=ist(18, 30, day=sunday),
                  q=ist(18, 44, 59, day=sunday), s=ist(18, 45, day=sunday), a=Arm(intraday),
                  c=Arm(LONG_STOP), u=before, t=through)
    got = run_marbles(ticks="--u-t", events="-a-c", clock="-b-o-e-q-s", lookup=lookup, config=config,
                      intents_only=False)
    nse = [(f, v.open) for f, v in got if isinstance(v, EntryWindow) and v.exchange == "NSE"]
    assert nse == [(1, False), (3, True), (5, False)]  # entries 18:00-18:30 on the Sunday
    fired = [(f, v.trade_id, v.reason) for f, v in got if isinstance(v, ExitIntent)]
    assert fired == [(4, 1, "STOP"), (9, 8, "SQUARE_OFF")]  # not before 18:00; square-off at 18:45


def test_a_partly_exited_trade_keeps_its_levels():
    # Rs 1 000 at risk on 10 shares at 1000.00: stop 900.00. 6 exited: the stop stays at 900.00 (not Rs 1 000 / 4)
    t = trade(30, "long", quantity=10, stop=rule("rupees", 1000))
    a, b = tick(91_000), tick(89_900)
    got = run("----a-b", dict(a=a, b=b, x=Arm(t), r=Reduce(30, 6, 99_000)), events="-x-r")
    assert got == [(6, intent(30, "STOP", 90_000, b))]


def test_a_partial_exit_realises_its_pnl_for_the_daily_loss_limit():
    # limit Rs 500; long 100 @ 1000.00; 50 exited at 990.00 = -Rs 500 realised: halted at once
    t = trade(31, "long", quantity=100, stop=rule("points", 50))
    lookup = dict(p=Arm(t), l=SetLimit("account", "A1", 50_000), r=Reduce(31, 50, 99_000))
    got = run_marbles(ticks="-", events="-p-l-r", clock="-k", lookup=lookup | _clock(), intents_only=False)
    assert (5, Halted("account", "A1", -50_000, 50_000, T0)) in got
