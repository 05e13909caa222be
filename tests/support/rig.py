"""A Trader on the model broker: the real execution code, guard and engine, and a real store on a
temporary SQLite file — no network, so faults are exact and a scenario takes milliseconds.

    async with trading_rig(tmp_path) as rig:
        trade_id = await rig.open_trade(quantity=5)
        rig.broker.arm(Fault(placement="doubt_placed", fill="rest"))
        rig.broker.set_price("NSE", SBIN, 78_900)  # through the stop: the engine fires the exit
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from service.broker.model import ModelBroker
from service.runtime import always_open_calendar
from service.execution import ExecConfig, Trader
from service.guard import Guard
from service.store import Store
from service.trades import TradeRecord, TradeSpec, TradeState
from tests.support.waiting import until

__all__ = ["Rig", "trading_rig", "SBIN", "FAST"]

SBIN = "3045"
# Every wait of the exit path short, so a scenario runs in a fraction of a second.
FAST = ExecConfig(chase_ms=20, retry_backoff_s=0.01, confirm_after_s=0.05, doubt_settle_s=0.1,
                  protection_pct=Decimal("0.5"))


@dataclass
class Rig:
    store: Store
    broker: ModelBroker
    guard: Guard
    trader: Trader
    changes: list[Any] = field(default_factory=list)  # the engine's state changes (Armed, Refused…)

    async def open_trade(self, quantity: int = 5, *, side: str = "LONG", stop_points: int = 10,
                         exchange: str = "NSE", token: str = SBIN, armed: bool = True) -> int:
        """A trade entered at the market's price with a stop `stop_points` rupees away; waits for the
        entry to fill and the stop to be armed (unless `armed` is False)."""
        price = self.broker.prices[(exchange, token)]
        trade = TradeRecord(id=0, alert_id=None, account="A1", strategy="rig", exchange=exchange, token=token,
                      tradingsymbol=f"T{token}", side=side, product="INTRADAY", created_ms=int(time.time() * 1000),
                      spec=TradeSpec(rules={"stop": {"type": "points", "value": stop_points}}, tick_size=5,
                                     lot_size=1, alert_price=price, fund=10**10, login=None))
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


@contextlib.asynccontextmanager
async def trading_rig(tmp_path: Path, *, config: ExecConfig = FAST, prices: dict[tuple[str, str], int] | None = None,
                      broker: ModelBroker | None = None) -> AsyncIterator[Rig]:
    broker = broker or ModelBroker(prices or {("NSE", SBIN): 80_000})
    store = Store(tmp_path / f"rig-{time.monotonic_ns()}.db", synchronous="OFF")
    store.open()
    changes: list[Any] = []
    trader: Trader | None = None

    def on_exit(intent) -> None:
        assert trader is not None
        trader.on_exit_intent(intent)

    guard = Guard(broker.tick_stream(), on_exit=on_exit, on_change=changes.append, calendar=always_open_calendar())
    trader = Trader(store, broker, guard, config=config)
    updates = broker.order_update_stream().updates.subscribe(trader.on_order_update)
    await guard.start()
    await trader.book("").refresh()
    rig = Rig(store, broker, guard, trader, changes)
    try:
        yield rig
    finally:
        updates.dispose()
        await trader.stop()
        for book in trader.books.values():
            if book._refreshing is not None:
                book._refreshing.cancel()
                await asyncio.gather(book._refreshing, return_exceptions=True)
        await guard.stop()
        await store.close()
