"""Property: for random trades, rules, price paths, clocks and trade events, the engine's exits
(trade, tick, reason, level) are exactly those of a short reference model that loops over every
armed trade on every tick, keeping the best price the way §4 says it; and every trade's stop and
phase agree after every input."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.streams.streams_helpers import ist, rule, trade, trail

from streams import (
    Arm,
    Clock,
    Confirm,
    Disarm,
    Engine,
    ExitIntent,
    Rearm,
    RuleError,
    SessionClock,
    Side,
    Tick,
    default_calendar,
    levels,
)

STALE_MS = 5_000
TOKENS = ("A", "B")
OPEN = ist(9, 14, 57)  # the walk starts just before the 09:15 open: the session gate matters


class Model:
    """The obvious loop. A trade is a dict; nothing is indexed or cached."""

    def __init__(self) -> None:
        self.sessions = SessionClock(default_calendar())
        self.clock: int | None = None
        self.last: dict[str, Tick] = {}
        self.trades: dict[int, dict] = {}
        self.exits: list[tuple[int, Tick | None, str, int | None]] = []

    def fresh(self, t: Tick) -> bool:
        ts = t.exchange_ts_ms
        return self.clock is not None and self.clock - ts <= STALE_MS and self.sessions.is_open(t.exchange, ts)

    def arm(self, spec) -> None:
        lv = levels(spec)
        tr = dict(id=spec.id, token=spec.instrument.token, long=lv.side is Side.LONG, entry=lv.entry, stop=lv.stop,
                  target=lv.target, offset=lv.trail_offset, act=lv.activation_price, best=lv.entry,
                  trailed=False, phase="ARMED", tick_size=spec.instrument.tick_size)  # fmt: skip
        self.trades[spec.id] = tr
        self.trail(tr)
        self.meet_latest(tr)

    def meet_latest(self, tr: dict) -> None:
        last = self.last.get(tr["token"])
        if last is not None and self.fresh(last):
            self.step(tr, last)

    def trail(self, tr: dict) -> None:
        if tr["offset"] is None:
            return
        q = tr["tick_size"]
        if tr["long"] and tr["best"] >= tr["act"]:
            candidate = math.ceil((tr["best"] - tr["offset"]) / q) * q
            if tr["stop"] is None or candidate > tr["stop"]:
                tr["stop"], tr["trailed"] = candidate, True
        if not tr["long"] and tr["best"] <= tr["act"]:
            candidate = math.floor((tr["best"] + tr["offset"]) / q) * q
            if tr["stop"] is None or candidate < tr["stop"]:
                tr["stop"], tr["trailed"] = candidate, True

    def step(self, tr: dict, t: Tick) -> None:
        p, stop, target = t.ltp, tr["stop"], tr["target"]
        reason = "TRAIL" if tr["trailed"] else "STOP"
        if stop is not None and (p <= stop if tr["long"] else p >= stop):
            self.fire(tr, t, reason, stop)
        elif target is not None and (p >= target if tr["long"] else p <= target):
            self.fire(tr, t, "TARGET", target)
        else:
            tr["best"] = max(tr["best"], p) if tr["long"] else min(tr["best"], p)
            self.trail(tr)

    def fire(self, tr: dict, t: Tick, reason: str, level: int) -> None:
        tr["phase"] = "EXITING"
        self.exits.append((tr["id"], t, reason, level))

    def feed(self, item) -> None:
        if isinstance(item, Clock):
            self.clock = item.now_ms if self.clock is None else max(self.clock, item.now_ms)
        elif isinstance(item, Tick):
            self.last[item.token] = item
            if self.fresh(item):
                for trade_id in sorted(self.trades):
                    tr = self.trades[trade_id]
                    if tr["phase"] == "ARMED" and tr["token"] == item.token:
                        self.step(tr, item)
        elif isinstance(item, Arm):
            if item.trade.id not in self.trades:
                self.arm(item.trade)
        elif isinstance(item, Rearm):
            tr = self.trades.get(item.trade_id)
            if tr is not None and tr["phase"] == "EXITING":
                tr["phase"] = "ARMED"
                self.meet_latest(tr)
        elif isinstance(item, (Confirm, Disarm)):
            gone = self.trades.pop(item.trade_id, None)
            if gone is not None and not any(t["token"] == gone["token"] for t in self.trades.values()):
                self.last.pop(gone["token"], None)  # nobody guards the token: its last tick is not current


POINTS = st.sampled_from(["0.05", "0.5", "1", "1.5", "2.35", "4"])
PCT = st.sampled_from(["0.1", "0.25", "1"])
DISTANCE = st.one_of(
    st.none(), st.builds(rule, st.just("points"), POINTS), st.builds(rule, st.just("entry_pct"), PCT)
)
ACTIVATION = st.one_of(st.none(), st.builds(rule, st.just("points"), POINTS))
TRAIL = st.one_of(st.none(), st.builds(trail, st.just("points"), POINTS, ACTIVATION))
# mostly fresh, now and then stale (older than 5 s) or a little ahead of the clock
TICK_AGE = st.one_of(st.integers(-500, 3_000), st.integers(-500, 3_000), st.integers(5_001, 9_000))


@st.composite
def trades(draw, trade_id: int):
    return trade(
        trade_id,
        draw(st.sampled_from(["long", "short"])),
        entry=draw(st.integers(9_950, 10_050)),
        stop=draw(DISTANCE),
        target=draw(DISTANCE),
        trailing=draw(TRAIL),
        token=draw(st.sampled_from(TOKENS)),
    )


@st.composite
def scenarios(draw):
    specs = [draw(trades(trade_id)) for trade_id in range(draw(st.integers(1, 6)))]
    clock, prices = OPEN, {token: 10_000 for token in TOKENS}
    inputs: list = [Clock(clock)] + [Arm(spec) for spec in specs if draw(st.booleans())]
    for _ in range(draw(st.integers(5, 80))):
        kind = draw(st.sampled_from(["tick"] * 5 + ["clock", "clock", "arm", "rearm", "close"]))
        if kind == "clock":
            clock += draw(st.integers(0, 3_000))
            inputs.append(Clock(clock))
        elif kind == "tick":
            token = draw(st.sampled_from(TOKENS))
            prices[token] = max(5, prices[token] + draw(st.integers(-40, 40)))
            inputs.append(Tick(token, "NSE", prices[token], clock - draw(TICK_AGE)))
        elif kind == "arm":
            inputs.append(Arm(draw(st.sampled_from(specs))))
        elif kind == "rearm":
            inputs.append(Rearm(draw(st.sampled_from(specs)).id))
        else:
            trade_id = draw(st.sampled_from(specs)).id
            inputs.append(draw(st.sampled_from([Confirm(trade_id, 10_000), Disarm(trade_id)])))
    return inputs


def _valid(item) -> bool:
    if not isinstance(item, Arm):
        return True
    try:
        levels(item.trade)
    except RuleError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_engine_exits_equal_the_reference_model(inputs):
    inputs = [item for item in inputs if _valid(item)]
    out: list = []
    engine = Engine(out.append)
    model = Model()
    for item in inputs:
        engine.on_input(item)
        model.feed(item)
        # the stops must agree after every input, not only when something fires
        stops = {s.trade_id: (str(s.phase), s.stop) for s in engine.states()}
        assert stops == {i: (tr["phase"], tr["stop"]) for i, tr in model.trades.items()}
    exits = [(i.trade_id, i.tick, str(i.reason), i.level) for i in out if isinstance(i, ExitIntent)]
    assert exits == model.exits


def test_the_model_is_not_vacuous():
    """Guard against a generator that never makes anything fire."""
    long = trade(1, "long", entry=10_000, stop=rule("points", "0.5"), trailing=trail("points", "0.5"))
    model = Model()
    high, back = Tick("2885", "NSE", 10_200, ist(10)), Tick("2885", "NSE", 10_140, ist(10))
    for item in [Clock(ist(10)), Arm(long), high, back]:
        model.feed(item)
    assert model.exits == [(1, Tick("2885", "NSE", 10_140, ist(10)), "TRAIL", 10_150)]
