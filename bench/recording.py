"""Recording (RECORD_TICKS) on the tick path: ticks/s through the guard with a recorder and without.

The guard is `service.guard.Guard` itself, fed by an in-memory tick stream (no socket), its engine
holding 10 000 armed trades over 1 000 tokens (`bench.engine`'s trades and ticks, the same in both).
Off: the guard as `serve` runs it with RECORD_TICKS=false. On: a `Recorder` attached as `serve`
attaches it, writing to a scratch folder; the timed region runs from the first tick to the recorder's
`stop` returning — every tick stamped, queued, converted to Arrow, compressed and written — so the
writer thread's share of the interpreter is in the figure, not only `offer`'s. Its queue holds every
tick of a run (nothing is dropped; the dropped count is printed). Runs alternate off/on, the best of
each is kept. Also: the process's CPU time per tick over the same timed region (every thread: the tick
path, the writer's conversion and its GIL-free compression), off and on, which a busy machine disturbs
far less than the rate; `offer` alone per tick (no writer); and the bytes per tick of the hour file and
of the Parquet day compacted from it.
"""
from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from pathlib import Path

from reactivex.subject import Subject

from bench.common import Figure
from bench.engine import NOW, SEED, make_ticks, make_trades
from service.guard import Guard
from service.recording.files import compact_day, day_file, hour_files
from service.recording.recorder import Recorder
from streams import Arm, Tick

TRADES = 10_000


class _Feed:
    """A tick stream without a socket: the benchmark pushes ticks into `ticks`."""

    def __init__(self) -> None:
        self.ticks: Subject[Tick] = Subject()
        self.events: Subject = Subject()
        self.subscriptions: set[tuple[str, str]] = set()
        self.expect_ticks = lambda exchanges: True

    def subscribe(self, instruments) -> None:
        self.subscriptions.update(instruments)

    def unsubscribe(self, instruments) -> None:
        self.subscriptions.difference_update(instruments)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def _run(trades, ticks: list[Tick], root: Path | None) -> tuple[float, float, int]:
    """ticks/s through a freshly armed guard (arming not timed), the process's CPU ns per tick over the
    same region, and the ticks the recorder dropped."""
    feed = _Feed()
    guard = Guard(feed, on_exit=lambda intent: None, on_change=lambda change: None, clock=lambda: NOW / 1000)
    for trade in trades:
        guard.pipeline.on_event(Arm(trade))
    recorder = None
    if root is not None:
        recorder = Recorder(root, queue_limit=len(ticks))
        recorder.start()
        guard.record_ticks(recorder.offer)
    await guard.start()
    push = feed.ticks.on_next
    cpu, started = time.process_time(), time.perf_counter()
    for tick in ticks:
        push(tick)
    if recorder is not None:
        recorder.stop()  # the writer's work is part of the cost: timed until every tick is on disk
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await guard.stop()
    assert guard.ticks_seen == len(ticks)
    return len(ticks) / elapsed, cpu / len(ticks) * 1e9, recorder.counts().dropped if recorder is not None else 0


def _offer_ns(ticks: list[Tick], root: Path) -> float:
    """ns per `offer` with no writer running: the recorder's own share of the tick path."""
    best = float("inf")
    for _ in range(5):
        recorder = Recorder(root, queue_limit=len(ticks) + 1)
        offer = recorder.offer
        started = time.perf_counter()
        for tick in ticks:
            offer(tick)
        best = min(best, (time.perf_counter() - started) / len(ticks) * 1e9)
    return best


def _sizes(root: Path, count: int) -> tuple[float, float]:
    """Bytes per tick of the run's hour files and of the Parquet day compacted from them."""
    (day,) = [p.name for p in root.iterdir() if p.is_dir()]
    arrows = sum(p.stat().st_size for p in hour_files(root, day))
    compact_day(root, day)
    return arrows / count, day_file(root, day).stat().st_size / count


def run(quick: bool) -> list[Figure]:
    rng = random.Random(SEED)
    ticks = make_ticks(50_000 if quick else 300_000, rng)
    trades = make_trades(TRADES, rng)
    repeats = 3 if quick else 5
    scratch = Path(tempfile.mkdtemp(prefix="tickguard-bench-recording-"))
    try:
        off = on = 0.0
        cpu_off = cpu_on = float("inf")
        dropped = 0
        for attempt in range(repeats):
            rate, cpu, _ = asyncio.run(_run(trades, ticks, None))
            off, cpu_off = max(off, rate), min(cpu_off, cpu)
            rate, cpu, lost = asyncio.run(_run(trades, ticks, scratch / f"run-{attempt}"))
            on, cpu_on, dropped = max(on, rate), min(cpu_on, cpu), max(dropped, lost)
        per_tick_off = 1e9 / off
        offer = _offer_ns(ticks, scratch / "offer")
        arrow_bytes, parquet_bytes = _sizes(scratch / "run-0", len(ticks))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [
        Figure(f"guard tick path, {TRADES:,} trades, recording off", off, "ticks/s"),
        Figure(f"guard tick path, recording on ({dropped} dropped)", on, "ticks/s", off),  # its cost, shown: no goal of its own
        Figure("CPU per tick, all threads: recording on vs off", cpu_on, "ns/tick", cpu_off),
        Figure("recorder offer() alone vs the guard's tick", offer, "ns/tick", per_tick_off),
        Figure("recorded bytes per tick: hour file vs Parquet", parquet_bytes, "B/tick", arrow_bytes),
    ]
