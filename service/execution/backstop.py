"""The broker-side backup stop: belt and braces behind every tick-driven stop.

tickguard's own stop fires first; behind it, at the broker, a stop-limit order (`tg<id>B<n>`,
SmartAPI's STOPLOSS variety, one per freeze-quantity slice) covers the trade's open quantity, so the
position stays protected while tickguard, its host or its network is down. Where it sits:
`backstop_levels`. Which trades get one: `backup_for` (BROKER_STOP, the strategy's and the account's
word, a stop on the traded instrument).

`BrokerStops` keeps each trade's broker stop converged on what the trade needs, from every trade
published (`observe`) and every piece of news of a stop (`OrderLedger.on_stop_news`), one trade at a
time under its own lock:

- armed (the entry's first fill) → placed, at STOP priority (after exits, before entries; never the
  exit reserve); later fills of the entry → its quantity amended (or one more slice);
- the stop trailed → the trigger moved with `modifyOrder`, only when it moved at least
  `step_pct` and at most once per `min_s` per trade;
- the trade no longer OPEN (closed, rejected…) → cancelled, so a closed trade leaves no order behind;
- outside its segment's session (a CARRYFORWARD position overnight) nothing can be placed: it is
  placed again at the next session's open;
- a DELIVERY position's broker stop is a GTT rule instead (`backstop_gtt`): it lives across days.

Before any exit of tickguard's own (full or partial) the exit path calls `hold` and `withdraw`: the
broker stop is cancelled and the exit waits for the broker's final word on it — cancelled, or filled
(wholly or partly: the fill is the trade's exit fill, and only the rest is sent). The two never both
fill: until the stop is final its unfilled quantity stays reserved in the position book, which caps
every exit. `release` after the exit lets a trade still OPEN (a partial exit) get its stop again.

A stop that triggers or fills while no exit of ours runs (the price jumped past tickguard's stop
between ticks) hands the trade to the exit path with reason BROKER_STOP (`on_trigger`), which
cancels what is left of the stop and chases the rest like any exit.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from service.broker import TERMINAL_STATUSES, BrokerError, OrderKind, OrderRequest, OrderSide, OrderStatus, Priority
from service.execution.backstop_gtt import KIND as GTT, GttRules
from service.execution.backstop_levels import GTT_PRODUCTS, BackupConfig, backup_for, broker_levels, moved_enough, wanted
from service.execution.doubt import DoubtRule
from service.execution.journal import BrokerFor, Spawn
from service.execution.orders import OrderLedger
from service.store import OrderRecord, Store
from service.trades import TradeRecord, TradeState, tag_for

__all__ = ["BrokerStops", "WITHDRAW_S"]

log = logging.getLogger("tickguard.backstop")
WITHDRAW_S = 10.0  # how long an exit waits for the broker's final word on a cancelled stop
RETRY_S = 30.0  # a refused placement is tried again this much later…
MAX_REFUSALS = 3  # …this many times in a row, then left (the trade shows why)
CLOSED_MARKET_S = 60.0  # outside the session: looked at again this often
TRIGGERED = frozenset({OrderStatus.OPEN})  # a stop order reported open has triggered: it is a limit order now


_NOT_WORKING = TERMINAL_STATUSES | {OrderStatus.SENDING, OrderStatus.IN_DOUBT}


class BrokerStops:
    def __init__(self, orders: OrderLedger, doubt: DoubtRule, config: BackupConfig, *, broker_for: BrokerFor,
                 spawn: Spawn, bands: dict, on_trigger: Callable[[int], None],
                 session_open: Callable[[str], bool] = lambda exchange: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.orders = orders
        self.store = orders.store
        self.journal = orders.journal
        self.doubt = doubt
        self.config = config
        self.broker_for = broker_for
        self.spawn = spawn
        self.bands = bands
        self.on_trigger = on_trigger
        self.session_open = session_open
        self.clock = clock
        self.gtt = GttRules(orders, broker_for=broker_for)
        self.announce: Callable[[str, dict[str, Any]], None] = lambda kind, data: None  # service events (notifications)
        self.why: dict[int, str] = {}  # open trades without a broker stop: why
        self._latest: dict[int, TradeRecord] = {}  # the trades being looked after, as last published
        self._held: dict[int, int] = {}  # exits running per trade: its stop stays withdrawn
        self._locks: dict[int, asyncio.Lock] = {}
        self._workers: dict[int, asyncio.Task] = {}
        self._dirty: set[int] = set()
        self._moved_at: dict[int, float] = {}
        self._refusals: dict[int, int] = {}
        self._ready = asyncio.Event()  # cleared while a restart reconciles: nothing is placed on half a picture
        self._ready.set()
        orders.on_stop_news = self._news

    # What the rest of tickguard tells ---------------------------------------------------------------
    def observe(self, trade: TradeRecord) -> None:
        """A trade as published: converge its broker stop on it (cheap when nothing is to be done)."""
        if trade.state is TradeState.OPEN and trade.filled:
            buffer, why = backup_for(trade, self.config)
            if buffer is None:
                self.why[trade.id] = why
                if not self._live(trade.id):
                    return
            else:
                self.why.pop(trade.id, None)
        elif trade.id not in self._latest and not self._live(trade.id):
            self.why.pop(trade.id, None)
            return
        self._latest[trade.id] = trade
        self._kick(trade.id)

    def pause(self) -> None:
        """A restart is reconciling orders with the broker: no broker stop is placed, moved or cancelled
        until `resume` — a stop found again a moment later must not be placed a second time."""
        self._ready.clear()

    def resume(self) -> None:
        self._ready.set()

    def hold(self, trade_id: int) -> None:
        """An exit of tickguard's own starts: no broker stop is placed for the trade until `release`."""
        self._held[trade_id] = self._held.get(trade_id, 0) + 1

    def release(self, trade_id: int) -> None:
        left = self._held.get(trade_id, 0) - 1
        if left > 0:
            self._held[trade_id] = left
            return
        self._held.pop(trade_id, None)
        if trade_id in self._latest:
            self._kick(trade_id)

    async def withdraw(self, trade_id: int) -> bool:
        """Cancel the trade's broker stop and wait for the broker's final word on it (its fills are the
        trade's exit fills by then). True once nothing of it can fill any more; False if it is still
        live after WITHDRAW_S (its unfilled quantity stays reserved: no exit can exceed the position)."""
        if trade_id not in self._workers and not self._live(trade_id):
            return True  # nothing at the broker, and no placement on its way (it runs in the trade's worker)
        async with self._lock(trade_id):  # a placement on its way finishes first: then it is cancelled
            deadline = self.clock() + WITHDRAW_S
            asked: dict[str, float] = {}
            while True:
                live = self._live(trade_id)
                if not live:
                    return True
                now = self.clock()
                if now >= deadline:
                    log.error("broker stop not cancelled in time", extra={"trade_id": trade_id,
                                                                           "tags": [r.tag for r in live]})
                    return False
                trade = self._latest.get(trade_id) or await self.store.trade(trade_id)
                assert trade is not None
                for record in [r for r in live if r.status == OrderStatus.IN_DOUBT]:
                    await self.doubt.settle(trade, record.tag)  # at the broker after all (then cancelled), or never placed
                    live = self._live(trade_id)
                for record in live:
                    if now - asked.get(record.tag, -1e9) >= 1.0:  # asked again each second while it lives
                        asked[record.tag] = now
                        await self._cancel(trade, record, Priority.EXIT)
                await self._await_news([r.tag for r in live], 0.2)
                for record in self._live(trade_id):
                    await self.gtt.refresh(trade, record) if record.kind == GTT else await self.orders.refresh(trade, record)

    # Views ------------------------------------------------------------------------------------------
    def view(self, trade: TradeRecord) -> dict[str, Any] | None:
        """The trade's broker stop for the dashboard: its trigger, limit and quantity, or why it has none."""
        live = self._live(trade.id)
        if live:
            first = live[0]
            return {"tags": [r.tag for r in live], "trigger": first.trigger_price, "limit": first.price,
                    "quantity": sum(r.quantity - r.filled for r in live), "status": str(first.status),
                    "kind": "GTT rule" if first.kind == GTT else "stop order"}
        if trade.state is not TradeState.OPEN or not trade.filled:
            return None
        return {"why": self.why.get(trade.id) or ("withdrawn for an exit" if trade.id in self._held else "being placed")}

    def unprotected(self, armed: Collection[int]) -> int:
        """How many of the `armed` trades have no broker stop working: only trades that ever had one are
        asked (with BROKER_STOP off, none: a scrape with 10 000 armed trades asked each, 6 ms of the loop)."""
        protected = self.protected
        return len(armed) - sum(1 for trade_id in self.orders.stop_trades if trade_id in armed and protected(trade_id))

    def protected(self, trade_id: int) -> bool:
        """A broker stop is working for the trade (the broker has it). Cheap: asked of every armed trade
        whenever the metrics are read."""
        return any(r.role == "broker_stop" and r.status not in _NOT_WORKING for r in self.orders.records_of(trade_id))

    # Converging -------------------------------------------------------------------------------------
    def _kick(self, trade_id: int) -> None:
        self._dirty.add(trade_id)
        if trade_id not in self._workers:
            self._workers[trade_id] = self.spawn(self._work(trade_id), f"broker-stop-{trade_id}")

    async def _work(self, trade_id: int) -> None:
        try:
            await self._ready.wait()
            while trade_id in self._dirty:
                self._dirty.discard(trade_id)
                async with self._lock(trade_id):
                    wait = await self._step(trade_id)
                if wait is not None:
                    await asyncio.sleep(wait)
                    self._dirty.add(trade_id)
        finally:
            self._workers.pop(trade_id, None)
            trade = self._latest.get(trade_id)
            if trade is not None and trade.state not in (TradeState.OPEN, TradeState.PENDING_ENTRY) \
                    and not self._live(trade_id):
                self._forget(trade_id)

    async def _step(self, trade_id: int) -> float | None:
        """One move toward what the trade needs; seconds until the next look, or None when converged."""
        trade = self._latest.get(trade_id)
        if trade is None or trade_id in self._held:
            return None
        live = self._live(trade_id)
        buffer, _ = backup_for(trade, self.config)
        if buffer is None or not wanted(trade):
            for record in live:
                await self._cancel(trade, record, Priority.STOP)
            return None
        rule = trade.product in GTT_PRODUCTS
        doubtful = [r for r in live if r.status == OrderStatus.IN_DOUBT]
        if doubtful:
            for record in doubtful:
                await self.doubt.settle(trade, record.tag)
            return 0.0
        if not rule and not self.session_open(trade.exchange):  # a GTT rule may be made at any hour
            self.why[trade_id] = "the exchange takes no orders now: placed again at the next session's open"
            return CLOSED_MARKET_S if not live else None
        assert trade.stop is not None
        trigger, limit = broker_levels(trade.stop, trade.long, trade.spec.tick_size, buffer, self.config.protection_pct,
                                       self.bands.get((trade.exchange, trade.token)))
        if any(r.status in TRIGGERED or r.filled for r in live):
            return None  # it triggered: the exit path takes over (`_news`)
        covered = sum(r.quantity - r.filled for r in live)
        if covered < trade.open_quantity:
            return await self._cover(trade, live, trade.open_quantity - covered, trigger, limit)
        if live and moved_enough(live[0].trigger_price, trigger, trade.long, self.config.step_pct):
            since = self.clock() - self._moved_at.get(trade_id, -1e9)
            if since < self.config.min_s:
                return self.config.min_s - since
            self._moved_at[trade_id] = self.clock()
            for record in live:
                await self._modify(trade, record, record.quantity, trigger, limit)
        return None

    async def _cover(self, trade: TradeRecord, live: list[OrderRecord], missing: int, trigger: int,
                     limit: int) -> float | None:
        """Cover `missing` more units: the last slice grown up to the freeze quantity, then new slices."""
        freeze = None if trade.product in GTT_PRODUCTS else trade.spec.freeze_qty or None  # one rule, any size
        if live:
            last = live[-1]
            room = missing if freeze is None else min(missing, freeze - last.quantity)
            if room > 0:
                if not await self._modify(trade, last, last.quantity + room, last.trigger_price, last.price):
                    return 1.0
                missing -= room
        attempt = max((r.attempt for r in await self.store.orders(trade.id) if r.role == "broker_stop"), default=0)
        while missing > 0:
            quantity = missing if freeze is None else min(missing, freeze)
            attempt += 1
            if trade.product in GTT_PRODUCTS:
                record = await self.gtt.place(trade, attempt, quantity, trigger, limit)
            else:
                record = await self.orders.send(trade, "broker_stop", attempt, OrderSide.SELL if trade.long else
                                                OrderSide.BUY, quantity, OrderKind.STOPLOSS_LIMIT, limit, Priority.STOP,
                                                trigger=trigger)
            if record is None:  # refused (recorded on the order): tried again later, a few times
                refusals = self._refusals[trade.id] = self._refusals.get(trade.id, 0) + 1
                latest = self.orders.get(tag_for(trade.id, "broker_stop", attempt))
                self.why[trade.id] = f"the broker refused it: {latest.text if latest else 'refused'}"
                await self.journal.record(trade.id, "broker_stop_refused", attempt=attempt, reason=self.why[trade.id])
                self.announce("broker_stop_refused", {
                    "trade_id": trade.id, "tradingsymbol": trade.tradingsymbol, "strategy": trade.strategy,
                    "account": trade.account, "reason": self.why[trade.id], "given_up": refusals >= MAX_REFUSALS})
                return RETRY_S if refusals < MAX_REFUSALS else None
            self._refusals.pop(trade.id, None)
            self.why.pop(trade.id, None)
            missing -= quantity
        return None

    async def _modify(self, trade: TradeRecord, record: OrderRecord, quantity: int, trigger: int, limit: int) -> bool:
        """The broker stop (its order, or its GTT rule) moved to these levels and quantity; False if it was not."""
        modify = self.gtt.modify if record.kind == GTT else self._modify_order
        moved = await modify(trade, record, quantity, trigger, limit)
        if moved:
            await self.journal.record(trade.id, "broker_stop_moved", tag=record.tag, trigger=trigger, limit=limit,
                                      quantity=quantity)
        return moved

    async def _modify_order(self, trade: TradeRecord, record: OrderRecord, quantity: int, trigger: int,
                            limit: int) -> bool:
        if not record.broker_order_id:
            return False
        request = OrderRequest(exchange=trade.exchange, tradingsymbol=trade.tradingsymbol, token=trade.token,
                               side=OrderSide(record.side), quantity=quantity, kind=OrderKind.STOPLOSS_LIMIT,
                               price=limit, trigger_price=trigger, product=trade.product, variety="STOPLOSS")
        try:
            await self.broker_for(trade).modify_order(record.broker_order_id, request, Priority.STOP)
        except BrokerError as exc:  # it triggered or filled meanwhile, most likely: its news tells
            log.info("broker stop not modified", extra={"trade_id": trade.id, "tag": record.tag, "error": exc.message})
            await self.orders.refresh(trade, record)
            return False
        now = self.journal.now_ms()
        self.orders.remember(await self.store.db.write(lambda db: Store.update_order(
            db, record.id, now, quantity=quantity, trigger_price=trigger, price=limit)))
        return True

    async def _cancel(self, trade: TradeRecord, record: OrderRecord, priority: Priority) -> None:
        if record.kind == GTT:
            await self.gtt.cancel(trade, record, priority)
            return
        ids = [record.broker_order_id] if record.broker_order_id else []
        if not ids:  # sent, no answer yet (or in doubt): whatever the broker holds under its tag
            try:
                ids = [o.order_id for o in await self.broker_for(trade).find_orders(record.tag) if not o.terminal]
            except BrokerError:
                return
        for order_id in ids:
            try:
                await self.broker_for(trade).cancel_order(order_id, "STOPLOSS", priority)
            except BrokerError as exc:  # finished meanwhile (filled, most likely): the refresh tells
                log.info("broker stop not cancelled", extra={"trade_id": trade.id, "tag": record.tag,
                                                             "error": exc.message})

    # News -------------------------------------------------------------------------------------------
    def _news(self, record: OrderRecord) -> None:
        trade_id = record.trade_id
        trade = self._latest.get(trade_id)
        if (record.status in TRIGGERED or record.filled) and trade_id not in self._held \
                and trade is not None and trade.state is TradeState.OPEN:  # (its entry's rest may still fill)
            log.warning("broker stop triggered before tickguard's own exit", extra={"trade_id": trade_id,
                                                                                   "tag": record.tag})
            self.on_trigger(trade_id)
        elif record.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED) and trade_id not in self._held:
            if record.status == OrderStatus.REJECTED:
                self.why[trade_id] = f"the broker rejected it: {record.text}"
                self._refusals[trade_id] = self._refusals.get(trade_id, 0) + 1
            if self._refusals.get(trade_id, 0) < MAX_REFUSALS and trade is not None:
                self._kick(trade_id)

    # Bookkeeping ------------------------------------------------------------------------------------
    def _live(self, trade_id: int) -> list[OrderRecord]:
        live = [r for r in self.orders.records_of(trade_id) if r.role == "broker_stop" and r.status not in TERMINAL_STATUSES]
        return sorted(live, key=lambda r: r.attempt)

    def _lock(self, trade_id: int) -> asyncio.Lock:
        return self._locks.setdefault(trade_id, asyncio.Lock())

    async def _await_news(self, tags: list[str], timeout: float) -> None:
        """Until news of any of `tags` arrives, or `timeout`."""
        if not tags:
            return
        mine = [tag for tag in tags if not self.orders.watched(tag)]  # another's watch owns its event
        events = [self.orders.watch(tag) for tag in tags]
        for event in events:
            event.clear()
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for tag in mine:
                self.orders.unwatch(tag)

    def _forget(self, trade_id: int) -> None:
        for table in (self._latest, self._locks, self._moved_at, self._refusals, self.why):
            table.pop(trade_id, None)

