"""The parts of execution wired by hand on the model broker and a store on a temporary file — no
server, no paper exchange, no engine: each part gets what it needs, as the Trader gives it.

The guard is `GuardLog`: no engine stands behind it (nothing is armed, so a close fires its exit
here), and it keeps what execution told it.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from service.broker import OrderKind, OrderSide, Priority
from service.broker.model import ModelBroker
from service.execution.backstop import BrokerStops
from service.execution.chase import Chaser
from service.execution.config import ExecConfig
from service.execution.doubt import DoubtRule
from service.execution.entries import EntryQueue
from service.execution.exits import ExitLoop
from service.execution.journal import Journal
from service.execution.orders import OrderLedger
from service.execution.positions import Books, PositionBook
from service.store import OrderRecord, Store
from service.trades import TradeEvent, TradeRecord, TradeSpec, TradeState
from tests.support.waiting import until

SBIN = "3045"
PRICE = 80_000  # 800.00
KEY = ("NSE", SBIN, "INTRADAY")
FAST = ExecConfig(chase_ms=20, retry_backoff_s=0.01, confirm_after_s=0.05, doubt_settle_s=0.1,
                  protection_pct=Decimal("0.5"))


class Tasks:
    """What the Trader does with the tasks its parts start: keep them, and cancel them at the end."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return task

    async def stop(self) -> None:
        for task in list(self.running):
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)


@dataclass
class GuardLog:
    calls: list[tuple] = field(default_factory=list)
    records: dict[int, TradeRecord] = field(default_factory=dict)  # nothing armed: the exit path reads the store

    def armed(self, trade_id: int) -> bool:
        return False

    def last_price(self, exchange: str, token: str) -> int | None:
        return None  # the exit path asks the broker

    def close(self, trade_id: int, reason: str = "MANUAL") -> None:
        self.calls.append(("close", trade_id, reason))

    def confirm(self, trade_id: int, exit_price: int) -> None:
        self.calls.append(("confirm", trade_id, exit_price))


@dataclass
class Parts:
    broker: ModelBroker
    store: Store
    tasks: Tasks
    books: Books
    orders: OrderLedger
    doubt: DoubtRule
    entries: EntryQueue
    exits: ExitLoop
    guard: GuardLog
    published: list[TradeRecord]
    fills: list[tuple[str, int, int, bool]]  # (tag, units, price, closed) as the ledger reported them
    stops: BrokerStops = None  # type: ignore[assignment]
    triggered: list[int] = field(default_factory=list)  # trades whose broker stop triggered first

    @property
    def book(self) -> PositionBook:
        return self.books.book(None)

    async def until(self, predicate: Callable[[], Any | Awaitable[Any]], what: str, timeout: float = 5) -> Any:
        """The first truthy value of `predicate()` (awaited if it is a coroutine), or AssertionError."""
        return await until(predicate, what, timeout)

    async def trade(self, trade_id: int) -> TradeRecord:
        trade = await self.store.trade(trade_id)
        assert trade is not None
        return trade

    async def in_state(self, trade_id: int, state: TradeState, timeout: float = 5) -> TradeRecord:
        async def reached() -> TradeRecord | None:
            trade = await self.trade(trade_id)
            return trade if trade.state is state else None
        return await self.until(reached, f"trade {trade_id} {state}", timeout)

    async def kinds(self, trade_id: int) -> list[str]:
        """The kinds of the trade's events, in order."""
        return [event["kind"] for event in await self.store.events(trade_id)]

    async def event(self, trade_id: int, kind: str) -> list[dict[str, Any]]:
        """The data of the trade's events of `kind`, in order."""
        return [event["data"] for event in await self.store.events(trade_id) if event["kind"] == kind]

    async def pending(self, quantity: int | None = None, *, side: str = "LONG", product: str = "INTRADAY",
                      **spec: Any) -> TradeRecord:
        """A trade as an alert leaves it: PENDING_ENTRY, sized to `quantity` units when given."""
        trade = TradeRecord(id=0, alert_id=None, account="A1", strategy="unit", exchange="NSE", token=SBIN,
                      tradingsymbol="SBIN-EQ", side=side, product=product, created_ms=int(time.time() * 1000),
                      spec=TradeSpec(**{"tick_size": 5, "lot_size": 1, "alert_price": PRICE, "login": None, **spec}))
        trade = await self.store.db.write(lambda db: Store.insert_trade(db, trade))
        if quantity is not None:
            trade = await self.store.record(trade.id, TradeEvent(kind="sized", at_ms=0, data={"quantity": quantity}))
        return trade

    async def opened(self, quantity: int, *, side: str = "LONG", product: str = "INTRADAY", **spec: Any) -> TradeRecord:
        """A trade whose MARKET entry filled at the broker (the position is there) and is recorded."""
        trade = await self.pending(quantity, side=side, product=product, **spec)
        record = await self.send(trade, "entry", 1, quantity)
        assert record is not None
        return await self.until(lambda: self._open(trade.id, quantity), f"trade {trade.id} open")

    async def _open(self, trade_id: int, quantity: int) -> TradeRecord | None:
        trade = await self.trade(trade_id)
        return trade if trade.state is TradeState.OPEN and trade.filled == quantity else None

    async def send(self, trade: TradeRecord, role: str, attempt: int, quantity: int, *, price: int = 0) -> OrderRecord | None:
        """An order the way execution sends one: the entry BUYs a long trade, the exit SELLs it."""
        buys = trade.long == (role == "entry")
        return await self.orders.send(trade, role, attempt, OrderSide.BUY if buys else OrderSide.SELL, quantity,
                                      OrderKind.LIMIT if price else OrderKind.MARKET, price,
                                      Priority.ENTRY if role == "entry" else Priority.EXIT)


