"""A DELIVERY position's broker stop: a GTT rule (SmartAPI's gtt/v1), which lives across days.

A session stop order dies with its session; a delivery position is held for days, so its backup stop
is a GTT rule instead: when the price crosses its trigger the broker places a LIMIT order at its
price. It is kept like any broker stop — a row in the orders table (role `broker_stop`, kind `GTT`,
tag `tg<id>B<n>`, the rule id as its broker id while it waits, status `trigger pending`), its
quantity reserved in the position book — but rules carry no tag: the rule id is the link. The LIMIT
order a triggered rule places carries no tag either, only its rule (`parentorderid`), so the ledger
maps it to the row's tag (`OrderLedger.rule_tags`) and from then on the row follows that order.

The row is written before the rule is created, so a crash in between leaves a row to reconcile; a
create whose answer was lost (timeout, 5xx) is settled by the broker's rule list: a waiting rule
with the same instrument, side, quantity, trigger and price not known to be another's is adopted.
"""
from __future__ import annotations

import logging

from service.broker import (
    BrokerError,
    GttRequest,
    GttStatus,
    OrderRefused,
    OrderSide,
    OrderStatus,
    Priority,
    RateLimited,
)
from service.execution.journal import BrokerFor
from service.execution.orders import OrderLedger
from service.store import OrderRecord, Store
from service.trades import TradeRecord, TradeState, tag_for

__all__ = ["GttRules", "KIND"]

log = logging.getLogger("tickguard.backstop")
KIND = "GTT"  # the orders table's `kind` of a broker stop that is a GTT rule


