"""Execution: trades into broker orders, broker order events into trade events (trading-semantics §5).

Entry: sized against the account's fund and the broker's margin, sent with tag `tg<id>E1`, the
order row committed before the request leaves, so a crash can always find it again by its tag.
Fills (partial ones too) arm the filled quantity in the guard.

Exit, when the engine fires: at most one exit in flight per trade. The unfilled rest of the entry is
cancelled first; the quantity is the filled quantity still open, never more than the broker's net
position in that direction (an exit never flips or opens a position). A protected marketable LIMIT
(LTP ∓ `protection_pct`, on the tick) is sent and re-priced every `chase_ms` until it fills, one
protection step further out per chase; a rejected exit is retried with backoff, then the trade is UNPROTECTED — loudly, never silently.
A trade is CLOSED only when the broker confirms the exit fill.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from service.broker import (
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
from service.broker.smartapi.pacing import EntryExpired
from service.entries import EntryQueue
from service.guard import Guard
from service.positions import PositionBook
from service.store import OrderRecord, Store
from service.trades import Trade, TradeEvent, TradeState, tag_for
from streams import ExitIntent

__all__ = ["ExecConfig", "Trader"]

log = logging.getLogger("tickguard.execution")
MAX_CHASE_STEPS = 4  # an exit limit is re-priced at most 5 protection buffers beyond the LTP
CONFIRM_AFTER_S = 1.0  # an order without news for this long is looked up at the broker


@dataclass(frozen=True)
class ExecConfig:
    exit_order_type: str = "LIMIT"  # LIMIT (protected, chased) | MARKET
    protection_pct: Decimal = Decimal("0.5")  # how far beyond the LTP an exit limit is priced
    chase_ms: int = 500  # re-price an unfilled exit this often
    exit_attempts: int = 3  # exit orders tried before the trade is UNPROTECTED
    retry_backoff_s: float = 0.2  # doubled after every rejected exit
    leverage: dict[str, Decimal] = field(default_factory=lambda: {"INTRADAY": Decimal(1), "DELIVERY": Decimal(1)})
    entry_ttl_s: float = 5.0  # an entry queued longer than this expires instead of trading late


def protected_price(side: OrderSide, ltp: int, tick: int, pct: Decimal, band: tuple[int, int] | None = None) -> int:
    """A marketable limit: beyond the LTP by `pct` percent, on the tick grid, at least one tick away —
    and never outside the day's circuit band, where the exchange would reject it."""
    buffer = max(tick, int(Decimal(ltp) * pct / 100))
    if side is OrderSide.SELL:
        price = max(tick, (ltp - buffer) // tick * tick)
        return max(price, -(-band[0] // tick) * tick) if band else price
    price = -((-(ltp + buffer)) // tick) * tick
    return min(price, band[1] // tick * tick) if band else price


class Trader:
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
            await self._order_failed(record, "expired", failure.message)
            await self._record(trade.id, "expired", reason=failure.message)
        elif isinstance(failure, OrderRefused):
            self._count(role, "rejected")
            await self._order_failed(record, "rejected", failure.message)
            if role == "entry":
                await self._entry_refused(trade.id, f"{failure.message} [{failure.errorcode}]")
        elif isinstance(failure, PlacementUnknown):
            self._count(role, "failed")
            await self._order_failed(record, "unknown", failure.message)
            log.error("order placement in doubt", extra={"trade_id": trade.id, "tag": record.tag})
        else:
            self._count(role, "failed")
            await self._order_failed(record, "failed", failure.message)
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
        if record.status not in _DONE:
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
            if record.status in ("complete", "rejected") and previous.status != record.status:
                self._count(record.role, "filled" if record.status == "complete" else "rejected")
            if delta > 0 and record.tag in self._placed:
                self._book_fill(record.tag, record.side, delta)
            if record.status in _DONE:
                self._settle(record.tag)
            if filled_trade is not None:
                self.on_trade(filled_trade)
                self._filled(record, filled_trade, price, closed)
            elif record.role == "entry" and order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
                trade = await self.store.trade(record.trade_id)
                if trade is not None and trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
                    await self._record(trade.id, "rejected", reason=order.text or status)
        event = self._order_events.get(order.tag)
        if event is not None:
            event.set()

    def _filled(self, record: OrderRecord, trade: Trade, price: int, closed: bool) -> None:
        """What a recorded fill sets going: an entry fill arms the trade, the last exit fill confirms it."""
        if record.role == "entry":
            if trade.state is TradeState.OPEN:
                self.guard.arm(trade)
                if (trade.exchange, trade.token) not in self.bands:  # off the exit path: learn the band now
                    self.bands[(trade.exchange, trade.token)] = None
                    self.spawn(self._learn_band(trade), f"band-{trade.token}")
            return
        if closed:
            self.guard.confirm(trade.id, int(trade.exit_price or price))
            log.info("trade closed", extra={"trade_id": trade.id, "pnl_paise": trade.realised_pnl})

    # Exit ----------------------------------------------------------------------------------------
    def on_exit_intent(self, intent: ExitIntent) -> None:
        if intent.trade_id in self._exiting:
            return
        self._exiting.add(intent.trade_id)
        self._fired_at[intent.trade_id] = (time.perf_counter(), str(intent.reason))
        self.spawn(self.exit(intent), f"exit-{intent.trade_id}")

    async def exit(self, intent: ExitIntent) -> None:
        try:
            await self._exit(intent)
        finally:
            self._exiting.discard(intent.trade_id)

    async def _exit(self, intent: ExitIntent) -> None:
        trade_id = intent.trade_id
        tick = intent.tick
        fired = TradeEvent(kind="exit_fired", at_ms=self.now_ms(), data={
            "reason": str(intent.reason), "level": intent.level, "tick_ltp": tick.ltp if tick else None,
            "tick_ts_ms": tick.exchange_ts_ms if tick else None, "source": intent.source})
        async with self._lock(trade_id):
            trade = self.guard.records.get(trade_id)
            if trade is not None and self._clear_to_exit(trade):
                quick = True  # armed here, nothing of its own working: the exit goes out before any write
            else:
                quick = False
                trade = await self.store.trade(trade_id)
                if trade is None or trade.state not in (TradeState.OPEN, TradeState.UNPROTECTED):
                    return  # EXITING: an exit is already working (or being resumed): never a second one
                trade = await self._record_event(trade_id, fired)
        if quick:
            await self._exit_attempts(trade_id, first=(trade, fired))
            return
        await self._cancel_entry_rest(trade)
        await self._exit_attempts(trade_id)

    def _clear_to_exit(self, trade: Trade) -> bool:
        """An OPEN trade with no exit sent and no entry order still working, as far as this process knows."""
        if trade.state is not TradeState.OPEN:
            return False
        for tag in self._by_trade.get(trade.id, ()):
            record = self._tags.get(tag)
            if record is None or record.role == "exit" or record.status not in _DONE:
                return False
        return True

    async def _record_event(self, trade_id: int, event: TradeEvent) -> Trade:
        trade = await self.store.record(trade_id, event)
        self.on_trade(trade)
        return trade

    async def _exit_attempts(self, trade_id: int, watch: OrderRecord | None = None,
                             first: tuple[Trade, TradeEvent] | None = None) -> None:
        """Exit orders until the position is out: first watch `watch` (an exit already at the broker),
        or send the first exit of `first` (a trade and the event that fires it, written with that order),
        then new orders numbered after the last one sent, each at most the freeze quantity (a large
        exit goes out in slices). After `exit_attempts` failed orders the trade is UNPROTECTED."""
        failures = 0
        if first is not None:
            trade, fired = first
            attempt = 0
            quantity = await self._exit_quantity(trade)
            if quantity <= 0:
                await self._record_event(trade_id, fired)  # the loop below closes it: no position left
            else:
                attempt = 1
                outcome = await self._exit_attempt(trade, attempt, _slice(trade, quantity), fired)
                if outcome != "filled":
                    failures += 1
                    await self._record(trade_id, "exit_retry", attempt=attempt, outcome=outcome)
                    await asyncio.sleep(self.config.retry_backoff_s)
        else:
            sent = [o.attempt for o in await self.store.orders(trade_id) if o.role == "exit"]
            attempt = max(sent, default=0)
            if watch is not None:
                trade = await self.store.trade(trade_id)
                assert trade is not None
                if await self._watch(trade, watch) != "filled":
                    failures += 1
        attempt += 1
        while failures < self.config.exit_attempts:
            trade = await self.store.trade(trade_id)
            assert trade is not None
            if trade.state is TradeState.CLOSED:
                return
            quantity = await self._exit_quantity(trade)
            if quantity <= 0:
                await self._record(trade_id, "closed", reason="no position left at the broker")
                self.guard.confirm(trade_id, int(trade.entry_price or 0))
                return
            outcome = await self._exit_attempt(trade, attempt, _slice(trade, quantity))
            attempt += 1
            if outcome == "filled":
                continue  # the next slice, or the loop sees the trade CLOSED
            failures += 1
            await self._record(trade_id, "exit_retry", attempt=attempt - 1, outcome=outcome)
            await asyncio.sleep(self.config.retry_backoff_s * 2 ** (failures - 1))
        await self._record(trade_id, "unprotected", reason=f"exit failed {self.config.exit_attempts} times")
        log.error("trade UNPROTECTED: exit keeps failing", extra={"trade_id": trade_id})

    async def adopt_exit(self, trade_id: int, attempt: int, order: BrokerOrder) -> bool:
        """After a restart: an exit the broker has but the store never recorded (tickguard stopped
        between sending it and committing its row) becomes the trade's exit, as if recorded then."""
        trade = await self.store.trade(trade_id)
        if trade is None or trade.state not in (TradeState.OPEN, TradeState.EXITING, TradeState.UNPROTECTED):
            return False
        now = self.now_ms()

        def work(db) -> OrderRecord:
            if trade.state is TradeState.OPEN:
                Store.apply(db, trade_id, TradeEvent(kind="exit_fired", at_ms=now, data={
                    "reason": "RECOVERED", "source": "exit found at the broker after a restart"}))
            record = Store.insert_order(db, trade_id=trade_id, role="exit", attempt=attempt, tag=order.tag,
                                        side=str(order.side), kind=str(order.kind), quantity=order.quantity,
                                        price=order.price, now_ms=now)
            record = Store.order_sent(db, record.id, now, order.order_id, order.unique_order_id)
            Store.apply(db, trade_id, TradeEvent(kind="exit_sent", at_ms=now, data={
                "tag": order.tag, "order_id": order.order_id, "quantity": order.quantity, "price": order.price}))
            return record

        self._remember(await self.store.db.write(work))
        log.warning("exit adopted from the broker's order book", extra={"trade_id": trade_id, "tag": order.tag})
        await self.apply_order(order)
        return True

    def resume_exit(self, trade_id: int, live: OrderRecord | None) -> None:
        """After a restart: keep working an exit already at the broker, or send one."""
        if trade_id in self._exiting:
            return
        self._exiting.add(trade_id)

        async def run() -> None:
            try:
                await self._exit_attempts(trade_id, live)
            finally:
                self._exiting.discard(trade_id)

        self.spawn(run(), f"resume-exit-{trade_id}")

    async def settle_unsent(self, record: OrderRecord, reason: str) -> None:
        """An order the broker never received (tickguard stopped first)."""
        await self._order_failed(record, "failed", reason)
        trade = await self.store.trade(record.trade_id)
        if record.role == "entry" and trade is not None and trade.state is TradeState.PENDING_ENTRY and not trade.filled:
            await self._record(trade.id, "expired", reason=reason)

    async def _cancel_entry_rest(self, trade: Trade) -> None:
        for order in await self.store.orders(trade.id):
            if order.role == "entry" and order.broker_order_id and order.status in ("sent", "open", "open pending", "trigger pending"):
                try:
                    await self.broker_for(trade).cancel_order(order.broker_order_id, priority=Priority.EXIT)
                except BrokerError as exc:
                    log.warning("could not cancel the entry's rest", extra={"trade_id": trade.id, "error": exc.message})

    async def _exit_quantity(self, trade: Trade) -> int:
        """The open filled quantity, capped by the broker's net position in the trade's direction (less
        the exits already on their way): from the position book, or asked of the broker where the book
        cannot say or says less."""
        wanted = trade.open_quantity
        book, key = self.book(trade.spec.get("login")), (trade.exchange, trade.token, trade.product)
        held = book.held(key, trade.long)
        if held is not None and held >= wanted:
            return wanted
        try:
            positions = await self.broker_for(trade).positions()
        except BrokerError:
            return wanted if held is None else held  # the broker's own RMS still refuses a flip for a net-zero position
        book.refresh_soon(1.0)
        net = sum(p.net_quantity for p in positions
                  if p.exchange == trade.exchange and p.token == trade.token and p.product == trade.product)
        return max(0, min(wanted, book.after_exits(key, net, trade.long)))

    async def _exit_attempt(self, trade: Trade, attempt: int, quantity: int, fired: TradeEvent | None = None) -> str:
        side = OrderSide.SELL if trade.long else OrderSide.BUY
        tick = int(trade.spec.get("tick_size", 5))
        market = self.config.exit_order_type == "MARKET"
        band = self.bands.get((trade.exchange, trade.token))
        price = 0 if market else protected_price(side, await self._ltp(trade), tick, self.config.protection_pct, band)
        tag = tag_for(trade.id, "exit", attempt)
        self._order_events[tag] = asyncio.Event()
        try:
            record = await self._send(trade, "exit", attempt, side, quantity,
                                      OrderKind.MARKET if market else OrderKind.LIMIT, price, Priority.EXIT, fired)
            if record is None:
                return "refused"
            return await self._watch(trade, record)
        finally:
            self._order_events.pop(tag, None)

    async def _watch(self, trade: Trade, record: OrderRecord) -> str:
        """Wait for an exit order to finish, re-pricing a limit once it has rested unfilled for `chase_ms`
        (news that it is open is no reason to re-price: the fill may be on its way behind it)."""
        tag = record.tag
        event = self._order_events.setdefault(tag, asyncio.Event())
        side = OrderSide(record.side)
        tick = int(trade.spec.get("tick_size", 5))
        price = record.price
        chases = 0
        chase_s = self.config.chase_ms / 1000
        checked = time.monotonic()
        chase_at = checked + chase_s
        try:
            while True:
                try:
                    await asyncio.wait_for(event.wait(), timeout=max(0.0, chase_at - time.monotonic()))
                except asyncio.TimeoutError:
                    if time.monotonic() - checked >= CONFIRM_AFTER_S:  # no update for a while: ask the broker
                        checked = time.monotonic()
                        await self.refresh(trade, self._tags.get(tag, record))
                event.clear()
                current = self._tags.get(tag, record)
                if current.status == "complete":
                    return "filled"
                if current.status in ("rejected", "cancelled", "failed", "unknown"):
                    return current.status
                if time.monotonic() < chase_at:
                    continue
                if current.kind == "LIMIT" and current.status in ("open", "modified"):  # at the exchange, unfilled
                    chases += 1
                    price = await self._chase(trade, current, side, price, tick, chases)
                chase_at = time.monotonic() + chase_s
        finally:
            self._order_events.pop(tag, None)

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
        """An entry still unconfirmed after CONFIRM_AFTER_S is looked up rather than waited for."""
        while True:
            await asyncio.sleep(CONFIRM_AFTER_S)
            record = self._tags.get(tag)
            trade = await self.store.trade(trade_id)
            if record is None or trade is None or record.status in _DONE or trade.state is not TradeState.PENDING_ENTRY:
                return
            await self.refresh(trade, record)

    async def _chase(self, trade: Trade, order: OrderRecord, side: OrderSide, price: int, tick: int, chases: int) -> int:
        """Re-price at the latest LTP, one protection step further out per chase (up to MAX_CHASE_STEPS):
        an unfilled marketable limit at an unchanged price means the book has moved away from it."""
        steps = 1 + min(chases, MAX_CHASE_STEPS)
        fresh = protected_price(side, await self._ltp(trade), tick, self.config.protection_pct * steps,
                                self.bands.get((trade.exchange, trade.token)))
        if fresh == price or not order.broker_order_id:
            return price
        request = OrderRequest(exchange=trade.exchange, tradingsymbol=trade.tradingsymbol, token=trade.token, side=side,
                               quantity=order.quantity, kind=OrderKind.LIMIT, price=fresh, product=trade.product)
        try:
            await self.broker_for(trade).modify_order(order.broker_order_id, request, Priority.EXIT)
        except BrokerError as exc:
            log.warning("exit re-price refused", extra={"trade_id": trade.id, "error": exc.message})
            await self.refresh(trade, order)  # refused because it filled meanwhile? learn it now
            return price
        await self._record(trade.id, "exit_chased", tag=order.tag, price=fresh)
        return fresh

    async def _ltp(self, trade: Trade) -> int:
        price = self.guard.last_price(trade.token)
        if price is not None:
            return price
        return await self.broker.ltp(trade.exchange, trade.tradingsymbol, trade.token)

    # Manual close --------------------------------------------------------------------------------
    async def close(self, trade_id: int, reason: str = "MANUAL") -> Trade | None:
        """Close on the operator's word (MANUAL) or an alert's (SIGNAL): cancel a pending entry, or have
        the engine fire the close with that reason."""
        trade = await self.store.trade(trade_id)
        if trade is None:
            return None
        if trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
            await self._cancel_entry_rest(trade)
            who = "an alert" if reason == "SIGNAL" else "the operator"
            return await self._record(trade_id, "rejected", reason=f"closed by {who} before the entry filled")
        if trade.state is TradeState.UNPROTECTED:
            self.on_exit_intent(ExitIntent(trade_id=trade_id, reason=reason, level=None, tick=None))
        elif self.guard.armed(trade_id):
            self.guard.close(trade_id, reason)
        return trade


def _rules_refusal(trade: Trade, premium: int, quantity: int) -> str | None:
    """Why the trade's rules cannot guard it at this premium (a stop at or below zero…), or None."""
    from service.guard import engine_trade
    from streams import RuleError, levels

    probe = msgspec.structs.replace(trade, filled=max(1, quantity), entry_price=premium, entry_value=premium * max(1, quantity))
    try:
        levels(engine_trade(probe))
    except RuleError as exc:
        return f"stop rules at premium {premium / 100:.2f}: {exc.field}: {exc.reason}"
    return None


def _slice(trade: Trade, quantity: int) -> int:
    """At most the exchange's freeze quantity per order: a larger exit goes out in slices."""
    freeze = trade.spec.get("freeze_qty")
    return min(quantity, int(freeze)) if freeze else quantity


_DONE = ("complete", "rejected", "cancelled", "failed", "unknown", "expired")
_FINAL = {"complete": 3, "rejected": 2, "cancelled": 2, "failed": 2, "unknown": 1, "expired": 2}


def _progress(record: OrderRecord) -> tuple[int, int, int]:
    return (record.filled, _FINAL.get(record.status, 1 if record.status != "sending" else 0), record.updated_ms)


def _fill_price(record: OrderRecord, order: BrokerOrder, delta: int) -> int:
    """The price of the newly filled `delta` units, from the running average the broker reports."""
    before = record.filled * record.average_price if record.filled else 0
    after = order.filled * order.average_price
    price = (after - before) / delta if before else order.average_price
    return round(price)
