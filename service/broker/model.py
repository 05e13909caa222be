"""`ModelBroker`: the broker port in memory, with the faults a real broker has — for tests and what-ifs.

It is the port's second adapter, beside SmartAPI's (as httpx keeps `MockTransport` beside its real
transports): positions, orders with tags, stop orders, GTT rules, fills, rejections, placements that
time out having placed the order or not, order updates that arrive late or never, cancels that lose
the race to a fill. Everything it did is in `journal` (the rules' in `gtt.journal`), so a test can
check what a broker would have seen at every moment. Three parts: the exchange that matches orders
(`service.broker.model_orders`, where the order faults are told), the GTT rules
(`service.broker.model_gtt`, with their own faults) and the two streams (`service.broker.model_streams`).

A placement meets the next `Fault` armed with `arm()` (or what `fault_for(request)` returns), else
none. Its `placement` is what `place_order` answers — `ok` (an ack), `refused` (`OrderRefused`,
nothing placed), `rate_limited` (`RateLimited`, nothing placed), `doubt_placed` (`PlacementUnknown`,
the order is at the broker), `doubt_lost` (`PlacementUnknown`, it is not), after `latency_s`; its
other fields are the exchange's.

`set_price` moves the market: stops it reaches trigger, resting limits it reaches fill, GTT rules it
reaches place their LIMIT orders (untagged, `parent_order_id` = the rule). Prices are integer paise.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NoReturn

from service.broker.errors import OrderRefused, PlacementUnknown, RateLimited
from service.broker.model_gtt import GTT_REFUSED, GttFault, ModelGttBook
from service.broker.model_orders import Fault, ModelExchange, check_stop
from service.broker.model_streams import ModelOrderUpdates, ModelTicks
from service.broker.port import Progress
from service.broker.types import (
    BrokerOrder,
    Candle,
    Fill,
    Funds,
    GttRequest,
    GttRule,
    GttStatus,
    ChargeLeg,
    EstimatedCharges,
    MarginLeg,
    OrderAck,
    OrderKind,
    OrderRequest,
    Position,
    Priority,
    SearchHit,
)
from streams import Tick

__all__ = ["Fault", "GttFault", "ModelBroker", "ModelOrderUpdates", "ModelTicks"]


class ModelBroker:
    def __init__(self, prices: dict[tuple[str, str], int] | None = None, *, cash: int = 10**12,
                 clock: Callable[[], float] | None = None) -> None:
        self.prices: dict[tuple[str, str], int] = dict(prices or {})  # (exchange, token) -> LTP, paise
        self.cash = cash
        self.clock = clock or (lambda: asyncio.get_running_loop().time())
        self.fault_for: Callable[[OrderRequest], Fault | None] = self._next_armed
        self.placements: list[tuple[float, OrderRequest, Fault]] = []  # every place_order call
        self.book_reads: list[tuple[float, str]] = []  # when the order book was read, and for which tag ("" = all)
        self.gtt = ModelGttBook(lambda: self.clock())  # the GTT rules; `gtt.arm(GttFault(...))` for their faults
        self._armed: deque[Fault] = deque()
        self._ticks = ModelTicks()
        self._updates = ModelOrderUpdates()
        self.exchange = ModelExchange(self.prices, lambda: self.clock(), self._updates)
        self.journal: list[tuple[float, BrokerOrder]] = self.exchange.journal  # every state of every order, in order

    # Faults and the market ------------------------------------------------------------------------
    def arm(self, *faults: Fault) -> None:
        """The next placements meet these faults, one each, in order."""
        self._armed.extend(faults)

    def _next_armed(self, request: OrderRequest) -> Fault | None:
        return self._armed.popleft() if self._armed else None

    def set_price(self, exchange: str, token: str, ltp: int, at_ms: int | None = None) -> None:
        """Move the market: orders and GTT rules meet the price, then subscribed streams get the tick."""
        self.prices[(exchange, token)] = ltp
        self.exchange.move(exchange, token)
        self._fire_due(exchange, token)
        stamp = at_ms if at_ms is not None else int(time.time() * 1000)  # the exchange's wall time
        self._ticks.push(Tick(token, exchange, ltp, stamp))

    def orders(self, tag_prefix: str = "") -> list[BrokerOrder]:
        """Every order as it is now (kind, trigger, parent rule and all), listed or not: what the
        broker knows, not what it shows."""
        return [e.order for e in self.exchange.orders.values() if e.order.tag.startswith(tag_prefix)]

    def rules(self) -> list[GttRule]:
        """Every GTT rule as it is now, whatever its status."""
        return self.gtt.rules()

    def net(self, exchange: str, token: str, product: str = "INTRADAY") -> int:
        return self.exchange.net.get((exchange, token, product), 0)

    # The port: session ------------------------------------------------------------------------------
    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # Orders ------------------------------------------------------------------------------------------
    async def place_order(self, request: OrderRequest, priority: Priority = Priority.ENTRY) -> OrderAck:
        fault = self.fault_for(request) or Fault()
        self.placements.append((self.clock(), request, fault))
        if fault.placement == "refused":
            raise OrderRefused(fault.text, "AB4009", route="placeOrder")
        if fault.placement == "rate_limited":
            raise RateLimited("Access denied because of exceeding access rate", route="placeOrder")
        check_stop(request, "placeOrder")
        entry = None if fault.placement == "doubt_lost" else self.exchange.accept(request, fault)
        if fault.latency_s:
            await asyncio.sleep(fault.latency_s)
        if fault.placement in ("doubt_placed", "doubt_lost"):
            raise PlacementUnknown(f"placeOrder timed out and no order tagged {request.tag} was found",
                                   tag=request.tag, route="placeOrder")
        assert entry is not None
        return OrderAck(entry.order.order_id, entry.order.unique_order_id)

    async def modify_order(self, order_id: str, request: OrderRequest, priority: Priority = Priority.EXIT) -> OrderAck:
        entry = self.exchange.modify(order_id, request)
        return OrderAck(order_id, entry.order.unique_order_id)

    async def cancel_order(self, order_id: str, variety: str = "NORMAL", priority: Priority = Priority.EXIT) -> OrderAck:
        entry = self.exchange.cancel(order_id)
        return OrderAck(order_id, entry.order.unique_order_id)

    # GTT rules ---------------------------------------------------------------------------------------
    async def create_gtt(self, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        self.gtt.meet("createRule")
        rule = self.gtt.create(request, self.prices.get((request.exchange, request.token)))
        self._fire_due(request.exchange, request.token)
        return rule.rule_id

    async def modify_gtt(self, rule_id: str, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        fault = self.gtt.meet("modifyRule", rule_id)
        if fault.call == "loses":
            self._gtt_race(rule_id, request.exchange, request.token, fault, "modifyRule")
        self.gtt.modify(rule_id, request, self.prices.get((request.exchange, request.token)))
        self._fire_due(request.exchange, request.token)
        return rule_id

    async def cancel_gtt(self, rule_id: str, exchange: str, token: str, priority: Priority = Priority.EXIT) -> None:
        fault = self.gtt.meet("cancelRule", rule_id)
        if fault.call == "loses":
            self._gtt_race(rule_id, exchange, token, fault, "cancelRule")
        self.gtt.cancel(rule_id, exchange, token)

    async def gtt_rule(self, rule_id: str) -> GttRule | None:
        return self.gtt.rule(rule_id)

    async def gtt_rules(self, statuses: Sequence[GttStatus] = (GttStatus.NEW, GttStatus.ACTIVE)) -> list[GttRule]:
        return self.gtt.rules(statuses)

    def _gtt_race(self, rule_id: str, exchange: str, token: str, fault: GttFault, route: str) -> NoReturn:
        """The rule fired while `route`'s request was on its way: refused, its order's updates after that."""
        rule = self.gtt.waiting(rule_id, exchange, token, route).rule
        self._fire(rule, Fault(updates="delayed", delay_s=fault.delay_s))
        raise OrderRefused(f"GTT rule {rule_id} is {GttStatus.SENT_TO_EXCHANGE}", GTT_REFUSED, route=route)

    def _fire_due(self, exchange: str, token: str) -> None:
        ltp = self.prices.get((exchange, token))
        if ltp is not None:
            for rule in self.gtt.due(exchange, token, ltp):
                self._fire(rule, Fault())

    def _fire(self, rule: GttRule, fault: Fault) -> None:
        """A rule's trigger was reached: its LIMIT order goes to the exchange (untagged, its parent the rule)."""
        request = OrderRequest(exchange=rule.exchange, tradingsymbol=rule.tradingsymbol, token=rule.token,
                               side=rule.side, quantity=rule.quantity, kind=OrderKind.LIMIT, price=rule.price,
                               product=rule.product)
        entry = self.exchange.accept(request, fault, parent_rule=rule.rule_id)
        self.gtt.sent(rule.rule_id, entry.order.order_id)

    # Books -------------------------------------------------------------------------------------------
    def _listed(self) -> list[BrokerOrder]:
        now = self.clock()
        return [e.shown(now) for e in self.exchange.orders.values() if e.listed_at <= now]

    async def order_book(self) -> list[BrokerOrder]:
        self.book_reads.append((self.clock(), ""))
        return self._listed()

    async def order(self, unique_order_id: str) -> BrokerOrder | None:
        entry, now = self.exchange.orders.get(self.exchange.by_uid.get(unique_order_id, "")), self.clock()
        return entry.shown(now) if entry is not None and entry.listed_at <= now else None

    async def find_orders(self, tag: str) -> list[BrokerOrder]:
        self.book_reads.append((self.clock(), tag))
        return [order for order in self._listed() if order.tag == tag]

    async def trade_book(self) -> list[Fill]:
        return list(self.exchange.fills)

    async def positions(self) -> list[Position]:
        rows = []
        for (exchange, token, product), net in self.exchange.net.items():
            ltp = self.prices.get((exchange, token), 0)
            rows.append(Position(exchange=exchange, token=token, tradingsymbol=token, product=product,
                                 net_quantity=net, buy_quantity=max(net, 0), sell_quantity=max(-net, 0),
                                 buy_average=ltp, sell_average=ltp, ltp=ltp, realised=0, unrealised=0))
        return rows

    async def funds(self) -> Funds:
        return Funds(available_cash=self.cash, net=self.cash, utilised=0, realised=0, unrealised=0)

    async def margin(self, legs: Sequence[MarginLeg]) -> int:
        return sum(leg.quantity * (leg.price or self.prices.get((leg.exchange, leg.token), 0)) for leg in legs)

    async def estimate_charges(self, legs: Sequence[ChargeLeg]) -> EstimatedCharges:
        """The model charges Rs 20 an order and nothing else."""
        brokerage = Decimal(20 * len(legs))
        return EstimatedCharges(total=brokerage, components={"brokerage": brokerage})

    # Market data -------------------------------------------------------------------------------------
    async def ltp(self, exchange: str, tradingsymbol: str, token: str) -> int:
        return self.prices[(exchange, token)]

    async def circuit_limits(self, exchange: str, token: str) -> tuple[int, int] | None:
        return None

    async def candles(self, exchange: str, token: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        return []

    async def search(self, exchange: str, text: str) -> list[SearchHit]:
        return []

    async def instrument_master(self, progress: Progress | None = None) -> bytes:
        return b"[]"

    def tick_stream(self) -> ModelTicks:
        return self._ticks

    def order_update_stream(self) -> ModelOrderUpdates:
        return self._updates

