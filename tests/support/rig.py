"""A Trader on the model broker: the real execution code, guard and engine, and a real store on a
temporary SQLite file — no network, so faults are exact and a scenario takes milliseconds.

    async with trading_rig(tmp_path) as rig:
        trade_id = await rig.open_trade(quantity=5)
        rig.broker.arm(Fault(placement="doubt_placed", fill="rest"))
        rig.broker.set_price("NSE", SBIN, 78_900)  # through the stop: the engine fires the exit

With `record_changes=True` the engine's changes are also written down as trade events, as the
runtime does (`service.changes`): a trade's stop reaches the store and the broker stops follow it.
`kill()` ends the process abruptly — its tasks cancelled mid-step, its broker connection cut, the
writes it had not committed lost — and `restart()` starts a new one on the same store file and the
same model broker, reconciled by `service.recovery.recover` as the runtime does.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import queue
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.broker.model import ModelBroker
from service.changes import EngineChanges
from service.halts import Halts
from service.recovery import RecoveryParts, recover
from service.runtime import always_open_calendar
from service.execution import ExecConfig, Trader
from service.guard import Guard
from service.store import Store
from service.trades import TradeRecord, TradeSpec, TradeState
from streams import SessionClock
from tests.support.waiting import until

__all__ = ["Rig", "trading_rig", "SBIN", "FAST"]

SBIN = "3045"
# Every wait of the exit path short, so a scenario runs in a fraction of a second.
FAST = ExecConfig(chase_ms=20, retry_backoff_s=0.01, confirm_after_s=0.05, doubt_settle_s=0.1,
                  protection_pct=Decimal("0.5"))


class _Line:
    """One process's connection to the broker: every call goes through to the model broker while the
    process lives; once it is killed a call never returns (nothing of a dead process reaches the broker)."""

    def __init__(self, broker: ModelBroker) -> None:
        self._broker = broker
        self.alive = True

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._broker, name)
        if not inspect.iscoroutinefunction(value):
            return value

        async def call(*args: Any, **kwargs: Any) -> Any:
            if not self.alive:
                await asyncio.Event().wait()  # the process is gone: it waits until it is cancelled
            return await value(*args, **kwargs)

        return call


@dataclass
class Rig:
    store: Store
    broker: ModelBroker
    guard: Guard
    trader: Trader
    changes: list[Any] = field(default_factory=list)  # the engine's state changes (Armed, Refused…)
    config: ExecConfig = FAST
    record_changes: bool = False
    alive: bool = True
    _line: _Line | None = None
    _updates: Any = None  # the order-update subscription of the running process

    async def open_trade(self, quantity: int = 5, *, side: str = "LONG", stop_points: int = 10,
                         exchange: str = "NSE", token: str = SBIN, armed: bool = True,
                         rules: dict[str, Any] | None = None, **spec: Any) -> int:
        """A trade entered at the market's price with a stop `stop_points` rupees away (or `rules`);
        waits for the entry to fill and the stop to be armed (unless `armed` is False). `spec`: more
        of its TradeSpec (freeze_qty…)."""
        price = self.broker.prices[(exchange, token)]
        trade = TradeRecord(id=0, alert_id=None, account="A1", strategy="rig", exchange=exchange, token=token,
                      tradingsymbol=f"T{token}", side=side, product="INTRADAY", created_ms=int(time.time() * 1000),
                      spec=TradeSpec(rules=rules or {"stop": {"type": "points", "value": stop_points}}, tick_size=5,
                                     lot_size=1, alert_price=price, fund=10**10, login=None, **spec))
        trade_id = (await self.store.db.write(lambda db: Store.insert_trade(db, trade))).id
        self.trader.submit([trade_id], fund=10**10, requested={trade_id: quantity})
        if armed:
            await self.until(lambda: self.guard.armed(trade_id), f"trade {trade_id} armed")
        return trade_id

    async def trade(self, trade_id: int) -> TradeRecord:
        trade = await self.store.trade(trade_id)
        assert trade is not None
        return trade

    async def until(self, predicate: Callable[[], Any | Awaitable[Any]], what: str, timeout: float = 5) -> Any:
        """The first truthy value of `predicate()` (awaited if it is a coroutine), or AssertionError."""
        return await until(predicate, what, timeout)

    async def settled(self, trade_id: int, timeout: float = 5) -> TradeRecord:
        """The trade once it is CLOSED, UNPROTECTED, REJECTED or EXPIRED."""
        final = (TradeState.CLOSED, TradeState.UNPROTECTED, TradeState.REJECTED, TradeState.EXPIRED)

        async def done() -> TradeRecord | None:
            trade = await self.trade(trade_id)
            return trade if trade.state in final else None

        return await self.until(done, f"trade {trade_id} settled", timeout)

    def exits(self, trade_id: int) -> list:
        """The trade's exit orders as the broker has them (listed or not)."""
        from service.trades import tag_for

        prefix = tag_for(trade_id, "exit", 1)[:-1]
        return [order for order in self.broker.orders(prefix) if order.tag[len(prefix):].isdigit()]

    # A crash and a restart ------------------------------------------------------------------------
    async def kill(self, *, lose_unsaved: bool = True) -> None:
        """The process dies here: its broker connection is cut, every task of its Trader and guard is
        cancelled wherever it is (no cleanup reaches the broker), its subscriptions end, and — with
        `lose_unsaved` — the writes queued but not yet committed are lost, as in a crash."""
        assert self.alive, "the rig is not running"
        self.alive = False
        if self._line is not None:
            self._line.alive = False
        if self._updates is not None:
            self._updates.dispose()
        await self.guard.stop()
        self.broker.tick_stream().subscriptions.clear()  # a new process subscribes afresh
        await _cancel_all(self.trader)
        if lose_unsaved:
            _drop_queued(self.store)
        await self.store.close()

    async def restart(self) -> dict[str, int]:
        """A new process on the same store file and model broker (killing the running one first):
        its order updates subscribed, its guard started, then recovery as the runtime runs it, then
        the position book snapshotted. Recovery's report."""
        if self.alive:
            await self.kill()
        self.store = Store(self.store.db.path, synchronous="OFF")
        self.store.open()
        _start(self)
        await self.guard.start()
        report = await recover(RecoveryParts(
            store=self.store, brokers=[self.trader.broker], trader=self.trader, guard=self.guard,
            sessions=SessionClock(always_open_calendar()), clock=time.time, restore_day=_nothing))
        await self.trader.book("").refresh()
        return report