class GttRules:
    def __init__(self, orders: OrderLedger, *, broker_for: BrokerFor) -> None:
        self.orders = orders
        self.store = orders.store
        self.journal = orders.journal
        self.broker_for = broker_for

    @staticmethod
    def waiting(record: OrderRecord) -> bool:
        """A GTT row whose rule has not triggered (its broker id is the rule's)."""
        return record.kind == KIND and record.status == OrderStatus.TRIGGER_PENDING

    def learn(self, record: OrderRecord) -> None:
        """Map the rule of a GTT row to its tag (after a restart: from the store)."""
        if self.waiting(record) and record.broker_order_id:
            self.orders.rule_tags[record.broker_order_id] = record.tag

    async def place(self, trade: TradeRecord, attempt: int, quantity: int, trigger: int, limit: int) -> OrderRecord | None:
        """Create the trade's rule; the row, or None when the broker refused it (recorded on the row)."""
        tag = tag_for(trade.id, "broker_stop", attempt)
        now = self.journal.now_ms()
        side = OrderSide.SELL if trade.long else OrderSide.BUY
        record = await self.store.db.write(lambda db: Store.insert_order(
            db, trade_id=trade.id, role="broker_stop", attempt=attempt, tag=tag, side=str(side), kind=KIND,
            quantity=quantity, price=limit, now_ms=now, trigger_price=trigger))
        self.orders.remember(record)
        self.orders.books.place(tag, trade.spec.login, (trade.exchange, trade.token, trade.product),
                                reserve=-quantity if side is OrderSide.SELL else quantity)
        request = self._request(trade, side, quantity, trigger, limit)
        try:
            rule_id = await self.broker_for(trade).create_gtt(request, Priority.STOP)
        except (OrderRefused, RateLimited) as exc:
            await self.orders.move(record, was=OrderStatus.SENDING, status=OrderStatus.REJECTED, text=exc.message)
            return None
        except BrokerError as exc:  # the answer was lost: the rule may exist
            rule_id = await self._adopt(trade, request)
            if rule_id is None:
                await self.orders.move(record, was=OrderStatus.SENDING, status=OrderStatus.FAILED, text=exc.message)
                return None
        record = await self.store.db.write(lambda db: Store.update_order(
            db, record.id, self.journal.now_ms(), broker_order_id=rule_id, status=OrderStatus.TRIGGER_PENDING))
        self.orders.remember(record)
        self.learn(record)
        await self.journal.record(trade.id, "broker_stop_sent", tag=tag, rule_id=rule_id, quantity=quantity,
                                  trigger=trigger, price=limit)
        return record

    async def _adopt(self, trade: TradeRecord, request: GttRequest) -> str | None:
        try:
            rules = await self.broker_for(trade).gtt_rules()
        except BrokerError:
            return None
        known = set(self.orders.rule_tags)
        for rule in rules:
            if rule.rule_id not in known and (rule.token, rule.side, rule.quantity, rule.trigger_price, rule.price) == \
                    (request.token, request.side, request.quantity, request.trigger_price, request.price):
                log.warning("GTT rule adopted after a lost answer", extra={"trade_id": trade.id, "rule": rule.rule_id})
                return rule.rule_id
        return None

    async def modify(self, trade: TradeRecord, record: OrderRecord, quantity: int, trigger: int, limit: int) -> bool:
        if not self.waiting(record):
            return False
        request = self._request(trade, OrderSide(record.side), quantity, trigger, limit)
        try:
            await self.broker_for(trade).modify_gtt(str(record.broker_order_id), request, Priority.STOP)
        except BrokerError as exc:  # triggered meanwhile, most likely
            log.info("GTT rule not modified", extra={"trade_id": trade.id, "tag": record.tag, "error": exc.message})
            await self.refresh(trade, record)
            return False
        self.orders.remember(await self.store.db.write(lambda db: Store.update_order(
            db, record.id, self.journal.now_ms(), quantity=quantity, trigger_price=trigger, price=limit)))
        return True

    async def cancel(self, trade: TradeRecord, record: OrderRecord, priority: Priority) -> None:
        """Cancel the rule, or the order it placed once it triggered."""
        broker = self.broker_for(trade)
        if not self.waiting(record):
            if record.broker_order_id and record.status not in (OrderStatus.SENDING, OrderStatus.IN_DOUBT):
                try:
                    await broker.cancel_order(record.broker_order_id, "NORMAL", priority)
                except BrokerError as exc:
                    log.info("GTT order not cancelled", extra={"trade_id": trade.id, "error": exc.message})
            return
        try:
            await broker.cancel_gtt(str(record.broker_order_id), trade.exchange, trade.token, priority)
        except BrokerError as exc:  # triggered meanwhile, most likely: the rule tells
            log.info("GTT rule not cancelled", extra={"trade_id": trade.id, "tag": record.tag, "error": exc.message})
            await self.refresh(trade, record)
            return
        await self.orders.move(record, was=OrderStatus.TRIGGER_PENDING, status=OrderStatus.CANCELLED,
                               text="GTT rule cancelled")

    async def refresh(self, trade: TradeRecord, record: OrderRecord) -> None:
        """Read the rule (or its order) at the broker and apply what it says."""
        if not self.waiting(record):
            await self.orders.refresh(trade, record)
            return
        broker = self.broker_for(trade)
        try:
            rule = await broker.gtt_rule(str(record.broker_order_id))
        except BrokerError:
            return
        if rule is None or rule.status is GttStatus.CANCELLED:
            await self.orders.move(record, was=OrderStatus.TRIGGER_PENDING, status=OrderStatus.CANCELLED,
                                   text="GTT rule cancelled at the broker" if rule else "GTT rule not found")
        elif rule.status is GttStatus.SENT_TO_EXCHANGE and rule.order_id:
            try:
                placed = [o for o in await broker.order_book() if o.order_id == rule.order_id]
            except BrokerError:
                return
            for order in placed:
                await self.orders.apply_order(self.orders.ours(order), trade.spec.login)

    async def reconcile(self, trade: TradeRecord, record: OrderRecord) -> str:
        """After a restart, a GTT row not known to be finished: what its rule did while tickguard was
        down is applied (cancelled, or triggered: its order's fills close the trade), and a rule still
        waiting for a trade no longer open is cancelled. "orphan" for that, else "reconciled"."""
        self.orders.remember(record)
        self.learn(record)
        await self.orders.register(record)
        await self.refresh(trade, record)
        record = self.orders.get(record.tag) or record
        if self.waiting(record) and trade.state not in (TradeState.OPEN, TradeState.EXITING, TradeState.UNPROTECTED):
            await self.cancel(trade, record, Priority.STOP)
            log.warning("orphaned GTT rule cancelled", extra={"trade_id": trade.id, "tag": record.tag})
            return "orphan"
        return "reconciled"

    @staticmethod
    def _request(trade: TradeRecord, side: OrderSide, quantity: int, trigger: int, limit: int) -> GttRequest:
        return GttRequest(exchange=trade.exchange, tradingsymbol=trade.tradingsymbol, token=trade.token, side=side,
                          quantity=quantity, price=limit, trigger_price=trigger, product=trade.product)
