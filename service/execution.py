"""Execution: trades into broker orders, broker order events into trade events (trading-semantics §5).

Entry: sized against the account's fund and the broker's margin, sent with tag `tg<id>E1`, the
order row committed before the request leaves, so a crash can always find it again by its tag.
Fills (partial ones too) arm the filled quantity in the guard.

Exit: `service.exits` (the `ExitPath` half of the Trader); placements in doubt: `service.doubt`. Both
run on the order plumbing kept here — sending an order with its row, applying the broker's order
news, the position books and reservations.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from service.broker import (
    TERMINAL_STATUSES,
    Broker,
    BrokerError,
    BrokerOrder,
    OrderKind,
    OrderRefused,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    PlacementUnknown,
    Priority,
)
from service.broker import EntryExpired
from service.entries import EntryQueue
from service.doubt import DoubtRule
from service.exits import ExitPath
from service.reductions import PartialExits
from service.guard import Guard
from service.positions import PositionBook
from service.store import OrderRecord, Store
from service.trades import Trade, TradeEvent, TradeState, tag_for

__all__ = ["ExecConfig", "Trader"]

log = logging.getLogger("tickguard.execution")


@dataclass(frozen=True)
class ExecConfig:
    exit_order_type: str = "LIMIT"  # LIMIT (protected, chased) | MARKET
    protection_pct: Decimal = Decimal("0.5")  # how far beyond the LTP an exit limit is priced
    chase_ms: int = 500  # re-price an unfilled exit this often
    exit_attempts: int = 3  # exit orders tried before the trade is UNPROTECTED
    retry_backoff_s: float = 0.2  # doubled after every rejected exit
    leverage: dict[str, Decimal] = field(default_factory=lambda: {"INTRADAY": Decimal(1), "DELIVERY": Decimal(1)})
    entry_ttl_s: float = 5.0  # an entry queued longer than this expires instead of trading late
    confirm_after_s: float = 1.0  # an order without news for this long is looked up at the broker
    doubt_settle_s: float = 5.0  # DOUBT_SETTLE_S: two order-book reads this far apart without it = never placed


class Trader(PartialExits, ExitPath, DoubtRule):
    def __init__(self, store: Store, broker: Broker, guard: Guard, *, config: ExecConfig | None = None,
                 clock: Callable[[], float] = time.time, on_trade: Callable[[Trade], None] | None = None,
                 metrics: Any = None) -> None:
        self.store = store
        self.broker = broker  # the default login: market data, and the orders of virtual sub-accounts
        self.brokers: dict[str, Broker] = {}  # other logins by client code (accounts trading on their own login)
        self.guard = guard
        self.config = config or ExecConfig()
        self.clock = clock
        self.on_trade = on_trade or (lambda trade: None)
        self.metrics = metrics
        self._fired_at: dict[int, tuple[float, str]] = {}  # trade id -> (perf_counter at the intent, reason)
        self.bands: dict[tuple[str, str], tuple[int, int] | None] = {}  # circuit bands, fetched once a trade arms
        self._locks: dict[int, asyncio.Lock] = {}
        self._tags: dict[str, OrderRecord] = {}  # our orders by tag, as last recorded
        self._order_events: dict[str, asyncio.Event] = {}  # exit tags being watched
        self._exiting: set[int] = set()
        self._reductions: dict[int, asyncio.Lock] = {}  # per trade: its partial exits, one after another
        self._tasks: set[asyncio.Task] = set()
        self.entries = EntryQueue(self)
        self.books: dict[str, PositionBook] = {}  # net positions per login ("" the default one)
        self._by_trade: dict[int, set[str]] = {}  # tags of each trade's orders known in this process
        self._storing: dict[str, asyncio.Future] = {}  # exit tags sent while their row is being committed
        self._reserved: dict[str, int] = {}  # exit tag -> signed units reserved in its book, not filled yet
        self._placed: dict[str, tuple[PositionBook, tuple[str, str, str]]] = {}  # tag -> its login's book, instrument
        self._working: set[str] = set()  # tags counted as working in their book

    def broker_for(self, trade: Trade) -> Broker:
        """The login a trade's orders go through: its account's own, or the default one."""
        login = trade.spec.get("login")
        return self.brokers.get(str(login).upper(), self.broker) if login else self.broker

    def book(self, login: str | None) -> PositionBook:
        code = str(login or "").upper()
        book = self.books.get(code)
        if book is None:
            broker = self.brokers.get(code, self.broker) if code else self.broker
            book = self.books[code] = PositionBook(broker.positions)
        return book

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _lock(self, trade_id: int) -> asyncio.Lock:
        return self._locks.setdefault(trade_id, asyncio.Lock())

    def spawn(self, coroutine, name: str) -> asyncio.Task:
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

    async def _record(self, trade_id: int, kind: str, **data: Any) -> Trade:
        trade = await self.store.record(trade_id, TradeEvent(kind=kind, at_ms=self.now_ms(), data=data))
        self.on_trade(trade)
        return trade

    # Entry ---------------------------------------------------------------------------------------
    def submit(self, trade_ids: list[int], *, fund: int, requested: dict[int, int | None] | None = None) -> None:
        """Queue entries (service.entries): sized and sent in arrival order, expired when queued too long."""
        self.entries.submit(trade_ids, fund, requested or {})

    async def _send(self, trade: Trade, role: str, attempt: int, side: OrderSide, quantity: int, kind: OrderKind,
                    price: int, priority: Priority, fired: TradeEvent | None = None) -> OrderRecord | None:
        """An entry's row is committed before the request leaves; an exit's row (and `fired`, the event
        that made it) is queued for the same commit but not waited for: the exit is on its way while the
        disk catches up, and after a crash in between its tag finds it at the broker (recovery)."""
        tag = tag_for(trade.id, role, attempt)
        now = self.now_ms()

        def store_order(db) -> tuple[Trade | None, OrderRecord]:
            folded = Store.apply(db, trade.id, fired) if fired is not None else None
            return folded, Store.insert_order(db, trade_id=trade.id, role=role, attempt=attempt, tag=tag, side=str(side),
                                              kind=str(kind), quantity=quantity, price=price, now_ms=now)

        self._by_trade.setdefault(trade.id, set()).add(tag)
        book, key = self.book(trade.spec.get("login")), (trade.exchange, trade.token, trade.product)
        if role == "exit":
            stored = self._storing[tag] = self.store.db.submit(store_order)
            self._reserve(tag, book, key, -quantity if side is OrderSide.SELL else quantity)
        else:
            record = (await self.store.db.write(store_order))[1]
            self._remember(record)
        self._placed[tag] = (book, key)
        self._working.add(tag)
        book.working(key)
        request = OrderRequest(exchange=trade.exchange, tradingsymbol=trade.tradingsymbol, token=trade.token,
                               side=side, quantity=quantity, kind=kind, price=price, product=trade.product, tag=tag)
        failure: BrokerError | None = None
        try:
            ack = await self.broker_for(trade).place_order(request, priority)
        except BrokerError as exc:
            failure = exc
        if role == "exit":
            try:
                folded, record = await stored
            finally:
                self._storing.pop(tag, None)
            self._remember(record)
            if folded is not None:
                self.on_trade(folded)
        if isinstance(failure, PlacementUnknown):
            return await self._placement_in_doubt(trade, record, failure)
        if failure is not None:
            self._settle(tag)
            return await self._send_failed(trade, record, role, failure)
        self._count(role, "sent")
        fired_at = self._fired_at.pop(trade.id, None) if role == "exit" else None
        if fired_at is not None and self.metrics is not None:
            self.metrics.count_exit(fired_at[1], time.perf_counter() - fired_at[0])
        record = await self.store.db.write(
            lambda db: Store.order_sent(db, record.id, self.now_ms(), ack.order_id, ack.unique_order_id))
        self._remember(record)
        await self._record(trade.id, f"{role}_sent", tag=tag, order_id=ack.order_id, quantity=quantity, price=price)
        if role == "entry":
            self.spawn(self._confirm_entry(trade.id, tag), f"confirm-{tag}")
        return record

    async def _send_failed(self, trade: Trade, record: OrderRecord, role: str, failure: BrokerError) -> None:
        if isinstance(failure, EntryExpired):
            self._count(role, "expired")
            await self._order_failed(record, OrderStatus.EXPIRED, failure.message)
            await self._record(trade.id, "expired", reason=failure.message)
        elif isinstance(failure, OrderRefused):
            self._count(role, "rejected")
            await self._order_failed(record, OrderStatus.REJECTED, failure.message)
            if role == "entry":
                await self._entry_refused(trade.id, f"{failure.message} [{failure.errorcode}]")
        else:
            self._count(role, "failed")
            await self._order_failed(record, OrderStatus.FAILED, failure.message)
            if role == "entry":
                await self._entry_refused(trade.id, failure.message)

    async def _entry_refused(self, trade_id: int, reason: str) -> None:
        """An entry order refused: the trade is REJECTED unless an earlier slice already filled."""
        trade = await self.store.trade(trade_id)
        if trade is not None and trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
            await self._record(trade_id, "rejected", reason=reason)
        else:
            await self._record(trade_id, "entry_slice_refused", reason=reason)

    def _count(self, role: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count_order(role, outcome)

    def _remember(self, record: OrderRecord) -> None:
        """Keep the most advanced view of an order: writes may finish out of order."""
        known = self._tags.get(record.tag)
        if known is None or _progress(record) >= _progress(known):
            self._tags[record.tag] = record
        if known is None:
            self._by_trade.setdefault(record.trade_id, set()).add(record.tag)

    async def _order_failed(self, record: OrderRecord, status: str, text: str) -> None:
        self._remember(await self.store.db.write(
            lambda db: Store.update_order(db, record.id, self.now_ms(), status=status, text=text[:200])))
        event = self._order_events.get(record.tag)
        if event is not None:
            event.set()

    # Positions ------------------------------------------------------------------------------------
    def _reserve(self, tag: str, book: PositionBook, key: tuple[str, str, str], signed: int) -> None:
        self._reserved[tag] = self._reserved.get(tag, 0) + signed
        book.reserve(key, signed)

    def _book_fill(self, tag: str, side: str, quantity: int) -> None:
        book, key = self._placed[tag]
        book.filled(key, quantity if side == "BUY" else -quantity)
        reserved = self._reserved.get(tag, 0)
        if reserved:
            step = min(quantity, abs(reserved))
            self._reserve(tag, book, key, step if reserved < 0 else -step)

    def _settle(self, tag: str) -> None:
        """The order is finished: no longer working, and what it did not fill no longer reserved."""
        if tag in self._working:
            self._working.discard(tag)
            book, key = self._placed[tag]
            book.finished(key)
            reserved = self._reserved.pop(tag, 0)
            if reserved:
                book.reserve(key, -reserved)

    async def _place(self, record: OrderRecord) -> None:
        """Register in its login's book an order this process did not send (found again after a restart)."""
        trade = await self.store.trade(record.trade_id)
        if trade is None or record.tag in self._placed:
            return
        book, key = self.book(trade.spec.get("login")), (trade.exchange, trade.token, trade.product)
        self._placed[record.tag] = (book, key)
        if record.status not in TERMINAL_STATUSES:
            self._working.add(record.tag)
            book.working(key)
            if record.role == "exit":
                left = max(0, record.quantity - record.filled)
                self._reserve(record.tag, book, key, -left if record.side == "SELL" else left)

    def _foreign(self, order: BrokerOrder, login: str | None) -> None:
        """Another order moved a position we may exit: that instrument is unknown until a fresh snapshot."""
        if order.filled > 0:
            book = self.book(login)
            book.foreign((order.exchange, order.token, order.product))
            book.refresh_soon(1.0)

    # Order updates ------------------------------------------------------------------------------
    def on_order_update(self, update: OrderUpdate, login: str | None = None) -> None:
        if update.order.tag.startswith("tg"):
            self.spawn(self.apply_order(update.order, login), f"update-{update.order.tag}")
        else:
            self._foreign(update.order, login)

    async def apply_order(self, order: BrokerOrder, login: str | None = None) -> None:
        record = self._tags.get(order.tag)
        if record is None and order.tag in self._storing:  # an exit sent a moment ago, its row being committed
            try:
                record = (await asyncio.shield(self._storing[order.tag]))[1]
            except Exception:  # noqa: BLE001 - the sender reports the failed write
                record = None
        record = record or await self.store.order_by_tag(order.tag)
        if record is None:
            self._foreign(order, login)
            return
        async with self._lock(record.trade_id):
            record = self._tags.get(order.tag) or record
            if order.tag not in self._placed:
                await self._place(record)
            delta = order.filled - record.filled
            status = str(order.status)
            if delta <= 0 and status == record.status and order.order_id == (record.broker_order_id or order.order_id):
                return
            previous = record
            now = self.now_ms()
            price = _fill_price(previous, order, delta) if delta > 0 else 0
            fill = TradeEvent(kind=f"{previous.role}_fill", at_ms=now,
                              data={"quantity": delta, "price": price, "tag": previous.tag}) if delta > 0 else None

            def work(db) -> tuple[OrderRecord, Trade | None, bool]:
                """The order's news and the fill it brings in one transaction: a crash between the two
                would leave a complete order whose fill no trade ever counted."""
                updated = Store.update_order(
                    db, previous.id, now, broker_order_id=order.order_id, unique_order_id=order.unique_order_id,
                    status=status, filled=max(order.filled, previous.filled), average_price=order.average_price,
                    text=order.text[:200])
                if fill is None:
                    return updated, None, False
                trade = Store.apply(db, previous.trade_id, fill)
                if previous.role == "exit" and trade.exited >= trade.filled and trade.state is not TradeState.CLOSED:
                    return updated, Store.apply(db, trade.id, TradeEvent(kind="closed", at_ms=now, data={})), True
                return updated, trade, False

            record, filled_trade, closed = await self.store.db.write(work)
            self._remember(record)
            if record.status in (OrderStatus.COMPLETE, OrderStatus.REJECTED) and previous.status != record.status:
                self._count(record.role, "filled" if record.status == OrderStatus.COMPLETE else "rejected")
            if delta > 0 and record.tag in self._placed:
                self._book_fill(record.tag, record.side, delta)
            if record.status in TERMINAL_STATUSES:
                self._settle(record.tag)
            if filled_trade is not None:
                self.on_trade(filled_trade)
                self._filled(record, filled_trade, price, closed, delta)
            elif record.role == "entry" and order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
                trade = await self.store.trade(record.trade_id)
                if trade is not None and trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
                    await self._record(trade.id, "rejected", reason=order.text or status)
        event = self._order_events.get(order.tag)
        if event is not None:
            event.set()

    def _filled(self, record: OrderRecord, trade: Trade, price: int, closed: bool, delta: int) -> None:
        """What a recorded fill sets going: an entry fill arms the trade; an exit fill realises its part
        in the engine (the rest stays guarded at its levels), and the last one confirms the close."""
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

    async def settle_unsent(self, record: OrderRecord, reason: str) -> None:
        """An order the broker never received (tickguard stopped first)."""
        await self._order_failed(record, OrderStatus.FAILED, reason)
        trade = await self.store.trade(record.trade_id)
        if record.role == "entry" and trade is not None and trade.state is TradeState.PENDING_ENTRY and not trade.filled:
            await self._record(trade.id, "expired", reason=reason)

    async def _learn_band(self, trade: Trade) -> None:
        try:
            self.bands[(trade.exchange, trade.token)] = await self.broker.circuit_limits(trade.exchange, trade.token)
        except (BrokerError, AttributeError):
            self.bands.pop((trade.exchange, trade.token), None)  # try again with the next trade

    async def refresh(self, trade: Trade, record: OrderRecord) -> None:
        """Read an order's state from the broker and apply it: the order-update socket can be up and
        silent (updates lost), and its reconciling poll is a minute apart."""
        if not record.unique_order_id:
            return
        try:
            order = await self.broker_for(trade).order(record.unique_order_id)
        except BrokerError:
            return
        if order is not None:
            await self.apply_order(order)

    async def _confirm_entry(self, trade_id: int, tag: str) -> None:
        """An entry still unconfirmed after `confirm_after_s` is looked up rather than waited for; one
        in doubt is settled first (`settle_doubt`), and refused if it was never placed."""
        while True:
            record = self._tags.get(tag)
            if record is not None and record.status == OrderStatus.IN_DOUBT:
                trade = await self.store.trade(trade_id)
                if trade is None:
                    return
                if not await self.settle_doubt(trade, tag):
                    await self._entry_refused(trade_id, "the entry was never placed (its placement was in doubt)")
                    return
                continue
            await asyncio.sleep(self.config.confirm_after_s)
            record = self._tags.get(tag)
            trade = await self.store.trade(trade_id)
            if record is None or trade is None or record.status in TERMINAL_STATUSES or trade.state is not TradeState.PENDING_ENTRY:
                return
            await self.refresh(trade, record)


def _progress(record: OrderRecord) -> tuple[int, int, int]:
    """How far an order has got: writes may finish out of order, the most advanced view is kept."""
    status = record.status
    rank = 3 if status == OrderStatus.COMPLETE else 2 if status in TERMINAL_STATUSES else 0 if status == OrderStatus.SENDING else 1
    return (record.filled, rank, record.updated_ms)


def _fill_price(record: OrderRecord, order: BrokerOrder, delta: int) -> int:
    """The price of the newly filled `delta` units, from the running average the broker reports."""
    before = record.filled * record.average_price if record.filled else 0
    after = order.filled * order.average_price
    price = (after - before) / delta if before else order.average_price
    return round(price)