def _start(rig: Rig) -> None:
    """A process's guard and Trader on `rig.store` and `rig.broker`, its order updates subscribed."""
    line = rig._line = _Line(rig.broker)
    trader: Trader | None = None
    recorded: EngineChanges | None = None

    def on_exit(intent) -> None:
        assert trader is not None
        trader.on_exit_intent(intent)

    def on_change(change) -> None:
        rig.changes.append(change)
        if recorded is not None:
            recorded.on_change(change)

    rig.guard = Guard(rig.broker.tick_stream(), on_exit=on_exit, on_change=on_change, calendar=always_open_calendar())
    rig.trader = trader = Trader(rig.store, line, rig.guard, config=rig.config)  # type: ignore[arg-type]
    if rig.record_changes:
        halts = Halts(rig.store, trader.now_ms, lambda kind, data: None)
        recorded = EngineChanges(rig.store, halts, record=trader.record, now_ms=trader.now_ms, spawn=trader.spawn)
    rig._updates = rig.broker.order_update_stream().updates.subscribe(trader.on_order_update)
    rig.alive = True


async def _cancel_all(trader: Trader) -> None:
    """Cancel every task of the Trader, and those its cancelled tasks start on their way out."""
    while trader._tasks:
        await trader.stop()
    for book in trader.books.values():
        if book._refreshing is not None:
            book._refreshing.cancel()
            await asyncio.gather(book._refreshing, return_exceptions=True)


def _drop_queued(store: Store) -> None:
    """Writes queued for the writer thread and not yet taken: lost with the process."""
    pending = store.db._queue
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return


async def _nothing() -> None:
    return None


@contextlib.asynccontextmanager
async def trading_rig(tmp_path: Path, *, config: ExecConfig = FAST, prices: dict[tuple[str, str], int] | None = None,
                      broker: ModelBroker | None = None, record_changes: bool = False) -> AsyncIterator[Rig]:
    broker = broker or ModelBroker(prices or {("NSE", SBIN): 80_000})
    store = Store(tmp_path / f"rig-{time.monotonic_ns()}.db", synchronous="OFF")
    store.open()
    rig = Rig(store, broker, None, None, config=config, record_changes=record_changes)  # type: ignore[arg-type]
    _start(rig)
    await rig.guard.start()
    await rig.trader.book("").refresh()
    try:
        yield rig
    finally:
        if rig.alive:
            rig._updates.dispose()
            await _cancel_all(rig.trader)
            await rig.guard.stop()
            await rig.store.close()
