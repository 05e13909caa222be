"""`WatchedBroker`: the paper exchange's order broker, each order's instrument watched before it is sent.

With MARKET_DATA=live every order of every login goes through one of these: placing an order, modifying
one, or creating or modifying a GTT rule first has the relay (`relay.PaperRelay.watch`) subscribe the
market data to the instrument and the paper exchange price it from there, so the order fills at a live
price — never at one the paper exchange made up — and waits until the ticks received so far have
reached the exchange (`caught_up`): an exit a tick fired meets that tick's price there, not the one
before it. A watch that fails refuses the order before it is sent (`OrderRefused`: nothing reached the
exchange). Everything else is the wrapped broker's own.
"""
from __future__ import annotations

from typing import Any

from service.broker import Broker, BrokerError, GttRequest, OrderAck, OrderRefused, OrderRequest, Priority
from service.live_data.relay import PaperRelay

__all__ = ["WatchedBroker"]


class WatchedBroker:
    def __init__(self, broker: Broker, relay: PaperRelay) -> None:
        self.broker = broker
        self.relay = relay

    def __getattr__(self, name: str) -> Any:
        return getattr(self.broker, name)

    def __repr__(self) -> str:
        return f"WatchedBroker({self.broker!r})"

    async def _watch(self, exchange: str, token: str, route: str) -> None:
        try:
            await self.relay.watch([(exchange, token)])
        except BrokerError as exc:
            raise OrderRefused(f"no live price for {exchange}:{token} to fill at ({exc.message}); not sent",
                               route=route) from None
        await self.relay.caught_up()

    async def place_order(self, request: OrderRequest, priority: Priority = Priority.ENTRY) -> OrderAck:
        await self._watch(request.exchange, request.token, "placeOrder")
        return await self.broker.place_order(request, priority)

    async def modify_order(self, order_id: str, request: OrderRequest, priority: Priority = Priority.EXIT) -> OrderAck:
        await self._watch(request.exchange, request.token, "modifyOrder")
        return await self.broker.modify_order(order_id, request, priority)

    async def create_gtt(self, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        await self._watch(request.exchange, request.token, "gttCreateRule")
        return await self.broker.create_gtt(request, priority)

    async def modify_gtt(self, rule_id: str, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        await self._watch(request.exchange, request.token, "gttModifyRule")
        return await self.broker.modify_gtt(rule_id, request, priority)
