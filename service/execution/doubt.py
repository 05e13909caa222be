"""Orders in doubt (trading-semantics §5): a placement that timed out or met a 5xx, and whose tag the
broker's order book did not show, may be at the broker or not.

Such an order is `OrderStatus.IN_DOUBT` (the ledger marks it so when the placement fails that way):
live, so an exit's quantity stays reserved and no second exit goes out while the first may be
working. The broker settles it — news of the order on the order-update socket, or the order book
showing its tag — or, when two order-book reads at least `doubt_settle_s` (DOUBT_SETTLE_S) apart both
lack the tag, it counts as never placed (FAILED) and the next attempt may go. The rule assumes the
book shows an order within DOUBT_SETTLE_S of its placement.
"""
from __future__ import annotations

import asyncio
import logging
import time

from service.broker import BrokerError, BrokerOrder, OrderStatus
from service.execution.config import ExecConfig
from service.execution.journal import BrokerFor
from service.execution.orders import OrderLedger
from service.store import OrderRecord
from service.trades import TradeRecord

__all__ = ["DoubtRule"]

log = logging.getLogger("tickguard.execution")


class DoubtRule:
    """Placements in doubt, until the broker settles them (the module's docstring)."""

    def __init__(self, orders: OrderLedger, config: ExecConfig, *, broker_for: BrokerFor) -> None:
        self.orders = orders
        self.config = config
        self.broker_for = broker_for

    async def settle(self, trade: TradeRecord, tag: str) -> bool:
        """Wait until the broker settles an order in doubt. True once it shows the order — news on the
        order-update socket, or the order book by its tag (applied like any news); False once two
        order-book reads at least `doubt_settle_s` apart both lack the tag: it was never placed, and
        is marked failed. A read that fails proves nothing and is tried again."""
        orders, settle_s = self.orders, self.config.doubt_settle_s
        watched = orders.watched(tag)  # an exit's watch owns its event
        event = orders.watch(tag)
        lacking_since: float | None = None
        try:
            while self._status(tag) == OrderStatus.IN_DOUBT:
                try:
                    found: list[BrokerOrder] | None = await self.broker_for(trade).find_orders(tag)
                except BrokerError:
                    found = None
                if found:
                    await orders.apply_order(found[-1], trade.spec.login)
                    continue
                now = time.monotonic()
                if found is not None and lacking_since is not None and now - lacking_since >= settle_s:
                    return await self._never_placed(trade, tag, now - lacking_since)
                if found is not None and lacking_since is None:
                    lacking_since = now
                wait = settle_s - (now - lacking_since) if lacking_since is not None else min(settle_s, 1.0)
                event.clear()
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        await event.wait()
                except TimeoutError:
                    pass
            return True
        finally:
            if not watched:
                orders.unwatch(tag)

    def _status(self, tag: str) -> str:
        record = self.orders.get(tag)
        assert record is not None, f"no record of {tag}"
        return record.status

    async def _never_placed(self, trade: TradeRecord, tag: str, apart_s: float) -> bool:
        text = f"never placed: two order-book reads {apart_s:.1f} s apart have no order tagged {tag}"
        record = self.orders.get(tag)
        assert record is not None
        if (await self.orders.move(record, was=OrderStatus.IN_DOUBT, status=OrderStatus.FAILED, text=text)).status \
                != OrderStatus.FAILED:  # its news arrived during the last read
            return True
        log.warning("order in doubt was never placed", extra={"trade_id": trade.id, "tag": tag})
        return False

    async def exit_in_doubt(self, record: OrderRecord, reason: str) -> None:
        """After a restart: an exit the order book does not show. It may yet appear, so it is in doubt —
        reserved in its book, and settled by the trade's resumed exit (`settle`)."""
        await self.orders.register(await self.orders.move(record, was=record.status, status=OrderStatus.IN_DOUBT,
                                                         text=reason))
