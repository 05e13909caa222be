"""Recorded ticks through the stop engine on virtual time, once per variant, in one pass.

Time is the recording's: each tick's arrival time (`RecordedTick.arrival_ns`, the wall clock of the
process that received it) and each scheduled action's `at_ms` (the stored events' times, on the same
wall clock). The engine's clock is ticked as the live guard ticks it — a `Clock` every `CLOCK_MS`
(250 ms) — on a fixed grid of multiples of `CLOCK_MS`, advanced before each input up to the input's
own time: a tick is met with the latest clock value at or before its arrival, square-off and
sessions fire on the first clock value past their time, and `stale_ms` judges each tick against that
clock, as live.

Every variant has its own engine (`streams.fold` over a subject of `Tick | Clock | Command`) and its
own plug-ins; all are fed the same inputs in the same order. An exit intent is answered at once with
`Confirm` at the latest tick of the traded instrument (the engine queues it after the input it is
handling, as it does live), so the trade leaves the engine as it would after its exit filled.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reactivex.subject import Subject

from service.recording import RecordedTick
from service.replay.plans import Fill
from service.trades import TradeRecord
from streams import (
    Armed, Clock, Command, Confirm, ExitIntent, Input, Output, PipelineConfig, Plugin, PluginFailed, PluginWithheld,
    Rearmed, Refused, Tick, TrailMoved, fold,
)

__all__ = ["CLOCK_MS", "EngineExit", "Replay", "TradeRun", "VariantRun"]

CLOCK_MS = 250  # the live guard's clock period (service/guard.py)

Key = tuple[str, str]  # (exchange, token)


@dataclass(slots=True)
class EngineExit:
    """An exit the engine decided: its intent, when (virtual ms, with the tick's recorder seq), and the
    latest tick of the traded instrument then (what an exit order would be priced on)."""

    intent: ExitIntent
    at_ms: int
    seq: int | None
    traded: Tick | None


@dataclass(slots=True)
class TradeRun:
    """One trade in one variant: as armed, how its stop moved, how it left."""

    record: TradeRecord  # as last armed or amended, with the variant's rules
    armed_ms: int
    entries: list[Fill] = field(default_factory=list)
    reductions: list[Fill] = field(default_factory=list)
    stops: list[tuple[int, int | None]] = field(default_factory=list)  # (ms, stop level) as it moved
    target: int | None = None
    exit: EngineExit | None = None
    refused: str | None = None  # the engine refused its rules: field and reason
    recorded: Any = None  # the stored exit (plans.RecordedExit), for the live variant's comparison

    @property
    def key(self) -> Key:
        return (self.record.exchange, self.record.token)


class VariantRun:
    """One variant's engine and the trades it played."""

    def __init__(self, name: str, config: PipelineConfig, plugins: Sequence[Plugin], now: Callable[[], tuple[int, int | None]],
                 latest: dict[Key, Tick]) -> None:
        self.name = name
        self.trades: dict[int, TradeRun] = {}
        self.changes: list[Output] = []  # plug-in reports and refusals, for the report
        self.now = now  # (virtual ms, the seq of the tick being handled or None)
        self.latest = latest  # the latest tick of every instrument, shared by the variants
        self._waiting: dict[Key, list[Callable[[Tick], None]]] = {}
        self._subject: Subject = Subject()
        self._errors: list[Exception] = []
        self._subject.pipe(fold(config=config, plugins=plugins)).subscribe(self._on_output, self._errors.append)

    def feed(self, item: Input) -> None:
        self._subject.on_next(item)
        if self._errors:
            raise self._errors[0]

    def command(self, command: Command) -> None:
        self.feed(command)

    def arm(self, run: TradeRun, command: Command) -> None:
        self.trades[run.record.id] = run
        self.feed(command)

    def on_next_tick(self, key: Key, action: Callable[[Tick], None]) -> None:
        """Call `action` with the next tick of `key` (after the engine has met it)."""
        self._waiting.setdefault(key, []).append(action)

    def tick(self, tick: Tick) -> None:
        self.feed(tick)
        if self._waiting:
            actions = self._waiting.pop((tick.exchange, tick.token), None)
            for action in actions or ():
                action(tick)

    def _on_output(self, item: Output) -> None:
        kind = type(item)
        if kind is ExitIntent:
            run = self.trades.get(item.trade_id)
            if run is None or run.exit is not None:
                return
            at_ms, seq = self.now()
            traded = self.latest.get(run.key)
            run.exit = EngineExit(item, at_ms, seq, traded)
            price = traded.ltp if traded is not None else int(run.record.entry_price or 0)
            self._subject.on_next(Confirm(item.trade_id, price))
        elif kind is Armed or kind is Rearmed:
            run = self.trades.get(item.state.trade_id)
            if run is not None:
                run.stops.append((self.now()[0], item.state.stop))
                run.target = item.state.target
        elif kind is TrailMoved:
            run = self.trades.get(item.trade_id)
            if run is not None:
                run.stops.append((self.now()[0], item.new_stop))
        elif kind is Refused:
            run = self.trades.get(item.trade_id)
            if run is not None and run.exit is None and run.refused is None and item.field != "trade_id":
                run.refused = f"{item.field}: {item.reason}"
            self.changes.append(item)
        elif kind is PluginFailed or kind is PluginWithheld:
            self.changes.append(item)


class Replay:
    """Schedule actions at recorded times, then `run(ticks)`: every variant sees the clock, the ticks
    and its actions in time order. `watch` names the instruments whose price path is kept."""

    def __init__(self, variants: Sequence[str], *, config: PipelineConfig | None = None,
                 plugins: Callable[[str], Sequence[Plugin]] = lambda name: (), watch: Iterable[Key] = ()) -> None:
        self.config = config or PipelineConfig()
        self.latest: dict[Key, Tick] = {}
        self.paths: dict[Key, tuple[list[int], list[int]]] = {key: ([], []) for key in watch}  # ms, ltp
        self._now_ms = 0
        self._seq: int | None = None
        self._next_clock: int | None = None
        self.ticks = 0
        self.clocks = 0
        self.runs = [VariantRun(name, self.config, plugins(name), self._now, self.latest) for name in variants]
        self._actions: list[tuple[int, int, Callable[[VariantRun], None]]] = []
        self._order = itertools.count()

    def _now(self) -> tuple[int, int | None]:
        return self._now_ms, self._seq

    def at(self, at_ms: int, action: Callable[[VariantRun], None]) -> None:
        """Run `action` on every variant at `at_ms` (before a tick that arrives in the same millisecond)."""
        heapq.heappush(self._actions, (at_ms, next(self._order), action))

    def _advance(self, now_ms: int) -> None:
        """The clock up to `now_ms`: every grid value at or before it not yet given."""
        if self._next_clock is None:
            self._next_clock = now_ms - now_ms % CLOCK_MS
        while self._next_clock <= now_ms:
            clock = Clock(self._next_clock)
            self._now_ms, self._seq = self._next_clock, None
            for run in self.runs:
                run.feed(clock)
            self._next_clock += CLOCK_MS
            self.clocks += 1
        self._now_ms = now_ms

    def _act_until(self, now_ms: int | None) -> None:
        while self._actions and (now_ms is None or self._actions[0][0] <= now_ms):
            at_ms, _, action = heapq.heappop(self._actions)
            self._advance(max(at_ms, self._now_ms))
            self._seq = None
            for run in self.runs:
                action(run)

    def run(self, ticks: Iterable[RecordedTick]) -> list[VariantRun]:
        paths, latest = self.paths, self.latest
        for recorded in ticks:
            now_ms = recorded.arrival_ns // 1_000_000
            self._act_until(now_ms)
            self._advance(max(now_ms, self._now_ms))
            tick = recorded.tick
            key = (tick.exchange, tick.token)
            latest[key] = tick
            path = paths.get(key)
            if path is not None:
                path[0].append(self._now_ms)
                path[1].append(tick.ltp)
            self._seq = recorded.seq
            for run in self.runs:
                run.tick(tick)
            self.ticks += 1
        self._act_until(None)
        return self.runs
