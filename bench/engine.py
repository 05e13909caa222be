"""Stop engine throughput: ticks/s with 10 .. 100 000 armed trades over 1 000 tokens.

Baseline: a bare `Subject -> map -> filter` chain on the same ticks in the same run. Trades are half
long, half short, 10 % trailing (activation out of reach, so they cost nothing until price gets
there); stops sit 1-5 % from a price that wanders within +-0.5 %, and about one tick in a thousand
is a spike to -/+1.5 % that crosses the nearest stops of its token. Each measured run starts from a
freshly armed engine, built outside the timed region.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from reactivex import operators as ops
from reactivex.subject import Subject

from bench.common import Figure, best_rate
from streams import (
    Arm,
    DistanceType,
    ExitIntent,
    Instrument,
    Output,
    PipelineConfig,
    Plugin,
    Rules,
    Side,
    StopRule,
    Tick,
    Trade,
    TrailRule,
    guard,
)
from streams.examples.spike_filter import spike_filter

TOKENS = 1_000
SIZES = (10, 1_000, 10_000, 100_000)
NOW = 1_736_139_600_000  # Monday 2025-01-06 10:30 IST
SEED = 7


def _base(token: int) -> int:
    return 50_000 + token * 200  # Rs 500.00 .. Rs 2,498.00, on the 5-paise grid


def make_ticks(count: int, rng: random.Random) -> list[Tick]:
    ticks = []
    for _ in range(count):
        token = rng.randrange(TOKENS)
        base = _base(token)
        if rng.random() < 0.001:
            move = base * 15 // 1000 * rng.choice((-1, 1))  # the spike that crosses
        else:
            move = rng.randint(-base // 200, base // 200)
        ltp = (base + move) // 5 * 5
        ticks.append(Tick(f"T{token:04d}", "NSE", ltp, NOW))
    return ticks


def make_trades(count: int, rng: random.Random) -> list[Trade]:
    trades = []
    for trade_id in range(count):
        token = trade_id % TOKENS
        side = Side.LONG if trade_id % 2 == 0 else Side.SHORT
        stop_pct = Decimal(rng.randint(100, 500)) / 100
        trail = None
        if trade_id % 10 == 9:
            trail = TrailRule(DistanceType.ENTRY_PCT, Decimal(1), StopRule(DistanceType.ENTRY_PCT, Decimal(2)))
        stop, target = StopRule(DistanceType.ENTRY_PCT, stop_pct), StopRule(DistanceType.ENTRY_PCT, stop_pct * 2)
        rules = Rules(stop, target, trail)
        instrument = Instrument(f"T{token:04d}", "NSE", 5)
        trades.append(Trade(trade_id, "A1", "S1", instrument, side, 10, _base(token), rules))
    return trades


def armed_engine(trades: list[Trade], plugins: Sequence[Plugin] = ()) -> tuple[Subject[Tick], list[Output]]:
    ticks: Subject[Tick] = Subject()
    events: Subject[Arm] = Subject()
    clock: Subject[int] = Subject()
    out: list[Output] = []
    ticks.pipe(guard(events, clock, config=PipelineConfig(), plugins=plugins)).subscribe(out.append)
    clock.on_next(NOW)
    for trade in trades:
        events.on_next(Arm(trade))
    out.clear()
    return ticks, out


def engine_rate(
    trades: list[Trade], ticks: list[Tick], repeats: int, plugins: Sequence[Plugin] = ()
) -> tuple[float, int]:
    """Best ticks/s over `repeats` runs, each on a freshly armed engine (arming is not timed)."""
    best, exits = 0.0, 0
    for _ in range(repeats):
        subject, out = armed_engine(trades, plugins)
        feed = _feeder(subject, ticks)
        started = time.perf_counter()
        feed()
        best = max(best, len(ticks) / (time.perf_counter() - started))
        exits = sum(1 for item in out if type(item) is ExitIntent)
    return best, exits


def _feeder(subject: Subject[Tick], ticks: list[Tick]) -> Callable[[], int]:
    on_next = subject.on_next

    def feed() -> int:
        for tick in ticks:
            on_next(tick)
        return len(ticks)

    return feed


def run(quick: bool) -> list[Figure]:
    rng = random.Random(SEED)
    repeats = 3 if quick else 5
    armings = 1 if quick else 5  # arming 100 000 trades takes seconds; quick mode does it once
    ticks = make_ticks(50_000 if quick else 300_000, rng)

    bare: Subject[Tick] = Subject()
    bare.pipe(ops.map(lambda tick: tick.ltp), ops.filter(lambda ltp: ltp < 0)).subscribe(lambda _: None)
    bare_rate = best_rate(_feeder(bare, ticks), repeats)
    figures = [Figure("bare Subject->map->filter", bare_rate, "ticks/s")]

    rates = {}
    for size in SIZES:
        rates[size], fired = engine_rate(make_trades(size, rng), ticks, armings)
        goal = ">= 0.7x" if size == 10_000 else ""
        name = f"engine, {size:,} trades ({fired} exits/run)"
        figures.append(Figure(name, rates[size], "ticks/s", bare_rate, goal))
    spike = Plugin("spike_filter", "tick", spike_filter(max_jump_pct=5))
    filtered, fired = engine_rate(make_trades(10_000, rng), ticks, armings, [spike])
    name = f"engine + spike filter, 10,000 trades ({fired} exits/run)"
    figures.append(Figure(name, filtered, "ticks/s", bare_rate))
    per_tick_10, per_tick_100k = 1e9 / rates[10], 1e9 / rates[100_000]
    figures.append(Figure("per-tick cost, 100,000 vs 10 trades", per_tick_100k, "ns/tick", per_tick_10, "<= 1.3x"))
    return figures
