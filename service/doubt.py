"""Orders in doubt (trading-semantics §5): a placement that timed out or met a 5xx, and whose tag the
broker's order book did not show, may be at the broker or not.

Such an order is `OrderStatus.IN_DOUBT`: live, so an exit's quantity stays reserved and no second
exit goes out while the first may be working. The broker settles it — news of the order on the
order-update socket, or the order book showing its tag — or, when two order-book reads at least
`doubt_settle_s` (DOUBT_SETTLE_S) apart both lack the tag, it counts as never placed (FAILED) and the
next attempt may go. The rule assumes the book shows an order within DOUBT_SETTLE_S of its placement.

`DoubtRule` is the part of `service.execution.Trader` that applies it (it is `Trader(ExitPath,
DoubtRule)`); its state lives on the Trader.
"""
from __future__ import annotations

import asyncio
import logging
import time

from service.broker import BrokerError, BrokerOrder, OrderStatus, PlacementUnknown
from service.store import OrderRecord, Store
from service.trades import Trade

__all__ = ["DoubtRule"]

log = logging.getLogger("tickguard.execution")


class DoubtRule:
    """Placements in doubt, until the broker settles them (the module's docstring)."""

    async def _placement_in_doubt(self, trade: Trade, record: OrderRecord, failure: PlacementUnknown) -> OrderRecord | None:
        """The request timed out or met a 5xx and no order with its tag was found: it may be at the broker.
        It stays working (an exit's quantity reserved) until `settle_doubt` decides. An exit's watch
        settles it; an entry's confirmation does, and its next slices wait for a clear answer."""
        self._count(record.role, "in_doubt")
        self._remember(await self.store.db.write(lambda db: Store.move_order(
            db, record.id, self.now_ms(), was=OrderStatus.SENDING, status=OrderStatus.IN_DOUBT, text=failure.message)))
        record = self._tags[record.tag]  # the broker's news of it may have come first: then it is not in doubt
        if record.status == OrderStatus.IN_DOUBT:
            log.warning("order placement in doubt", extra={"trade_id": trade.id, "tag": record.tag})
            await self._record(trade.id, f"{record.role}_in_doubt", tag=record.tag, reason=failure.message)
        if record.role == "exit":
            return record
        self.spawn(self._confirm_entry(trade.id, record.tag), f"confirm-{record.tag}")
        return None if record.status == OrderStatus.IN_DOUBT else record

    async def settle_doubt(self, trade: Trade, tag: str) -> bool:
        """Wait until the broker settles an order in doubt. True once it shows the order — news on the
        order-update socket, or the order book by its tag (applied like any news); False once two
        order-book reads at least `doubt_settle_s` apart both lack the tag: it was never placed, and
        is marked failed. A read that fails proves nothing and is tried again."""
        settle_s = self.config.doubt_settle_s
        watched = tag in self._order_events  # an exit's watch owns its event
        event = self._order_events.setdefault(tag, asyncio.Event())
        lacking_since: float | None = None
        try:
            while self._tags[tag].status == OrderStatus.IN_DOUBT:
                try:
                    found: list[BrokerOrder] | None = await self.broker_for(trade).find_orders(tag)
                except BrokerError:
                    found = None
                if found:
                    await self.apply_order(found[-1], trade.spec.get("login"))
                    continue
                now = time.monotonic()
                if found is not None and lacking_since is not None and now - lacking_since >= settle_s:
                    return await self._never_placed(trade, tag, now - lacking_since)
                if found is not None and lacking_since is None:
                    lacking_since = now
                wait = settle_s - (now - lacking_since) if lacking_since is not None else min(settle_s, 1.0)
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), timeout=max(0.0, wait))
                except asyncio.TimeoutError:
                    pass
            return True
        finally:
            if not watched:
                self._order_events.pop(tag, None)

    async def _never_placed(self, trade: Trade, tag: str, apart_s: float) -> bool:
        text = f"never placed: two order-book reads {apart_s:.1f} s apart have no order tagged {tag}"
        record = await self.store.db.write(lambda db: Store.move_order(
            db, self._tags[tag].id, self.now_ms(), was=OrderStatus.IN_DOUBT, status=OrderStatus.FAILED, text=text))
        self._remember(record)
        if record.status != OrderStatus.FAILED:  # its news arrived during the last read
            return True
        self._settle(tag)
        log.warning("order in doubt was never placed", extra={"trade_id": trade.id, "tag": tag})
        return False

    async def exit_in_doubt(self, record: OrderRecord, reason: str) -> None:
        """After a restart: an exit the order book does not show. It may yet appear, so it is in doubt —
        reserved in its book, and settled by the trade's resumed exit (`settle_doubt`)."""
        self._remember(await self.store.db.write(lambda db: Store.move_order(
            db, record.id, self.now_ms(), was=record.status, status=OrderStatus.IN_DOUBT, text=reason)))
        await self._place(self._tags[record.tag])
