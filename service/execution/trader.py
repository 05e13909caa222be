"""The Trader: trades into broker orders, broker order events into trade events (trading-semantics §5).

It composes the parts of execution, each given what it needs rather than the Trader itself:

    Journal      trade events stored and published (`record`)            journal.py
    Books        one position book per login, our orders in them         positions.py
    OrderLedger  orders sent with their rows, the broker's news applied  orders.py
    DoubtRule    placements in doubt, until the broker settles them      doubt.py
    EntryQueue   entries sized and sent in arrival order                 entries.py
    Chaser       one exit order priced, watched and re-priced            chase.py
    ExitLoop     full and partial exits, one order in flight per trade   exits.py
    BrokerStops  the broker-side backup stop behind the engine's          backstop.py

What the Trader keeps itself: the logins, the tasks it runs (drained and stopped here), and what a
recorded fill sets going — an entry fill arms the trade in the guard, an exit fill realises its part
in the engine, the last one confirms the close.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from service.broker import Broker, BrokerError, BrokerOrder, MarketData, OrderUpdate
from service.execution.backstop import BrokerStops
from service.execution.chase import Chaser
from service.execution.config import ExecConfig
from service.execution.doubt import DoubtRule
from service.execution.entries import EntryQueue
from service.execution.exits import ExitLoop
from service.execution.journal import Journal
from service.execution.orders import OrderLedger
from service.execution.positions import Books, PositionBook
from service.guard import Guard
from service.store import OrderRecord, Store
from service.trades import TradeRecord, TradeState
from streams import ExitIntent, ExitReason

__all__ = ["Trader"]

log = logging.getLogger("tickguard.execution")


class Trader:
    def __init__(self, store: Store, broker: Broker, guard: Guard, *, config: ExecConfig | None = None,
                 clock: Callable[[], float] = time.time, on_trade: Callable[[TradeRecord], None] | None = None,
                 metrics: Any = None, market: MarketData | None = None) -> None:
        self.store = store
        self.broker = broker  # the default login: the orders of virtual sub-accounts
        # Prices and circuit bands (exit prices, option premiums); default: the default login's.
        self.market: Broker | MarketData = market if market is not None else broker
        self.brokers: dict[str, Broker] = {}  # other logins by client code (accounts trading on their own login)
        self.guard = guard
        self.config = config = config or ExecConfig()
        self.clock = clock
        self.on_trade = on_trade or (lambda trade: None)  # may be replaced: the parts publish through it
        self.metrics = metrics
        self.bands: dict[tuple[str, str], tuple[int, int] | None] = {}  # circuit bands, fetched once a trade arms
        self._tasks: set[asyncio.Task] = set()
        self.journal = Journal(store, self.now_ms, self._published)
        self.positions = Books(lambda login: self._login(login).positions)
        self.orders = OrderLedger(self.journal, self.positions, broker_for=self.broker_for, spawn=self.spawn,
                                  on_fill=self._filled, metrics=metrics)
        self.doubt = DoubtRule(self.orders, config, broker_for=self.broker_for)
        self.entries = EntryQueue(self.orders, self.doubt, config, broker_for=self.broker_for, spawn=self.spawn,
                                  ltp=lambda exchange, symbol, token: self.market.ltp(exchange, symbol, token))
        chaser = Chaser(self.orders, self.doubt, config, broker_for=self.broker_for, ltp=self._ltp, bands=self.bands)
        self.stops = BrokerStops(self.orders, self.doubt, config.backup, broker_for=self.broker_for, spawn=self.spawn,
                                 bands=self.bands, on_trigger=self._broker_stop_triggered)
        self.exits = ExitLoop(self.orders, self.positions, chaser, guard, self.stops, broker_for=self.broker_for,
                              spawn=self.spawn, metrics=metrics)

    # Logins, books, time ----------------------------------------------------------------------------
    def _login(self, code: str) -> Broker:
        return self.brokers.get(code, self.broker) if code else self.broker

    def broker_for(self, trade: TradeRecord) -> Broker:
        """The login a trade's orders go through: its account's own, or the default one."""
        login = trade.spec.login
        return self._login(login.upper() if login else "")

    def book(self, login: str | None) -> PositionBook:
        """The position book of a login ("" or None: the default one)."""
        return self.positions.book(login)

    @property
    def books(self) -> dict[str, PositionBook]:
        return self.positions.books

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _published(self, trade: TradeRecord) -> None:
        """Every trade the journal publishes: its broker stop follows it, then the listeners hear of it."""
        self.stops.observe(trade)
        self.on_trade(trade)

    async def record(self, trade_id: int, kind: str, **data: Any) -> TradeRecord:
        """Store a trade event and publish the trade it leaves."""
        return await self.journal.record(trade_id, kind, **data)

    # Tasks ----------------------------------------------------------------------------------------
    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("execution task failed: %s", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for every running entry and exit task (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # Entries and exits ------------------------------------------------------------------------------
    def submit(self, trade_ids: list[int], *, fund: int, requested: dict[int, int | None] | None = None,
               age_s: float = 0.0, resize: bool = False) -> None:
        """Queue entries: sized and sent in arrival order, expired when queued too long."""
        self.entries.submit(trade_ids, fund, requested or {}, age_s, resize)

    def on_exit_intent(self, intent: ExitIntent) -> None:
        self.exits.on_exit_intent(intent)

    async def close(self, trade_id: int, reason: str = "MANUAL") -> TradeRecord | None:
        return await self.exits.close(trade_id, reason)

    async def reduce(self, trade_id: int, quantity: int, reason: str = "SIGNAL") -> TradeRecord | None:
        return await self.exits.reduce(trade_id, quantity, reason)

    @property
    def exiting(self) -> frozenset[int]:
        """The trades with a full exit running in this process."""
        return frozenset(self.exits.exiting)

    # The broker's news, and a restart -----------------------------------------------------------------
    def on_order_update(self, update: OrderUpdate, login: str | None = None) -> None:
        self.orders.on_order_update(update, login)

    async def apply_order(self, order: BrokerOrder, login: str | None = None) -> None:
        await self.orders.apply_order(order, login)

    async def settle_unsent(self, record: OrderRecord, reason: str) -> None:
        await self.orders.settle_unsent(record, reason)

    async def exit_in_doubt(self, record: OrderRecord, reason: str) -> None:
        await self.doubt.exit_in_doubt(record, reason)

    async def adopt_exit(self, trade_id: int, attempt: int, order: BrokerOrder) -> bool:
        return await self.exits.adopt_exit(trade_id, attempt, order)

    def resume_exit(self, trade_id: int, live: OrderRecord | None) -> None:
        self.exits.resume_exit(trade_id, live)

    # What a fill sets going -----------------------------------------------------------------------
    def _filled(self, record: OrderRecord, trade: TradeRecord, price: int, closed: bool, delta: int) -> None:
        """An entry fill arms the trade; an exit fill realises its part in the engine (the rest stays
        guarded at its levels), and the last one confirms the close."""
        if record.role == "entry":
            if trade.state is TradeState.OPEN:
                self.guard.arm(trade)
                if (trade.exchange, trade.token) not in self.bands:  # off the exit path: learn the band now
                    self.bands[(trade.exchange, trade.token)] = None
                    self.spawn(self._learn_band(trade), f"band-{trade.token}")
            return
        self.guard.reduce(trade, delta, price)
        if closed:
            self.guard.confirm(trade.id, int(trade.exit_price or price))
            log.info("trade closed", extra={"trade_id": trade.id, "pnl_paise": trade.realised_pnl})

    def _broker_stop_triggered(self, trade_id: int) -> None:
        """The broker's stop triggered (or filled) before tickguard's own exit: the trade is closed with
        reason BROKER_STOP like any close — the stop's fills count, the rest is cancelled and chased."""
        self.spawn(self.exits.close(trade_id, ExitReason.BROKER_STOP), f"broker-stop-close-{trade_id}")

    async def _learn_band(self, trade: TradeRecord) -> None:
        try:
            self.bands[(trade.exchange, trade.token)] = await self.market.circuit_limits(trade.exchange, trade.token)
        except (BrokerError, AttributeError):
            self.bands.pop((trade.exchange, trade.token), None)  # try again with the next trade

    async def _ltp(self, trade: TradeRecord) -> int:
        price = self.guard.last_price(trade.exchange, trade.token)
        if price is not None:
            return price
        return await self.market.ltp(trade.exchange, trade.tradingsymbol, trade.token)
