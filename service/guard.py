"""The guard: live ticks and a clock into the stop engine, exit intents and state changes out.

It owns the engine pipeline (`streams.Pipeline`), keeps the tick stream subscribed to exactly the
basis tokens of armed trades, and ticks the engine's clock. Ticks reach the engine straight from the
stream's subject on the event loop — no queue, no copy, no per-tick allocation here beyond a count.
With recording on (`record_ticks`), each tick is offered to the recorder just before the engine sees it, so
the recording holds exactly the engine's ticks in its order; off, that costs one attribute check.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET

from service.broker.port import TickStream
from service.trades import TradeRecord
from streams import (
    Arm,
    Amend,
    Calendar,
    Close,
    Confirm,
    Disarm,
    EngineConfig,
    ExitIntent,
    ExitReason,
    Instrument,
    Pipeline,
    PipelineConfig,
    Plugin,
    PluginFailed,
    PluginWithheld,
    Rearm,
    Reduce,
    RestoreDay,
    Rules,
    SetLimit,
    Side,
    StateChange,
    StopState,
    Tick,
    Trade,
)

__all__ = ["Guard", "engine_trade"]

log = logging.getLogger("tickguard.guard")
CLOCK_MS = 250


def engine_trade(record: TradeRecord) -> Trade:
    """The engine's view of a stored trade: its open filled quantity at its average entry."""
    spec = record.spec
    instrument = Instrument(record.token, record.exchange, spec.tick_size)
    basis = None
    if spec.basis:
        basis = Instrument(spec.basis.token, spec.basis.exchange, spec.basis.tick_size)
    return Trade(
        id=record.id,
        account=record.account,
        strategy=record.strategy,
        instrument=instrument,
        side=Side(record.side.lower()),
        quantity=record.open_quantity,
        entry=int(record.entry_price or 0),
        rules=msgspec.convert(spec.rules, Rules, dec_hook=_decimal),
        basis=basis,
        basis_entry=None if spec.basis_entry is UNSET else spec.basis_entry,
        basis_side=Side(spec.basis_side.lower()) if spec.basis_side else None,
        fund=spec.fund,
        product=record.product,
        sized_for=spec.sized_for or None,
        rule_quantity=record.filled if record.exited else None,  # partly exited: levels of the filled size
    )


def _log_plugin(change: PluginFailed | PluginWithheld) -> None:
    log.warning("plug-in reported", extra={"change": repr(change)})


def _decimal(kind: type, value: Any) -> Any:
    if kind is Decimal:
        return Decimal(str(value))
    raise NotImplementedError


