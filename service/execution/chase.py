"""One exit order, from its price to its end: a protected marketable LIMIT (or a MARKET order), sent
through the order ledger, watched until it is finished and re-priced while it rests unfilled.

A protected limit is LTP ∓ `protection_pct` on the tick grid, at least one tick away and inside the
day's circuit band. One that has rested unfilled for `chase_ms` is re-priced at the latest LTP, one
protection step further out per chase (at most MAX_CHASE_STEPS further). An order in doubt is settled
by the doubt rule before anything else; one without news for `confirm_after_s` is looked up.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from service.broker import TERMINAL_STATUSES, BrokerError, OrderKind, OrderRequest, OrderSide, OrderStatus, Priority
from service.execution.config import ExecConfig
from service.execution.doubt import DoubtRule
from service.execution.journal import BrokerFor
from service.execution.orders import OrderLedger
from service.store import OrderRecord
from service.trades import TradeEvent, TradeRecord, tag_for

__all__ = ["Chaser", "MAX_CHASE_STEPS", "protected_price"]

log = logging.getLogger("tickguard.execution")
MAX_CHASE_STEPS = 4  # an exit limit is re-priced at most 5 protection buffers beyond the LTP
Ltp = Callable[[TradeRecord], Awaitable[int]]


def protected_price(side: OrderSide, ltp: int, tick: int, pct: Decimal, band: tuple[int, int] | None = None) -> int:
    """A marketable limit: beyond the LTP by `pct` percent, on the tick grid, at least one tick away —
    and never outside the day's circuit band, where the exchange would reject it."""
    buffer = max(tick, int(Decimal(ltp) * pct / 100))
    if side is OrderSide.SELL:
        price = max(tick, (ltp - buffer) // tick * tick)
        return max(price, -(-band[0] // tick) * tick) if band else price
    price = -((-(ltp + buffer)) // tick) * tick
    return min(price, band[1] // tick * tick) if band else price


class Chaser:
    def __init__(self, orders: OrderLedger, doubt: DoubtRule, config: ExecConfig, *, broker_for: BrokerFor, ltp: Ltp,
                 bands: dict[tuple[str, str], tuple[int, int] | None]) -> None:
        self.orders = orders
        self.journal = orders.journal
        self.doubt = doubt
        self.config = config
        self.broker_for = broker_for
        self.ltp = ltp  # the trade's last price: the guard's, else asked of the broker
        self.bands = bands  # circuit bands by (exchange, token), learnt as trades arm

    async def exit_order(self, trade: TradeRecord, attempt: int, quantity: int, fired: TradeEvent | None = None,
                         placed: Callable[[], None] | None = None) -> str:
        """Send exit order `attempt` for `quantity` units and watch it to its end: "filled", "refused"
        (the broker never took it), "never placed" (in doubt, then not found), or its final status."""
        side = OrderSide.SELL if trade.long else OrderSide.BUY
        tick = trade.spec.tick_size
        market = self.config.exit_order_type == "MARKET"
        band = self.bands.get((trade.exchange, trade.token))
        price = 0 if market else protected_price(side, await self.ltp(trade), tick, self.config.protection_pct, band)
        tag = tag_for(trade.id, "exit", attempt)
        self.orders.watch(tag)  # news of it may come before the send returns
        try:
            record = await self.orders.send(trade, "exit", attempt, side, quantity,
                                            OrderKind.MARKET if market else OrderKind.LIMIT, price, Priority.EXIT,
                                            fired, placed)
            if record is None:
                return "refused"
            return await self.watch(trade, record)
        finally:
            self.orders.unwatch(tag)

    async def watch(self, trade: TradeRecord, record: OrderRecord) -> str:
        """Wait for an exit order to finish, re-pricing a limit once it has rested unfilled for `chase_ms`
        (news that it is open is no reason to re-price: the fill may be on its way behind it)."""
        orders, tag = self.orders, record.tag
        event = orders.watch(tag)
        side = OrderSide(record.side)
        tick = trade.spec.tick_size
        price = record.price
        chases = 0
        chase_s = self.config.chase_ms / 1000
        checked = time.monotonic()
        chase_at = checked + chase_s
        try:
            while True:
                if (orders.get(tag) or record).status == OrderStatus.IN_DOUBT:
                    if not await self.doubt.settle(trade, tag):
                        return "never placed"
                    chase_at = checked = time.monotonic()  # settled: look at it afresh
                try:
                    async with asyncio.timeout(max(0.0, chase_at - time.monotonic())):
                        await event.wait()
                except TimeoutError:
                    if time.monotonic() - checked >= self.config.confirm_after_s:  # no update for a while: ask the broker
                        checked = time.monotonic()
                        await orders.refresh(trade, orders.get(tag) or record)
                event.clear()
                current = orders.get(tag) or record
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
            orders.unwatch(tag)

    async def _chase(self, trade: TradeRecord, order: OrderRecord, side: OrderSide, price: int, tick: int, chases: int) -> int:
        """Re-price at the latest LTP, one protection step further out per chase (up to MAX_CHASE_STEPS):
        an unfilled marketable limit at an unchanged price means the book has moved away from it."""
        steps = 1 + min(chases, MAX_CHASE_STEPS)
        fresh = protected_price(side, await self.ltp(trade), tick, self.config.protection_pct * steps,
                                self.bands.get((trade.exchange, trade.token)))
        if fresh == price or not order.broker_order_id:
            return price
        request = OrderRequest(exchange=trade.exchange, tradingsymbol=trade.tradingsymbol, token=trade.token, side=side,
                               quantity=order.quantity, kind=OrderKind.LIMIT, price=fresh, product=trade.product)
        try:
            await self.broker_for(trade).modify_order(order.broker_order_id, request, Priority.EXIT)
        except BrokerError as exc:
            log.warning("exit re-price refused", extra={"trade_id": trade.id, "error": exc.message})
            await self.orders.refresh(trade, order)  # refused because it filled meanwhile? learn it now
            return price
        await self.journal.record(trade.id, "exit_chased", tag=order.tag, price=fresh)
        return fresh
