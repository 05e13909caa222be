"""Partial exits: part of an open trade closed while the rest stays guarded (trading-semantics §2, §5).

`reduce(trade_id, quantity, reason)` exits `quantity` units of an OPEN trade with protected LIMIT
orders, like every exit (tags `tg<id>X<n>`, numbered after the trade's earlier exit orders), each
capped by the broker's net position less the exits already on their way. The trade stays OPEN and
armed: the engine realises each part's P&L as its fills arrive (`Guard.reduce`) and keeps the rest's
stop, target and trail as the price levels they were. Events: `partial_exit_fired` (reason, quantity),
the parts' `exit_fill`s, then `partial_exit_done` (what was exited of what was asked) or
`partial_exit_failed` after `exit_attempts` refused orders — the rest is still guarded then.

At most one exit in flight per trade: reductions of a trade run one after another, none starts while
a full exit works, and a full exit that fires while a part is working cancels the part's order and
waits for its last fill (`settle_partial_exits`) before it exits all that is left.
"""
from __future__ import annotations

import asyncio
import logging
import time

from service.broker import LIVE_STATUSES, BrokerError, Priority
from service.store import OrderRecord
from service.trades import Trade, TradeEvent, TradeState

__all__ = ["PartialExits", "SETTLE_S"]

log = logging.getLogger("tickguard.execution")
SETTLE_S = 10.0  # how long a full exit waits for a cancelled partial order's final word


class PartialExits:
    """The partial-exit half of `Trader` (`Trader(PartialExits, ExitPath)`): its state lives on the Trader."""

    async def reduce(self, trade_id: int, quantity: int, reason: str = "SIGNAL") -> Trade | None:
        """Exit `quantity` units of an open trade; all of it (a full close) when that is all that is open."""
        lock = self._reductions.setdefault(trade_id, asyncio.Lock())
        async with lock:
            return await self._reduce(trade_id, quantity, reason)

    async def _reduce(self, trade_id: int, quantity: int, reason: str) -> Trade | None:
        async with self._lock(trade_id):
            trade = await self.store.trade(trade_id)
            if trade is None or trade.state is not TradeState.OPEN or trade_id in self._exiting or quantity <= 0:
                return trade  # gone, closing already, or not (yet) open: nothing to take part of
            whole = quantity >= trade.open_quantity
            if not whole:
                trade = await self._record_event(trade_id, TradeEvent(
                    kind="partial_exit_fired", at_ms=self.now_ms(), data={"reason": reason, "quantity": quantity}))
        if whole:
            return await self.close(trade_id, reason)
        goal = trade.exited + quantity
        attempt = await self._next_exit_attempt(trade_id)
        failures = 0
        while failures < self.config.exit_attempts:
            trade = await self.store.trade(trade_id)
            if trade is None or trade.state is not TradeState.OPEN:
                return trade  # a full exit took over (it cancelled this part's order), or the trade closed
            left = goal - trade.exited
            capped = min(left, await self._exit_quantity(trade))
            if left <= 0 or capped <= 0:
                break
            failures = await self._try_exit(trade, attempt, capped, failures, "partial_exit_retry")
            attempt += 1
        trade = await self.store.trade(trade_id)
        if trade is None or trade.state is not TradeState.OPEN:
            return trade
        done = trade.exited - (goal - quantity)
        if done < quantity and failures >= self.config.exit_attempts:
            log.error("partial exit keeps failing: the rest of the trade is still guarded",
                      extra={"trade_id": trade_id, "asked": quantity, "exited": done})
            return await self._record(trade_id, "partial_exit_failed", asked=quantity, quantity=done,
                                      reason=f"exit failed {self.config.exit_attempts} times")
        return await self._record(trade_id, "partial_exit_done", asked=quantity, quantity=done,
                                  realised_pnl=trade.realised_pnl)

    async def settle_partial_exits(self, trade: Trade) -> None:
        """Before a full exit: cancel the exit orders still working for the trade (parts of it) and
        wait, at most SETTLE_S, for their final word, so their fills are counted before the rest goes."""
        working = [o for o in await self.store.orders(trade.id) if o.role == "exit" and o.status in LIVE_STATUSES]
        for order in working:
            if order.broker_order_id:
                try:
                    await self.broker_for(trade).cancel_order(order.broker_order_id, priority=Priority.EXIT)
                except BrokerError as exc:  # filled meanwhile, most likely: the refresh below tells
                    log.info("partial exit not cancelled", extra={"trade_id": trade.id, "error": exc.message})
        deadline = time.monotonic() + SETTLE_S
        for order in working:
            while time.monotonic() < deadline:
                current: OrderRecord = self._tags.get(order.tag, order)
                if current.status not in LIVE_STATUSES:
                    break
                await self.refresh(trade, current)
                if self._tags.get(order.tag, current).status not in LIVE_STATUSES:
                    break
                await asyncio.sleep(0.1)
