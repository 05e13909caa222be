"""The engine as reactive operators, with the plug-in stages around it.

    raw ticks ──► tick stages ──► rules (Engine) ──► outputs ──► downstream
        │            (isolated)        ▲     │                ├──► signal stages ──► CUSTOM exits
        └── watch: a raw tick that ────┘     └── ticks, clock ┘└──► observer stages
            crosses a level the stages
            hold back runs the rules itself

`guard(trade_events, clock)` is an operator on the tick stream; `fold()` is the same engine as an
operator on one merged stream of ticks, clock values and trade events (for replay and tests).

Safety of tick stages. A tick stage (a spike filter) may legitimately hold back a bad print, so the
rules do not see every raw tick. It may not hold back a real move: when a raw tick crosses an armed
level (and passes the gates) but, after the stages, the rules have not acted on it, the tick is
*held*. If the next raw tick on that token crosses too, or `hold_ms` of clock passes, the stage is
reported (`PluginWithheld`) and the rules run on the raw tick. So a stage can delay a stop by at most
`max_withheld` raw ticks of that token or `hold_ms`, whichever comes first; a single spike that
reverts is filtered as intended. A stage that fails is unplugged, reported, and the tick it failed
on (and every later one) goes straight to the rules.

Signal-stage exits are queued and applied after the current input is fully processed, so a plug-in
never re-enters the engine while it is in the middle of a tick.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

from .engine import Engine, EngineConfig
from .errors import PluginError
from .plugins import Isolated, Plugin
from .types import (
    Clock,
    Command,
    ExitIntent,
    Input,
    Operator,
    Output,
    PluginFailed,
    PluginWithheld,
    StateChange,
    Tick,
)

__all__ = ["Pipeline", "PipelineConfig", "exit_intents", "fold", "guard", "state_changes"]

RUNAWAY = 1_000  # CUSTOM exits one signal stage may ask for while the engine handles one input


class PipelineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    engine: EngineConfig = msgspec.field(default_factory=EngineConfig)
    max_withheld: int = 1  # crossing raw ticks in a row a tick stage may hold back
    hold_ms: int = 1_000  # clock time a tick stage may hold back a crossing raw tick


class Pipeline:
    """One subscription's engine and plug-in stages. Feed it; it calls `emit` with every output."""

    def __init__(
        self,
        emit: Callable[[Output], None],
        config: PipelineConfig | None = None,
        plugins: Sequence[Plugin] = (),
        fault: Callable[[Exception], None] | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        self._emit = emit
        self.engine = Engine(self._out, self.config.engine, fault)
        self._tick_stages: list[Isolated] = []
        self._listeners: list[Isolated] = []
        self._signals: list[Isolated] = []
        self._queue: deque[tuple[Isolated, ExitIntent]] = deque()
        self._held: dict[tuple[str, str], tuple[Tick, int]] = {}  # (exchange, token) -> raw tick, count
        for plugin in plugins:
            self._plug(plugin)
        plain = not any(p.stage in ("tick", "signal") for p in plugins)
        self.on_tick: Callable[[Tick], None] = self.engine.on_tick
        if not plain:
            self.on_tick = self._on_tick if fault is None else _guarded(self._on_tick, fault)

    def _plug(self, plugin: Plugin) -> None:
        if plugin.stage == "tick":
            at = len(self._tick_stages) + 1
            self._tick_stages.append(Isolated(plugin, Tick, lambda tick: self._feed(at, tick), self._failed))
        elif plugin.stage == "signal":
            stage: Isolated | None = None

            def on_signal(intent: ExitIntent) -> None:
                assert stage is not None
                self._queue.append((stage, intent))

            stage = Isolated(plugin, ExitIntent, on_signal, self._failed)
            self._signals.append(stage)
            self._listeners.append(stage)
        elif plugin.stage == "observer":
            self._listeners.append(Isolated(plugin, object, _ignore, self._failed))
        else:
            raise ValueError(f"unknown stage {plugin.stage!r}")

    # -- outputs ---------------------------------------------------------------------------------

    def _out(self, item: Output) -> None:
        self._emit(item)
        for listener in self._listeners:
            if listener.alive:
                listener.push(item)

    def _failed(self, plugin: Plugin, error: PluginError) -> None:
        self._out(PluginFailed(plugin.name, plugin.stage, error.reason))

    # -- inputs ----------------------------------------------------------------------------------

    def on_input(self, item: Input) -> None:
        if type(item) is Tick:
            self.on_tick(item)
        elif type(item) is Clock:
            self.on_clock(item.now_ms)
        else:
            self.on_event(item)  # type: ignore[arg-type]

    def on_event(self, event: Command) -> None:
        self.engine.on_event(event)
        self._drain()

    def on_clock(self, now_ms: int) -> None:
        self.engine.on_clock(now_ms)
        if self._held:
            for token, (tick, _) in list(self._held.items()):
                if now_ms - tick.exchange_ts_ms >= self.config.hold_ms:
                    del self._held[token]
                    self._overrule(tick)
        if self._signals:
            clock = Clock(now_ms)
            for stage in self._signals:
                if stage.alive:
                    stage.push(clock)
        self._drain()

    def _on_tick(self, raw: Tick) -> None:
        engine = self.engine
        acting = engine.would_act(raw)
        self._feed(0, raw)
        if acting and engine.would_act(raw):
            token = (raw.exchange, raw.token)
            withheld = self._held.pop(token, (raw, 0))[1] + 1
            if withheld > self.config.max_withheld:
                self._overrule(raw)
            else:
                self._held[token] = (raw, withheld)
        elif self._held:
            self._held.pop((raw.exchange, raw.token), None)
        self._drain()

    def _overrule(self, raw: Tick) -> None:
        if not self.engine.would_act(raw):
            return
        names = ",".join(stage.plugin.name for stage in self._tick_stages if stage.alive) or "-"
        self._out(PluginWithheld(names, raw.token, raw))
        self.engine.on_tick(raw)

    def _feed(self, start: int, tick: Tick) -> None:
        """Send a tick into the first live tick stage from `start`, or to the rules."""
        stages = self._tick_stages
        for at in range(start, len(stages)):
            if stages[at].alive and stages[at].push(tick):
                return
        self.engine.on_tick(tick)
        for stage in self._signals:
            if stage.alive:
                stage.push(tick)

    def _drain(self) -> None:
        if not self._queue:
            return
        asked: dict[int, int] = {}
        while self._queue:
            stage, intent = self._queue.popleft()
            if not stage.alive:
                continue
            count = asked[id(stage)] = asked.get(id(stage), 0) + 1
            if count > RUNAWAY:
                stage.unplug(f"asked for more than {RUNAWAY} exits at once")
                continue
            self.engine.fire_custom(intent, stage.plugin.name)


def _ignore(_: Any) -> None:
    return None


def guard(
    trade_events: Observable[Command],
    clock: Observable[int],
    *,
    config: PipelineConfig | None = None,
    plugins: Sequence[Plugin] = (),
) -> Operator[Tick, Output]:
    """Ticks in, exit intents and state changes out. `clock` carries epoch milliseconds.

    The output errors if any input errors (or the engine fails) and completes with the ticks.
    """

    def operator(ticks: Observable[Tick]) -> Observable[Output]:
        def subscribe(observer: abc.ObserverBase[Output], scheduler: abc.SchedulerBase | None = None):
            subscriptions = CompositeDisposable()

            def fault(error: Exception) -> None:
                subscriptions.dispose()
                observer.on_error(error)

            pipeline = Pipeline(observer.on_next, config, plugins, fault)
            on_event = _guarded(pipeline.on_event, fault)
            subscriptions.add(trade_events.subscribe(on_event, fault, scheduler=scheduler))
            subscriptions.add(clock.subscribe(_guarded(pipeline.on_clock, fault), fault, scheduler=scheduler))
            subscriptions.add(ticks.subscribe(pipeline.on_tick, fault, observer.on_completed, scheduler=scheduler))
            return subscriptions

        return Observable(subscribe)

    return operator


def fold(*, config: PipelineConfig | None = None, plugins: Sequence[Plugin] = ()) -> Operator[Input, Output]:
    """The engine over one merged, ordered stream of ticks, `Clock` values and trade events."""

    def operator(inputs: Observable[Input]) -> Observable[Output]:
        def subscribe(observer: abc.ObserverBase[Output], scheduler: abc.SchedulerBase | None = None):
            subscriptions = CompositeDisposable()

            def fault(error: Exception) -> None:
                subscriptions.dispose()
                observer.on_error(error)

            pipeline = Pipeline(observer.on_next, config, plugins, fault)
            on_input = _guarded(pipeline.on_input, fault)
            subscriptions.add(inputs.subscribe(on_input, fault, observer.on_completed, scheduler=scheduler))
            return subscriptions

        return Observable(subscribe)

    return operator


def _guarded(handler: Callable[[Any], None], fault: Callable[[Exception], None]) -> Callable[[Any], None]:
    def on_next(item: Any) -> None:
        try:
            handler(item)
        except Exception as error:
            fault(error)

    return on_next


def exit_intents() -> Operator[Output, ExitIntent]:
    return ops.filter(lambda item: type(item) is ExitIntent)  # type: ignore[return-value]


def state_changes() -> Operator[Output, StateChange]:
    return ops.filter(lambda item: type(item) is not ExitIntent)  # type: ignore[return-value]