class Guard:
    def __init__(self, ticks: TickStream, *, on_exit: Callable[[ExitIntent], None],
                 on_change: Callable[[StateChange], None], calendar: Calendar | None = None,
                 stale_ms: int = 5_000, plugins: Sequence[Plugin] = (),
                 on_plugin: Callable[[PluginFailed | PluginWithheld], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.stream = ticks
        self.clock = clock
        self._on_exit = on_exit
        self._on_change = on_change
        self._on_plugin = on_plugin or _log_plugin  # what became of a plug-in: unplugged, or overruled
        engine = EngineConfig(calendar=calendar, stale_ms=stale_ms) if calendar else EngineConfig(stale_ms=stale_ms)
        self.pipeline = Pipeline(self._emit, PipelineConfig(engine=engine), plugins, fault=self._fault)
        self._engine_tick = self.pipeline.on_tick
        self._record: Callable[[Tick], None] | None = None
        self._tokens: Counter[tuple[str, str]] = Counter()  # basis (exchange, token) -> armed trades on it
        self._basis: dict[int, tuple[str, str]] = {}
        self.records: dict[int, TradeRecord] = {}  # armed trades as last armed: the exit path reads no store
        self.ticks_seen = 0
        self.latest_tick_ms: int | None = None  # the newest exchange time stamp of any tick received
        self._subscription = None
        self._clock_task: asyncio.Task | None = None

    async def start(self) -> None:
        self._subscription = self.stream.ticks.subscribe(self._on_tick)
        self.pipeline.on_clock(int(self.clock() * 1000))
        self._clock_task = asyncio.create_task(self._tick_clock(), name="guard-clock")
        await self.stream.start()

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            try:
                await self._clock_task
            except asyncio.CancelledError:
                pass
        if self._subscription is not None:
            self._subscription.dispose()
        await self.stream.stop()

    def record_ticks(self, offer: Callable[[Tick], None] | None) -> None:
        """Offer every tick to `offer` (a recorder's: it must not block or raise) before the engine
        sees it; None stops it."""
        self._record = offer

    def _on_tick(self, tick: Tick) -> None:
        self.ticks_seen += 1
        if self.latest_tick_ms is None or tick.exchange_ts_ms > self.latest_tick_ms:
            self.latest_tick_ms = tick.exchange_ts_ms
        if self._record is not None:
            self._record(tick)
        self._engine_tick(tick)

    async def _tick_clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_MS / 1000)
            self.pipeline.on_clock(int(self.clock() * 1000))

    def _emit(self, output: Any) -> None:
        kind = type(output)
        if kind is ExitIntent:
            self._on_exit(output)
        elif kind is PluginFailed or kind is PluginWithheld:
            self._on_plugin(output)
        else:
            self._on_change(output)

    def _fault(self, error: Exception) -> None:
        log.error("stop engine fault", extra={"error": repr(error)})

    # Trade events ----------------------------------------------------------------------------------
    def arm(self, record: TradeRecord, resume_stop: int | None = None, resume_trailing: bool = False) -> None:
        """Arm a trade in the engine (or amend an armed one); its basis instrument is subscribed only
        once the engine has taken it — a trade the engine refuses is neither armed nor subscribed."""
        trade = engine_trade(record)
        if record.id in self._basis:
            self.records[record.id] = record
            self.pipeline.on_event(Amend(trade))
            return
        self.pipeline.on_event(Arm(trade, resume_stop, resume_trailing))
        if not self.pipeline.engine.guards(record.id):
            return  # refused (the engine said why): nothing to subscribe, nothing to keep
        basis = trade.basis or trade.instrument
        key = (basis.exchange, basis.token)
        self.records[record.id] = record
        self._basis[record.id] = key
        self._tokens[key] += 1
        if self._tokens[key] == 1:
            self.stream.subscribe([key])

    def reduce(self, record: TradeRecord, quantity: int, exit_price: int) -> None:
        """`quantity` units of an armed trade exited at `exit_price`: the engine realises that part and
        keeps guarding the rest at the same levels."""
        if record.id not in self._basis:
            return
        self.records[record.id] = record
        self.pipeline.on_event(Reduce(record.id, quantity, exit_price))

    def confirm(self, trade_id: int, exit_price: int) -> None:
        if trade_id not in self._basis:  # disarmed already (an exit decided outside the engine)
            return
        self.pipeline.on_event(Confirm(trade_id, exit_price))
        self._release(trade_id)

    def disarm(self, trade_id: int) -> None:
        self.pipeline.on_event(Disarm(trade_id))
        self._release(trade_id)

    def rearm(self, trade_id: int) -> None:
        self.pipeline.on_event(Rearm(trade_id))

    def close(self, trade_id: int, reason: str = "MANUAL") -> None:
        self.pipeline.on_event(Close(trade_id, ExitReason(reason)))

    def armed(self, trade_id: int) -> bool:
        """The engine guards the trade (armed, or exiting until confirmed or disarmed)."""
        return self.pipeline.engine.guards(trade_id)

    def set_limit(self, limit: SetLimit) -> None:
        """A daily-loss limit of an account or a strategy, as the engine should hold it."""
        self.pipeline.on_event(limit)

    def restore_day(self, restored: RestoreDay) -> None:
        """A group's realised P&L and loss halt of today, handed back at start."""
        self.pipeline.on_event(restored)

    def stop_state(self, trade_id: int) -> StopState | None:
        """The engine's levels of an armed trade (None when it is not armed)."""
        return self.pipeline.engine.state(trade_id)

    def entries_open(self, exchange: str) -> bool:
        return self.pipeline.engine.entries_open(exchange)

    def last_tick(self, exchange: str, token: str) -> Tick | None:
        """The engine's latest tick of an instrument (the same object until another comes), or None."""
        return self.pipeline.engine.last_tick(exchange, token)

    def last_price(self, exchange: str, token: str) -> int | None:
        """The engine's latest price of an instrument, for pricing an exit; None when it has none."""
        tick = self.last_tick(exchange, token)
        return tick.ltp if tick is not None else None

    @property
    def older_ticks(self) -> int:
        """Ticks the engine met older (exchange time stamp) than an earlier tick of their instrument."""
        return self.pipeline.engine.older_ticks

    def last_seen(self, exchange: str, token: str) -> tuple[int, int] | None:
        """(price, the exchange's time stamp in epoch ms) of the engine's latest tick of an instrument —
        held only while a trade is guarded on it — or None."""
        tick = self.pipeline.engine.last_tick(exchange, token)
        return (tick.ltp, tick.exchange_ts_ms) if tick is not None else None

    def _release(self, trade_id: int) -> None:
        self.records.pop(trade_id, None)
        key = self._basis.pop(trade_id, None)
        if key is None:
            return
        self._tokens[key] -= 1
        if self._tokens[key] <= 0:
            del self._tokens[key]
            self.stream.unsubscribe([key])  # the engine forgets the token's last tick with its last trade
