"""Trade events as execution writes them — stored (folded into the trade) and then published — and
the callables the parts of execution are given instead of reaching for the `Trader` that owns them.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from service.broker import Broker
from service.store import Store
from service.trades import TradeEvent, TradeRecord

__all__ = ["BrokerFor", "Journal", "Publish", "Spawn"]

Spawn = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task]  # run a named task the owner drains and stops
BrokerFor = Callable[[TradeRecord], Broker]  # the login a trade's orders go through
Publish = Callable[[TradeRecord], None]  # a trade changed (after the change is stored)


class Journal:
    def __init__(self, store: Store, now_ms: Callable[[], int], publish: Publish) -> None:
        self.store = store
        self.now_ms = now_ms
        self.publish = publish

    async def record(self, trade_id: int, kind: str, **data: Any) -> TradeRecord:
        """Store the event `kind` (with `data`, at the clock's time) and publish the trade it leaves."""
        return await self.write(trade_id, TradeEvent(kind=kind, at_ms=self.now_ms(), data=data))

    async def write(self, trade_id: int, *events: TradeEvent) -> TradeRecord:
        """Store `events` in one transaction and publish the trade they leave."""
        trade = await self.store.record(trade_id, *events)
        self.publish(trade)
        return trade