@pytest.fixture
def config() -> ExecConfig:
    """Execution's configuration for the parts (a test module may override it: broker stops on)."""
    return FAST


@pytest.fixture
async def parts(store: Store, config: ExecConfig):
    broker = ModelBroker({("NSE", SBIN): PRICE})
    tasks, guard, published, fills, triggered = Tasks(), GuardLog(), [], [], []
    watchers: list[BrokerStops] = []

    def publish(trade: TradeRecord) -> None:
        published.append(trade)
        for stops in watchers:
            stops.observe(trade)

    journal = Journal(store, lambda: int(time.time() * 1000), publish)
    books = Books(lambda login: broker.positions)

    def on_fill(record: OrderRecord, trade: TradeRecord, price: int, closed: bool, delta: int) -> None:
        fills.append((record.tag, delta, price, closed))

    orders = OrderLedger(journal, books, broker_for=lambda trade: broker, spawn=tasks.spawn, on_fill=on_fill)
    doubt = DoubtRule(orders, config, broker_for=lambda trade: broker)
    entries = EntryQueue(orders, doubt, config, broker_for=lambda trade: broker, ltp=broker.ltp, spawn=tasks.spawn)

    async def ltp(trade: TradeRecord) -> int:
        return await broker.ltp(trade.exchange, trade.tradingsymbol, trade.token)

    chaser = Chaser(orders, doubt, config, broker_for=lambda trade: broker, ltp=ltp, bands={})
    stops = BrokerStops(orders, doubt, config.backup, broker_for=lambda trade: broker, spawn=tasks.spawn, bands={},
                        on_trigger=triggered.append)
    watchers.append(stops)
    exits = ExitLoop(orders, books, chaser, guard, stops, broker_for=lambda trade: broker,  # type: ignore[arg-type]
                     spawn=tasks.spawn)
    updates = broker.order_update_stream().updates.subscribe(orders.on_order_update)
    await books.book(None).refresh()
    try:
        yield Parts(broker, store, tasks, books, orders, doubt, entries, exits, guard, published, fills, stops, triggered)
    finally:
        updates.dispose()
        await tasks.stop()
        for book in books.books.values():
            if book._refreshing is not None:
                book._refreshing.cancel()
                await asyncio.gather(book._refreshing, return_exceptions=True)
