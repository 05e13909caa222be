"""The exit loop (trading-semantics §2, §5): an exit intent, or a partial exit, into protected exit
orders, one in flight per trade at a time.

A full exit, when the engine fires (or the operator or an alert closes): the unfilled rest of the
entry and any part being exited are cancelled first; then exit orders go out until the position is
out. A partial exit (`reduce`) does the same for `quantity` units of an OPEN trade, which stays OPEN
and armed: the engine realises each part's P&L as its fills arrive and keeps the rest's levels.
Events: `partial_exit_fired`, the parts' `exit_fill`s, then `partial_exit_done` or
`partial_exit_failed` (the rest is still guarded then).

Both run one loop (`_orders_until`): each order is at most the freeze quantity and never more than
the broker's net position in the trade's direction less the exits already on their way (the position
book; an exit never flips or opens a position); a protected marketable LIMIT (LTP ∓ `protection_pct`,
on the tick) is re-priced every `chase_ms` until it fills, one protection step further out per chase;
an order in doubt is settled before anything else goes; one that did not fill is retried with
backoff, and after `exit_attempts` of them a full exit leaves the trade UNPROTECTED — loudly, never
silently. A trade is CLOSED only when the broker confirms the exit fill.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from service.broker import LIVE_STATUSES, TERMINAL_STATUSES, BrokerError, BrokerOrder, Priority
from service.execution.backstop import BrokerStops
from service.execution.chase import Chaser
from service.execution.journal import BrokerFor, Spawn
from service.execution.orders import OrderLedger
from service.execution.positions import Books
from service.guard import Guard
from service.store import OrderRecord, Store
from service.trades import TradeEvent, TradeRecord, TradeState
from streams import ExitIntent

__all__ = ["ExitLoop", "SETTLE_S"]

log = logging.getLogger("tickguard.execution")
SETTLE_S = 10.0  # how long a full exit waits for a cancelled partial order's final word
RECHECKS = 3  # an exit quantity of 0 for a trade with open units is asked again this often, the broker heard first
STOP_NOT_CANCELLED = "the broker stop could not be cancelled: it stays at the broker, no exit was sent"


class ExitLoop:
    def __init__(self, orders: OrderLedger, books: Books, chaser: Chaser, guard: Guard, stops: BrokerStops, *,
                 broker_for: BrokerFor, spawn: Spawn, metrics: Any = None) -> None:
        self.orders = orders
        self.stops = stops
        self.journal = orders.journal
        self.store = orders.store
        self.books = books
        self.chaser = chaser
        self.config = chaser.config
        self.guard = guard
        self.broker_for = broker_for
        self.spawn = spawn
        self.metrics = metrics
        self.exiting: set[int] = set()  # trades with a full exit running in this process
        self._fired_at: dict[int, tuple[float, str]] = {}  # trade id -> (perf_counter at the intent, reason)
        self._reductions: dict[int, asyncio.Lock] = {}  # per trade: its partial exits, one after another

    # Full exits -----------------------------------------------------------------------------------
    def on_exit_intent(self, intent: ExitIntent) -> None:
        if intent.trade_id in self.exiting:
            return
        self._fired_at[intent.trade_id] = (time.perf_counter(), str(intent.reason))
        self._run(intent.trade_id, lambda: self._exit(intent), f"exit-{intent.trade_id}")

    def resume_exit(self, trade_id: int, live: OrderRecord | None) -> None:
        """After a restart: keep working an exit already at the broker, or send one."""
        if trade_id not in self.exiting:
            self._run(trade_id, lambda: self._exit_all(trade_id, watch=live), f"resume-exit-{trade_id}")

    def _run(self, trade_id: int, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self.exiting.add(trade_id)
        self.stops.hold(trade_id)

        async def run() -> None:
            try:
                if await self.stops.withdraw(trade_id):  # cancel-first: the broker stop is final before ours goes
                    await work()
                else:
                    await self.journal.record(trade_id, "unprotected", reason=STOP_NOT_CANCELLED)
            finally:
                self.exiting.discard(trade_id)
                self.stops.release(trade_id)

        self.spawn(run(), name)

    async def _exit(self, intent: ExitIntent) -> None:
        trade_id = intent.trade_id
        tick = intent.tick
        fired = TradeEvent(kind="exit_fired", at_ms=self.journal.now_ms(), data={
            "reason": str(intent.reason), "level": intent.level, "tick_ltp": tick.ltp if tick else None,
            "tick_ts_ms": tick.exchange_ts_ms if tick else None, "source": intent.source})
        async with self.orders.lock(trade_id):
            trade = self.guard.records.get(trade_id)
            if trade is not None and self._clear_to_exit(trade):
                quick = True  # armed here, nothing of its own working: the exit goes out before any write
            else:
                quick = False
                trade = await self.store.trade(trade_id)
                if trade is None or trade.state not in (TradeState.OPEN, TradeState.UNPROTECTED):
                    return  # EXITING: an exit is already working (or being resumed): never a second one
                trade = await self.journal.write(trade_id, fired)
        if quick:
            await self._exit_all(trade_id, first=(trade, fired))
            return
        await self._settle_working_orders(trade)  # a part being exited, an entry's rest: cancelled, fills counted
        await self._exit_all(trade_id)

    def _clear_to_exit(self, trade: TradeRecord) -> bool:
        """An OPEN trade with no exit sent and no entry order still working, as far as this process knows.
        A trade partly exited before takes the slow path: its exit orders are numbered after the parts'."""
        if trade.state is not TradeState.OPEN or trade.exited:
            return False
        for tag in self.orders.tags(trade.id):
            record = self.orders.get(tag)
            if record is None or record.role == "exit" or record.status not in TERMINAL_STATUSES:
                return False  # (a broker stop is final here: withdrawn before the exit began)
        return True

    async def _exit_all(self, trade_id: int, watch: OrderRecord | None = None,
                        first: tuple[TradeRecord, TradeEvent] | None = None) -> None:
        """Exit orders until the position is out: first watch `watch` (an exit already at the broker),
        or send the first exit of `first` (a trade and the event that fires it, written with that order),
        then the loop. After `exit_attempts` orders that did not fill the trade is UNPROTECTED."""
        failures = 0
        if first is not None:
            trade, fired = first
            attempt = 1
            quantity = await self._exit_quantity(trade)
            if quantity <= 0:
                await self.journal.write(trade_id, fired)  # the loop below closes it: no position left
            else:
                failures = await self._try_exit(trade, attempt, quantity, failures, "exit_retry", fired)
                attempt += 1
        else:
            attempt = await self._next_exit_attempt(trade_id)
            if watch is not None:
                trade = await self.store.trade(trade_id)
                assert trade is not None
                if await self.chaser.watch(trade, watch) != "filled":
                    failures += 1
        trade, failures = await self._orders_until(trade_id, attempt, failures)
        if failures >= self.config.exit_attempts:
            await self.journal.record(trade_id, "unprotected", reason=f"exit failed {self.config.exit_attempts} times")
            log.error("trade UNPROTECTED: exit keeps failing", extra={"trade_id": trade_id})
        elif trade is not None and trade.state is not TradeState.CLOSED:
            await self.journal.record(trade_id, "closed", reason="no position left at the broker")
            self.guard.confirm(trade_id, int(trade.entry_price or 0))

    # Partial exits --------------------------------------------------------------------------------
    async def reduce(self, trade_id: int, quantity: int, reason: str = "SIGNAL") -> TradeRecord | None:
        """Exit `quantity` units of an open trade; all of it (a full close) when that is all that is open."""
        async with self._reductions.setdefault(trade_id, asyncio.Lock()):
            async with self.orders.lock(trade_id):
                trade = await self.store.trade(trade_id)
                if trade is None or trade.state is not TradeState.OPEN or trade_id in self.exiting or quantity <= 0:
                    return trade  # gone, closing already, or not (yet) open: nothing to take part of
                whole = quantity >= trade.open_quantity
                if not whole:
                    trade = await self.journal.write(trade_id, TradeEvent(
                        kind="partial_exit_fired", at_ms=self.journal.now_ms(), data={"reason": reason, "quantity": quantity}))
            if whole:
                return await self.close(trade_id, reason)
            self.stops.hold(trade_id)
            try:
                return await self._reduce(trade, quantity)
            finally:
                self.stops.release(trade_id)

    async def _reduce(self, trade: TradeRecord, quantity: int) -> TradeRecord | None:
        """A partial exit fired: the broker stop withdrawn, then exit orders for `quantity` units."""
        trade_id = trade.id
        if not await self.stops.withdraw(trade_id):
            return await self.journal.record(trade_id, "partial_exit_failed", asked=quantity, quantity=0,
                                             reason=STOP_NOT_CANCELLED)
        goal = trade.exited + quantity  # the stop's fills, if it filled first, count toward the part
        now = await self.store.trade(trade_id)
        if now is None or now.state is not TradeState.OPEN:
            return now
        last, failures = await self._orders_until(trade_id, await self._next_exit_attempt(trade_id), 0, goal)
        if last is None or last.state is not TradeState.OPEN:
            return last  # a full exit took over (it cancelled this part's order), or the trade closed
        trade = await self.store.trade(trade_id)
        if trade is None or trade.state is not TradeState.OPEN:
            return trade
        done = trade.exited - (goal - quantity)
        if done < quantity and failures >= self.config.exit_attempts:
            log.error("partial exit keeps failing: the rest of the trade is still guarded",
                      extra={"trade_id": trade_id, "asked": quantity, "exited": done})
            return await self.journal.record(trade_id, "partial_exit_failed", asked=quantity, quantity=done,
                                             reason=f"exit failed {self.config.exit_attempts} times")
        return await self.journal.record(trade_id, "partial_exit_done", asked=quantity, quantity=done,
                                         realised_pnl=trade.realised_pnl)

    async def _settle_working_orders(self, trade: TradeRecord) -> None:
        """Before a full exit: cancel the orders still working for the trade — parts of it being exited,
        and the unfilled rest of its entry — and wait, at most SETTLE_S, for their final word, so their
        fills are counted before the rest goes (an entry's rest that filled meanwhile is exited too)."""
        working = [o for o in await self.store.orders(trade.id)
                   if o.role in ("exit", "entry") and o.status in LIVE_STATUSES]
        for order in working:
            if order.broker_order_id:
                try:
                    await self.broker_for(trade).cancel_order(order.broker_order_id, priority=Priority.EXIT)
                except BrokerError as exc:  # filled meanwhile, most likely: the refresh below tells
                    log.info("working order not cancelled", extra={"trade_id": trade.id, "tag": order.tag,
                                                                   "error": exc.message})
        deadline = time.monotonic() + SETTLE_S
        for order in working:
            while time.monotonic() < deadline:
                current = self.orders.get(order.tag) or order
                if current.status not in LIVE_STATUSES:
                    break
                await self.orders.refresh(trade, current)
                if (self.orders.get(order.tag) or current).status not in LIVE_STATUSES:
                    break
                await asyncio.sleep(0.1)

    # The loop -------------------------------------------------------------------------------------
    async def _orders_until(self, trade_id: int, attempt: int, failures: int,
                            goal: int | None = None) -> tuple[TradeRecord | None, int]:
        """Exit orders numbered from `attempt`, until the trade is out (`goal` None: a full exit, while
        it is not CLOSED) or has exited `goal` units (a part, while it is OPEN), or the broker holds
        nothing more to exit, or `exit_attempts` orders (`failures` so far) did not fill. The trade as
        last read, and the failures."""
        trade = None
        rechecks = 0
        while failures < self.config.exit_attempts:
            trade = await self.store.trade(trade_id)
            if trade is None or trade.state is TradeState.CLOSED or (goal is not None and trade.state is not TradeState.OPEN):
                break
            quantity = await self._exit_quantity(trade)
            if quantity <= 0 and trade.open_quantity > 0 and rechecks < RECHECKS:
                # nothing to exit, yet the trade counts open units: hear the broker before believing it
                await self._hear_working_orders(trade)
                await asyncio.sleep(0.05 * 2 ** rechecks)
                rechecks += 1
                continue
            if goal is not None:
                quantity = min(goal - trade.exited, quantity)
            if quantity <= 0:
                break
            # filled: the next slice, or the next turn sees the trade CLOSED (or the part done)
            failures = await self._try_exit(trade, attempt, quantity, failures,
                                            "exit_retry" if goal is None else "partial_exit_retry")
            attempt += 1
        return trade, failures

    async def _hear_working_orders(self, trade: TradeRecord) -> None:
        """Ask the broker for every order of ours still working on the trade's instrument and apply what
        it says. The position book reserves what those orders may still fill; a fill the broker's net
        position already counts but whose news has not arrived would be counted twice (after a restart,
        with two trades on one position), and an exit quantity of 0 taken for "no position left"."""
        book = self.books.book(trade.spec.login)
        for tag in book.working_tags((trade.exchange, trade.token, trade.product)):
            record = self.orders.get(tag)
            if record is not None and record.unique_order_id:
                await self.orders.refresh(trade, record)
            elif record is not None:  # sent a moment ago, its ids not written yet: found by its tag
                try:
                    found = await self.broker_for(trade).find_orders(tag)
                except BrokerError:
                    continue
                if found:
                    await self.orders.apply_order(found[-1], trade.spec.login)

    async def _next_exit_attempt(self, trade_id: int) -> int:
        """The number of the trade's next exit order: after every one sent before (parts included)."""
        return max((o.attempt for o in await self.store.orders(trade_id) if o.role == "exit"), default=0) + 1

    async def _exit_quantity(self, trade: TradeRecord) -> int:
        """The open filled quantity, capped by the broker's net position in the trade's direction less
        the exits already on their way (the login's position book, which asks the broker if need be)."""
        book = self.books.book(trade.spec.login)
        return await book.exitable((trade.exchange, trade.token, trade.product), trade.long, trade.open_quantity)

    async def _try_exit(self, trade: TradeRecord, attempt: int, quantity: int, failures: int, retry: str,
                        fired: TradeEvent | None = None) -> int:
        """One exit order (at most the freeze quantity) watched to its end; the failures so far after it.
        One that did not fill is recorded as `retry` and backed off from, doubling with each failure."""
        outcome = await self.chaser.exit_order(trade, attempt, _slice(trade, quantity), fired,
                                               placed=lambda: self._placed(trade.id))
        if outcome == "filled":
            return failures
        failures += 1
        await self.journal.record(trade.id, retry, attempt=attempt, outcome=outcome)
        await asyncio.sleep(self.config.retry_backoff_s * 2 ** (failures - 1))
        return failures

    def _placed(self, trade_id: int) -> None:
        """The broker took an exit: the time from the intent that fired it, in the metrics."""
        fired_at = self._fired_at.pop(trade_id, None)
        if fired_at is not None and self.metrics is not None:
            self.metrics.count_exit(fired_at[1], time.perf_counter() - fired_at[0])

    # After a restart, and closes ------------------------------------------------------------------
    async def adopt_exit(self, trade_id: int, attempt: int, order: BrokerOrder) -> bool:
        """After a restart: an exit the broker has but the store never recorded (tickguard stopped
        between sending it and committing its row) becomes the trade's exit, as if recorded then."""
        trade = await self.store.trade(trade_id)
        if trade is None or trade.state not in (TradeState.OPEN, TradeState.EXITING, TradeState.UNPROTECTED):
            return False
        now = self.journal.now_ms()

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

        self.orders.remember(await self.store.db.write(work))
        log.warning("exit adopted from the broker's order book", extra={"trade_id": trade_id, "tag": order.tag})
        await self.orders.apply_order(order)
        return True

    async def _cancel_entry_rest(self, trade: TradeRecord) -> None:
        for order in await self.store.orders(trade.id):
            if order.role == "entry" and order.broker_order_id and order.status in LIVE_STATUSES:
                try:
                    await self.broker_for(trade).cancel_order(order.broker_order_id, priority=Priority.EXIT)
                except BrokerError as exc:
                    log.warning("could not cancel the entry's rest", extra={"trade_id": trade.id, "error": exc.message})

    async def close(self, trade_id: int, reason: str = "MANUAL") -> TradeRecord | None:
        """Close on the operator's word (MANUAL) or an alert's (SIGNAL): cancel a pending entry, have
        the engine fire the close with that reason, or — for a trade no engine guards — fire it here."""
        trade = await self.store.trade(trade_id)
        if trade is None:
            return None
        if trade.state is TradeState.PENDING_ENTRY and trade.filled == 0:
            await self._cancel_entry_rest(trade)
            who = "an alert" if reason == "SIGNAL" else "the operator"
            return await self.journal.record(trade_id, "rejected", reason=f"closed by {who} before the entry filled")
        if trade.state is TradeState.UNPROTECTED or (trade.state is TradeState.OPEN and not self.guard.armed(trade_id)):
            # no engine guards it (UNPROTECTED, or refused at arming a moment ago): the exit goes now
            self.on_exit_intent(ExitIntent(trade_id=trade_id, reason=reason, level=None, tick=None))
        elif self.guard.armed(trade_id):
            self.guard.close(trade_id, reason)
        return trade


def _slice(trade: TradeRecord, quantity: int) -> int:
    """At most the exchange's freeze quantity per order: a larger exit goes out in slices."""
    freeze = trade.spec.freeze_qty  # None or unset: no limit
    return min(quantity, freeze) if freeze else quantity
