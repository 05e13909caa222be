"""The order ledger: our orders at the broker and their rows in the store (trading-semantics §5).

Every order is sent with its tag (`tg<id>E1`, `tg<id>X2`…) and its row: an entry's row is committed
before the request leaves, so a crash can always find it again by its tag; an exit's row (and the
event that fired it) is queued for the same commit but not waited for — the exit is on its way while
the disk catches up, and after a crash in between its tag finds it at the broker (recovery).

The broker's news of an order (the order-update socket, an order-book read) is applied here: its row
moves on, a new fill is folded into its trade in the same transaction (the last exit fill closes
it), the position book of its login counts the fill and, once the order is finished, stops counting
it as working. What a recorded fill sets going (arming, realising) is the owner's `on_fill`.

A placement that timed out or met a 5xx (`PlacementUnknown`) leaves its order IN_DOUBT: still live,
until `service.execution.doubt` settles it.

A broker stop (`tg<id>B<n>`, role `broker_stop`, `service.execution.backstop`) is an exit that waits
at the broker: its row is committed before it is sent, its unfilled quantity is reserved like an
exit's, and its fills are the trade's exit fills; the last one closes the trade — with reason
`BROKER_STOP` when no exit of tickguard's own was fired. `on_stop_news` hears every change of one.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from service.broker import (
    TERMINAL_STATUSES,
    BrokerError,
    BrokerOrder,
    EntryExpired,
    OrderKind,
    OrderRefused,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    PlacementUnknown,
    Priority,
)
from service.execution.journal import BrokerFor, Journal, Spawn
from service.execution.positions import Books
from service.store import OrderRecord, Store
from service.trades import TradeEvent, TradeRecord, TradeState, tag_for

__all__ = ["OnFill", "OrderLedger"]

log = logging.getLogger("tickguard.execution")

# A fill recorded: (the order, the trade it leaves, the fill's price, whether it closed the trade, units)
OnFill = Callable[[OrderRecord, TradeRecord, int, bool, int], None]
EXITS = ("exit", "broker_stop")  # roles whose fills take the position out


class OrderLedger:
    def __init__(self, journal: Journal, books: Books, *, broker_for: BrokerFor, spawn: Spawn, on_fill: OnFill,
                 metrics: Any = None) -> None:
        self.on_stop_news: Callable[[OrderRecord], None] = lambda record: None  # set by the broker stops
        self.journal = journal
        self.store = journal.store
        self.books = books
        self.broker_for = broker_for
        self.spawn = spawn
        self.on_fill = on_fill
        self.metrics = metrics
        self._tags: dict[str, OrderRecord] = {}  # our orders by tag, as last recorded
        self._by_trade: dict[int, set[str]] = {}  # tags of each trade's orders known in this process
        self._storing: dict[str, asyncio.Future] = {}  # exit tags sent while their row is being committed
        self._locks: dict[int, asyncio.Lock] = {}
        self._events: dict[str, asyncio.Event] = {}  # tags being watched: set on any news of the order
        self.rule_tags: dict[str, str] = {}  # GTT rule id -> the tag of our broker stop it stands for
        self.stop_trades: set[int] = set()  # trades with a broker stop recorded here, ever (working or not)

    # What is known --------------------------------------------------------------------------------
    def get(self, tag: str) -> OrderRecord | None:
        """The most advanced view of our order `tag` this process has, or None."""
        return self._tags.get(tag)

    def tags(self, trade_id: int) -> frozenset[str]:
        return frozenset(self._by_trade.get(trade_id, ()))

    def records_of(self, trade_id: int) -> Iterator[OrderRecord]:
        """The trade's orders as last recorded, without copying its tags (read them before awaiting)."""
        tags = self._tags
        for tag in self._by_trade.get(trade_id, ()):
            record = tags.get(tag)
            if record is not None:
                yield record

    def lock(self, trade_id: int) -> asyncio.Lock:
        """One trade's decisions, one at a time (an exit's start, news of its orders, an entry's slices)."""
        return self._locks.setdefault(trade_id, asyncio.Lock())

    def watch(self, tag: str) -> asyncio.Event:
        """An event set on any news of order `tag` (until `unwatch`)."""
        return self._events.setdefault(tag, asyncio.Event())

    def watched(self, tag: str) -> bool:
        return tag in self._events

    def unwatch(self, tag: str) -> None:
        self._events.pop(tag, None)

    def _tell(self, tag: str) -> None:
        event = self._events.get(tag)
        if event is not None:
            event.set()

    def count(self, role: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count_order(role, outcome)

    def remember(self, record: OrderRecord) -> None:
        """Keep the most advanced view of an order: writes may finish out of order."""
        known = self._tags.get(record.tag)
        if known is None or _progress(record) >= _progress(known):
            self._tags[record.tag] = record
        if known is None:
            self._by_trade.setdefault(record.trade_id, set()).add(record.tag)
            if record.role == "broker_stop":
                self.stop_trades.add(record.trade_id)

    # Sending --------------------------------------------------------------------------------------
    async def send(self, trade: TradeRecord, role: str, attempt: int, side: OrderSide, quantity: int, kind: OrderKind,
                   price: int, priority: Priority, fired: TradeEvent | None = None,
                   placed: Callable[[], None] | None = None, trigger: int = 0) -> OrderRecord | None:
        """Send an order with its row (an exit's with `fired`, the event that made it); `placed` is
        called the moment the broker has taken it. The record — IN_DOUBT if the placement is — or None
        when the broker refused it (recorded: a refused entry leaves its trade REJECTED). A stop order
        (`trigger` > 0) goes as SmartAPI's STOPLOSS variety."""
        tag = tag_for(trade.id, role, attempt)
        now = self.journal.now_ms()

        def store_order(db) -> tuple[TradeRecord | None, OrderRecord]:
            folded = Store.apply(db, trade.id, fired) if fired is not None else None
            return folded, Store.insert_order(db, trade_id=trade.id, role=role, attempt=attempt, tag=tag, side=str(side),
                                              kind=str(kind), quantity=quantity, price=price, now_ms=now,
                                              trigger_price=trigger)

        self._by_trade.setdefault(trade.id, set()).add(tag)
        login, key = trade.spec.login, (trade.exchange, trade.token, trade.product)
        reserve = (-quantity if side is OrderSide.SELL else quantity) if role in EXITS else 0
        if role == "exit":
            stored = self._storing[tag] = self.store.db.submit(store_order)
            self.books.place(tag, login, key, reserve=reserve)
        else:
            record = (await self.store.db.write(store_order))[1]
            self.remember(record)
            self.books.place(tag, login, key, reserve=reserve)
        request = OrderRequest(exchange=trade.exchange, tradingsymbol=trade.tradingsymbol, token=trade.token,
                               side=side, quantity=quantity, kind=kind, price=price, product=trade.product, tag=tag,
                               trigger_price=trigger, variety="STOPLOSS" if trigger else "NORMAL")
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
            self.remember(record)
            if folded is not None:
                self.journal.publish(folded)
        if isinstance(failure, PlacementUnknown):
            return await self._in_doubt(trade, record, failure)
        if failure is not None:
            self.books.settle(tag)
            await self._send_failed(trade, record, role, failure)
            return None
        self.count(role, "sent")
        if placed is not None:
            placed()
        record = await self.store.db.write(
            lambda db: Store.order_sent(db, record.id, self.journal.now_ms(), ack.order_id, ack.unique_order_id))
        self.remember(record)
        await self.journal.record(trade.id, f"{role}_sent", tag=tag, order_id=ack.order_id, quantity=quantity, price=price)
        return record

    async def _in_doubt(self, trade: TradeRecord, record: OrderRecord, failure: PlacementUnknown) -> OrderRecord:
        """The request timed out or met a 5xx and no order with its tag was found: it may be at the
        broker. It stays working (an exit's quantity reserved) until the doubt rule settles it."""
        self.count(record.role, "in_doubt")
        record = await self.move(record, was=OrderStatus.SENDING, status=OrderStatus.IN_DOUBT, text=failure.message)
        if record.status == OrderStatus.IN_DOUBT:  # the broker's news of it may have come first: then it is not
            log.warning("order placement in doubt", extra={"trade_id": trade.id, "tag": record.tag})
            await self.journal.record(trade.id, f"{record.role}_in_doubt", tag=record.tag, reason=failure.message)
        return record

    async def _send_failed(self, trade: TradeRecord, record: OrderRecord, role: str, failure: BrokerError) -> None:
        if isinstance(failure, EntryExpired):
            self.count(role, "expired")
            await self._order_failed(record, OrderStatus.EXPIRED, failure.message)
            await self.journal.record(trade.id, "expired", reason=failure.message)
        elif isinstance(failure, OrderRefused):
            self.count(role, "rejected")
            await self._order_failed(record, OrderStatus.REJECTED, failure.message)
            if role == "entry":
                await self.refuse_entry(trade.id, f"{failure.message} [{failure.errorcode}]")
        else:
            self.count(role, "failed")
            await self._order_failed(record, OrderStatus.FAILED, failure.message)
            if role == "entry":
                await self.refuse_entry(trade.id, failure.message)

    async def refuse_entry(self, trade_id: int, reason: str) -> None:
        """An entry order refused: the trade is REJECTED unless an earlier slice already filled."""
        trade = await self.store.trade(trade_id)
        if trade is not None and trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
            await self.journal.record(trade_id, "rejected", reason=reason)
        else:
            await self.journal.record(trade_id, "entry_slice_refused", reason=reason)

    async def _order_failed(self, record: OrderRecord, status: str, text: str) -> None:
        self.remember(await self.store.db.write(
            lambda db: Store.update_order(db, record.id, self.journal.now_ms(), status=status, text=text[:200])))
        self._tell(record.tag)

    async def move(self, record: OrderRecord, *, was: str, status: str, text: str) -> OrderRecord:
        """Our order from status `was` to `status`, unless the broker's news moved it first: the most
        advanced view of it after. One that moved to a finished status is finished in its book."""
        moved = await self.store.db.write(lambda db: Store.move_order(
            db, record.id, self.journal.now_ms(), was=was, status=status, text=text))
        self.remember(moved)
        if moved.status == status and status in TERMINAL_STATUSES:
            self.books.settle(moved.tag)
        return self._tags[moved.tag]

    async def settle_unsent(self, record: OrderRecord, reason: str) -> None:
        """An order the broker never received (tickguard stopped first)."""
        await self._order_failed(record, OrderStatus.FAILED, reason)
        trade = await self.store.trade(record.trade_id)
        if record.role == "entry" and trade is not None and trade.state is TradeState.PENDING_ENTRY and not trade.filled:
            await self.journal.record(trade.id, "expired", reason=reason)

    async def register(self, record: OrderRecord) -> None:
        """Count in its login's book an order this process did not send (found again after a restart)."""
        trade = await self.store.trade(record.trade_id)
        if trade is None or self.books.knows(record.tag):
            return
        live = record.status not in TERMINAL_STATUSES
        left = max(0, record.quantity - record.filled) if live and record.role in EXITS else 0
        self.books.place(record.tag, trade.spec.login, (trade.exchange, trade.token, trade.product),
                         reserve=-left if record.side == "SELL" else left, working=live)

    # The broker's news ----------------------------------------------------------------------------
    def on_order_update(self, update: OrderUpdate, login: str | None = None) -> None:
        order = self.ours(update.order)
        if order.tag.startswith("tg"):
            self.spawn(self.apply_order(order, login), f"update-{order.tag}")
        else:
            self._foreign(order, login)

    def ours(self, order: BrokerOrder) -> BrokerOrder:
        """The order under our tag: a GTT rule's order carries no tag, only its rule (`parentorderid`)."""
        tag = self.rule_tags.get(order.parent_order_id) if order.parent_order_id and not order.tag else None
        return msgspec.structs.replace(order, tag=tag) if tag else order

    def _foreign(self, order: BrokerOrder, login: str | None) -> None:
        """Another order moved a position we may exit: that instrument is unknown until a fresh snapshot."""
        if order.filled > 0:
            self.books.book(login).foreign((order.exchange, order.token, order.product))

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
        async with self.lock(record.trade_id):
            record = self._tags.get(order.tag) or record
            self.remember(record)  # known in this process from now on (after a restart: read from the store)
            if not self.books.knows(order.tag):
                await self.register(record)
            delta = order.filled - record.filled
            status = str(order.status)
            if delta <= 0 and status == record.status and order.order_id == (record.broker_order_id or order.order_id):
                return
            previous = record
            now = self.journal.now_ms()
            price = _fill_price(previous, order, delta) if delta > 0 else 0
            exiting = previous.role in EXITS
            fill = TradeEvent(kind="exit_fill" if exiting else "entry_fill", at_ms=now,
                              data={"quantity": delta, "price": price, "tag": previous.tag}) if delta > 0 else None

            def work(db) -> tuple[OrderRecord, TradeRecord | None, bool]:
                """The order's news and the fill it brings in one transaction: a crash between the two
                would leave a complete order whose fill no trade ever counted."""
                updated = Store.update_order(
                    db, previous.id, now, broker_order_id=order.order_id, unique_order_id=order.unique_order_id,
                    status=status, filled=max(order.filled, previous.filled), average_price=order.average_price,
                    text=order.text[:200])
                if fill is None:
                    return updated, None, False
                trade = Store.apply(db, previous.trade_id, fill)
                # the entry may still fill (its rest working): the exit path cancels that rest first and
                # exits what filled of it; the trade is not closed under it
                if exiting and trade.exited >= trade.filled and trade.state is not TradeState.CLOSED \
                        and not Store.entry_working(db, trade.id):
                    # the broker's stop took the position out before any exit of ours was fired
                    data = {"exit_reason": "BROKER_STOP"} if trade.state is TradeState.OPEN else {}
                    return updated, Store.apply(db, trade.id, TradeEvent(kind="closed", at_ms=now, data=data)), True
                return updated, trade, False

            record, filled_trade, closed = await self.store.db.write(work)
            self.remember(record)
            if record.status in (OrderStatus.COMPLETE, OrderStatus.REJECTED) and previous.status != record.status:
                self.count(record.role, "filled" if record.status == OrderStatus.COMPLETE else "rejected")
            if delta > 0 and self.books.knows(record.tag):
                self.books.fill(record.tag, delta if record.side == "BUY" else -delta)
            if record.status in TERMINAL_STATUSES:
                self.books.settle(record.tag)
            if filled_trade is not None:
                self.journal.publish(filled_trade)
                self.on_fill(record, filled_trade, price, closed, delta)
            elif record.role == "entry" and order.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
                trade = await self.store.trade(record.trade_id)
                if trade is not None and trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
                    await self.journal.record(trade.id, "rejected", reason=order.text or status)
            if record.role == "broker_stop":
                self.on_stop_news(record)
        self._tell(order.tag)

    async def refresh(self, trade: TradeRecord, record: OrderRecord) -> None:
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
