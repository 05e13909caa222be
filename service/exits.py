"""The exit path of the Trader (trading-semantics §5): an exit intent into one protected exit order at a time.

When the engine fires, at most one exit is in flight per trade. The unfilled rest of the entry is
cancelled first; the quantity is the filled quantity still open, never more than the broker's net
position in that direction (an exit never flips or opens a position). A protected marketable LIMIT
(LTP ∓ `protection_pct`, on the tick) is sent and re-priced every `chase_ms` until it fills, one
protection step further out per chase; a rejected exit is retried with backoff, then the trade is
UNPROTECTED — loudly, never silently. A trade is CLOSED only when the broker confirms the exit fill.

`ExitPath` is the half of `service.execution.Trader` that does this; it uses the Trader's order
plumbing (`_send`, `_record`, `refresh`, `apply_order`, the per-trade locks, the position books and
the order records by tag) and keeps none of its own.
"""
from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

from service.broker import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    BrokerError,
    BrokerOrder,
    OrderKind,
    OrderRequest,
    OrderSide,
    OrderStatus,
    Priority,
)
from service.store import OrderRecord, Store
from service.trades import Trade, TradeEvent, TradeState, tag_for
from streams import ExitIntent

__all__ = ["ExitPath", "protected_price", "MAX_CHASE_STEPS"]

log = logging.getLogger("tickguard.execution")
MAX_CHASE_STEPS = 4  # an exit limit is re-priced at most 5 protection buffers beyond the LTP


def protected_price(side: OrderSide, ltp: int, tick: int, pct: Decimal, band: tuple[int, int] | None = None) -> int:
    """A marketable limit: beyond the LTP by `pct` percent, on the tick grid, at least one tick away —
    and never outside the day's circuit band, where the exchange would reject it."""
    buffer = max(tick, int(Decimal(ltp) * pct / 100))
    if side is OrderSide.SELL:
        price = max(tick, (ltp - buffer) // tick * tick)
        return max(price, -(-band[0] // tick) * tick) if band else price
    price = -((-(ltp + buffer)) // tick) * tick
    return min(price, band[1] // tick * tick) if band else price


class ExitPath:
    """The exit half of `Trader` (it is `Trader(ExitPath)`): its state lives on the Trader."""

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
        await self.settle_partial_exits(trade)  # a part being exited: cancelled, its fills counted
        await self._cancel_entry_rest(trade)
        await self._exit_attempts(trade_id)

    def _clear_to_exit(self, trade: Trade) -> bool:
        """An OPEN trade with no exit sent and no entry order still working, as far as this process knows.
        A trade partly exited before takes the slow path: its exit orders are numbered after the parts'."""
        if trade.state is not TradeState.OPEN or trade.exited:
            return False
        for tag in self._by_trade.get(trade.id, ()):
            record = self._tags.get(tag)
            if record is None or record.role == "exit" or record.status not in TERMINAL_STATUSES:
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
                failures = await self._try_exit(trade, attempt, quantity, failures, "exit_retry", fired)
        else:
            attempt = await self._next_exit_attempt(trade_id) - 1
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
            # filled: the next slice, or the loop sees the trade CLOSED
            failures = await self._try_exit(trade, attempt, quantity, failures, "exit_retry")
            attempt += 1
        await self._record(trade_id, "unprotected", reason=f"exit failed {self.config.exit_attempts} times")
        log.error("trade UNPROTECTED: exit keeps failing", extra={"trade_id": trade_id})

    async def _next_exit_attempt(self, trade_id: int) -> int:
        """The number of the trade's next exit order: after every one sent before (parts included)."""
        return max((o.attempt for o in await self.store.orders(trade_id) if o.role == "exit"), default=0) + 1

    async def _try_exit(self, trade: Trade, attempt: int, quantity: int, failures: int, retry: str,
                        fired: TradeEvent | None = None) -> int:
        """One exit order (at most the freeze quantity) watched to its end; the failures so far after it.
        One that did not fill is recorded as `retry` and backed off from, doubling with each failure."""
        outcome = await self._exit_attempt(trade, attempt, _slice(trade, quantity), fired)
        if outcome == "filled":
            return failures
        failures += 1
        await self._record(trade.id, retry, attempt=attempt, outcome=outcome)
        await asyncio.sleep(self.config.retry_backoff_s * 2 ** (failures - 1))
        return failures

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

    async def _cancel_entry_rest(self, trade: Trade) -> None:
        for order in await self.store.orders(trade.id):
            if order.role == "entry" and order.broker_order_id and order.status in LIVE_STATUSES:
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
                if self._tags.get(tag, record).status == OrderStatus.IN_DOUBT:
                    if not await self.settle_doubt(trade, tag):
                        return "never placed"
                    chase_at = checked = time.monotonic()  # settled: look at it afresh
                try:
                    await asyncio.wait_for(event.wait(), timeout=max(0.0, chase_at - time.monotonic()))
                except asyncio.TimeoutError:
                    if time.monotonic() - checked >= self.config.confirm_after_s:  # no update for a while: ask the broker
                        checked = time.monotonic()
                        await self.refresh(trade, self._tags.get(tag, record))
                event.clear()
                current = self._tags.get(tag, record)
                if current.status == OrderStatus.COMPLETE:
                    return "filled"
                if current.status in TERMINAL_STATUSES:
                    return current.status
                if time.monotonic() < chase_at:
                    continue
                # at the exchange, unfilled; an order whose status cannot be read is never re-priced
                if current.kind == "LIMIT" and current.status in (OrderStatus.OPEN, OrderStatus.MODIFIED):
                    chases += 1
                    price = await self._chase(trade, current, side, price, tick, chases)
                chase_at = time.monotonic() + chase_s
        finally:
            self._order_events.pop(tag, None)

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
        price = self.guard.last_price(trade.exchange, trade.token)
        if price is not None:
            return price
        return await self.broker.ltp(trade.exchange, trade.tradingsymbol, trade.token)

    # Manual close --------------------------------------------------------------------------------
    async def close(self, trade_id: int, reason: str = "MANUAL") -> Trade | None:
        """Close on the operator's word (MANUAL) or an alert's (SIGNAL): cancel a pending entry, have
        the engine fire the close with that reason, or — for a trade no engine guards — fire it here."""
        trade = await self.store.trade(trade_id)
        if trade is None:
            return None
        if trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
            await self._cancel_entry_rest(trade)
            who = "an alert" if reason == "SIGNAL" else "the operator"
            return await self._record(trade_id, "rejected", reason=f"closed by {who} before the entry filled")
        if trade.state is TradeState.UNPROTECTED or (trade.state is TradeState.OPEN and not self.guard.armed(trade_id)):
            # no engine guards it (UNPROTECTED, or refused at arming a moment ago): the exit goes now
            self.on_exit_intent(ExitIntent(trade_id=trade_id, reason=reason, level=None, tick=None))
        elif self.guard.armed(trade_id):
            self.guard.close(trade_id, reason)
        return trade


def _slice(trade: Trade, quantity: int) -> int:
    """At most the exchange's freeze quantity per order: a larger exit goes out in slices."""
    freeze = trade.spec.get("freeze_qty")
    return min(quantity, int(freeze)) if freeze else quantity
