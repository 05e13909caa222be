"""`ModelBroker`: the broker port in memory, with the faults a real broker has — for tests and what-ifs.

It is the port's second adapter, beside SmartAPI's (as httpx keeps `MockTransport` beside its real
transports): positions, orders with tags, fills, rejections, placements that time out having placed
the order or not, order updates that arrive late or never. Everything it did is in `journal`, so a
test can check what a broker would have seen at every moment.

A placement meets the next `Fault` armed with `arm()` (or what `fault_for(request)` returns), else
none. A `Fault` has one field per concern:

- `placement`: what `place_order` answers — `ok` (an ack), `refused` (`OrderRefused`, nothing
  placed), `rate_limited` (`RateLimited`, nothing placed), `doubt_placed` (`PlacementUnknown`, the
  order is at the broker), `doubt_lost` (`PlacementUnknown`, it is not), after `latency_s`;
- `fill`: what the exchange does with an accepted order — `match` (a marketable order fills at the
  price, a limit beyond it rests), `partial` (`fraction` of it fills, the rest rests until modified;
  a single unit just matches),
  `rest` (rests until modified), `reject` (the broker's RMS rejects it a moment later);
- `updates`: how its order updates travel — `prompt`, `delayed` (each `delay_s` late) or `lost`;
- `listed_after_s`: the order book (and `order()`, `find_orders()`) shows it only this long after it
  was placed — a broker whose book lags its order entry;
- `unreadable_s`: for this long after it was placed, the order is reported with a status text the
  adapter could not read (`OrderStatus.UNRECOGNISED`); then its real status follows.

Prices are integer paise; a resting limit fills when `set_price` moves the market through it.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec
from reactivex import Observable
from reactivex.subject import Subject

from service.broker.errors import OrderRefused, PlacementUnknown, RateLimited
from service.broker.port import Progress
from service.broker.types import (
    BrokerOrder,
    Candle,
    Fill,
    Funds,
    MarginLeg,
    OrderAck,
    OrderKind,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    Position,
    Priority,
    SearchHit,
)
from streams import Tick

__all__ = ["Fault", "ModelBroker", "ModelOrderUpdates", "ModelTicks"]

_CODES = {OrderStatus.OPEN: "AB01", OrderStatus.CANCELLED: "AB02", OrderStatus.REJECTED: "AB03",
          OrderStatus.MODIFIED: "AB04", OrderStatus.COMPLETE: "AB05"}


@dataclass(frozen=True)
class Fault:
    placement: Literal["ok", "refused", "rate_limited", "doubt_placed", "doubt_lost"] = "ok"
    fill: Literal["match", "partial", "rest", "reject"] = "match"
    updates: Literal["prompt", "delayed", "lost"] = "prompt"
    fraction: float = 0.5  # partial: the share that fills at once (at least one unit, never all)
    delay_s: float = 0.0  # delayed: how late each update arrives
    latency_s: float = 0.0  # how long place_order takes to answer (the order is live meanwhile)
    listed_after_s: float = 0.0
    unreadable_s: float = 0.0
    text: str = "rejected by the model broker"


@dataclass
class _Order:
    order: BrokerOrder
    fault: Fault
    listed_at: float  # loop time from which the book shows it
    readable_at: float  # loop time from which its status can be read
    held: bool  # resting whatever the price, until modified

    def shown(self, now: float) -> BrokerOrder:
        """The order as the broker reports it at `now`."""
        if now < self.readable_at:
            return msgspec.structs.replace(self.order, status=OrderStatus.UNRECOGNISED)
        return self.order


class ModelTicks:
    """The tick stream: `ModelBroker.set_price` ticks the instruments subscribed."""

    def __init__(self) -> None:
        self._ticks: Subject = Subject()
        self._events: Subject = Subject()
        self.subscriptions: set[tuple[str, str]] = set()
        self.expect_ticks: Callable[[], bool] = lambda: True  # the port's: this stream never stalls, none asks

    @property
    def ticks(self) -> Observable[Tick]:
        return self._ticks

    @property
    def events(self) -> Observable:
        return self._events

    def subscribe(self, instruments: Iterable[tuple[str, str]]) -> None:
        self.subscriptions.update(instruments)

    def unsubscribe(self, instruments: Iterable[tuple[str, str]]) -> None:
        self.subscriptions.difference_update(instruments)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class ModelOrderUpdates:
    """The order-update stream: every change of an order, unless its fault delays or loses it."""

    def __init__(self) -> None:
        self._updates: Subject = Subject()
        self._events: Subject = Subject()

    @property
    def updates(self) -> Observable[OrderUpdate]:
        return self._updates

    @property
    def events(self) -> Observable:
        return self._events

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class ModelBroker:
    def __init__(self, prices: dict[tuple[str, str], int] | None = None, *, cash: int = 10**12,
                 clock: Callable[[], float] | None = None) -> None:
        self.prices: dict[tuple[str, str], int] = dict(prices or {})  # (exchange, token) -> LTP, paise
        self.cash = cash
        self.clock = clock or (lambda: asyncio.get_running_loop().time())
        self.fault_for: Callable[[OrderRequest], Fault | None] = self._next_armed
        self.journal: list[tuple[float, BrokerOrder]] = []  # every state of every order, in order
        self.placements: list[tuple[float, OrderRequest, Fault]] = []  # every place_order call
        self.book_reads: list[tuple[float, str]] = []  # when the order book was read, and for which tag ("" = all)
        self._armed: deque[Fault] = deque()
        self._orders: dict[str, _Order] = {}
        self._by_uid: dict[str, str] = {}
        self._fills: list[Fill] = []
        self._net: dict[tuple[str, str, str], int] = {}
        self._ids = itertools.count(1)
        self._ticks = ModelTicks()
        self._updates = ModelOrderUpdates()

    # Faults and the market ------------------------------------------------------------------------
    def arm(self, *faults: Fault) -> None:
        """The next placements meet these faults, one each, in order."""
        self._armed.extend(faults)

    def _next_armed(self, request: OrderRequest) -> Fault | None:
        return self._armed.popleft() if self._armed else None

    def set_price(self, exchange: str, token: str, ltp: int, at_ms: int | None = None) -> None:
        """Move the market: subscribed streams get the tick, resting orders that it reaches fill."""
        self.prices[(exchange, token)] = ltp
        for entry in list(self._orders.values()):
            order = entry.order
            if (order.exchange, order.token) == (exchange, token) and not entry.held and not order.terminal:
                self._match(entry)
        if (exchange, token) in self._ticks.subscriptions:
            stamp = at_ms if at_ms is not None else int(time.time() * 1000)  # the exchange's wall time
            self._ticks._ticks.on_next(Tick(token, exchange, ltp, stamp))

    def orders(self, tag_prefix: str = "") -> list[BrokerOrder]:
        """Every order as it is now, listed or not (what the broker knows, not what it shows)."""
        return [e.order for e in self._orders.values() if e.order.tag.startswith(tag_prefix)]

    def net(self, exchange: str, token: str, product: str = "INTRADAY") -> int:
        return self._net.get((exchange, token, product), 0)

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
        entry = None if fault.placement == "doubt_lost" else self._accept(request, fault)
        if fault.latency_s:
            await asyncio.sleep(fault.latency_s)
        if fault.placement in ("doubt_placed", "doubt_lost"):
            raise PlacementUnknown(f"placeOrder timed out and no order tagged {request.tag} was found",
                                   tag=request.tag, route="placeOrder")
        assert entry is not None
        return OrderAck(entry.order.order_id, entry.order.unique_order_id)

    def _accept(self, request: OrderRequest, fault: Fault) -> _Order:
        n = next(self._ids)
        order = BrokerOrder(
            order_id=f"M{n:06d}", unique_order_id=f"model-{n}", tag=request.tag, exchange=request.exchange,
            token=request.token, tradingsymbol=request.tradingsymbol, side=request.side, kind=request.kind,
            product=request.product, variety=request.variety, quantity=request.quantity, filled=0, cancelled=0,
            average_price=0, price=request.price, trigger_price=request.trigger_price, status=OrderStatus.OPEN)
        now = self.clock()
        entry = self._orders[order.order_id] = _Order(order, fault, now + fault.listed_after_s, now + fault.unreadable_s,
                                                      held=fault.fill == "rest" or (fault.fill == "partial" and request.quantity > 1))
        self._by_uid[order.unique_order_id] = order.order_id
        if fault.unreadable_s:
            asyncio.get_running_loop().call_later(fault.unreadable_s, self._emit, entry)
        if fault.fill == "reject":
            self._change(entry, status=OrderStatus.REJECTED, cancelled=order.quantity, text=fault.text)
            return entry
        self._change(entry)
        if fault.fill == "partial" and order.quantity > 1:
            part = min(order.quantity - 1, max(1, int(order.quantity * fault.fraction)))
            self._fill(entry, part, self.prices.get((order.exchange, order.token), order.price))
        elif not entry.held:
            self._match(entry)
        return entry

    async def modify_order(self, order_id: str, request: OrderRequest, priority: Priority = Priority.EXIT) -> OrderAck:
        entry = self._live(order_id, "modifyOrder")
        if request.quantity < entry.order.filled:
            raise OrderRefused("quantity below the filled quantity", "AB4010", route="modifyOrder", field="quantity")
        entry.held = False
        self._change(entry, status=OrderStatus.MODIFIED, price=request.price, quantity=request.quantity,
                     kind=request.kind)
        self._match(entry)
        return OrderAck(order_id, entry.order.unique_order_id)

    async def cancel_order(self, order_id: str, variety: str = "NORMAL", priority: Priority = Priority.EXIT) -> OrderAck:
        entry = self._live(order_id, "cancelOrder")
        self._change(entry, status=OrderStatus.CANCELLED, cancelled=entry.order.quantity - entry.order.filled)
        return OrderAck(order_id, entry.order.unique_order_id)

    def _live(self, order_id: str, route: str) -> _Order:
        entry = self._orders.get(order_id)
        if entry is None:
            raise OrderRefused("Order not found", "AB1007", route=route)
        if entry.order.terminal:
            raise OrderRefused(f"the order is {entry.order.status}", "AB4008", route=route)
        return entry

    def _match(self, entry: _Order) -> None:
        order = entry.order
        ltp = self.prices.get((order.exchange, order.token))
        if ltp is None or order.terminal:
            return
        if order.kind is OrderKind.LIMIT:
            reached = ltp >= order.price if order.side is OrderSide.SELL else ltp <= order.price
            if not reached:
                return
        self._fill(entry, order.quantity - order.filled, ltp)

    def _fill(self, entry: _Order, quantity: int, price: int) -> None:
        order = entry.order
        if quantity <= 0:
            return
        filled = order.filled + quantity
        average = round((order.filled * order.average_price + quantity * price) / filled)
        key = (order.exchange, order.token, order.product)
        self._net[key] = self._net.get(key, 0) + (quantity if order.side is OrderSide.BUY else -quantity)
        self._fills.append(Fill(order_id=order.order_id, fill_id=f"F{len(self._fills) + 1}", exchange=order.exchange,
                                tradingsymbol=order.tradingsymbol, side=order.side, quantity=quantity, price=price))
        done = filled >= order.quantity
        self._change(entry, filled=filled, average_price=average,
                     status=OrderStatus.COMPLETE if done else order.status)

    def _change(self, entry: _Order, **changes) -> None:
        entry.order = msgspec.structs.replace(entry.order, **changes) if changes else entry.order
        self.journal.append((self.clock(), entry.order))
        self._emit(entry)

    def _emit(self, entry: _Order) -> None:
        fault = entry.fault
        if fault.updates == "lost":
            return
        order = entry.shown(self.clock())
        update = OrderUpdate(_CODES.get(order.status, "AB01"), order)
        loop = asyncio.get_running_loop()
        if fault.updates == "delayed" and fault.delay_s > 0:
            loop.call_later(fault.delay_s, self._updates._updates.on_next, update)
        else:
            loop.call_soon(self._updates._updates.on_next, update)

    # Books -------------------------------------------------------------------------------------------
    def _listed(self) -> list[BrokerOrder]:
        now = self.clock()
        return [e.shown(now) for e in self._orders.values() if e.listed_at <= now]

    async def order_book(self) -> list[BrokerOrder]:
        self.book_reads.append((self.clock(), ""))
        return self._listed()

    async def order(self, unique_order_id: str) -> BrokerOrder | None:
        entry, now = self._orders.get(self._by_uid.get(unique_order_id, "")), self.clock()
        return entry.shown(now) if entry is not None and entry.listed_at <= now else None

    async def find_orders(self, tag: str) -> list[BrokerOrder]:
        self.book_reads.append((self.clock(), tag))
        return [order for order in self._listed() if order.tag == tag]

    async def trade_book(self) -> list[Fill]:
        return list(self._fills)

    async def positions(self) -> list[Position]:
        rows = []
        for (exchange, token, product), net in self._net.items():
            ltp = self.prices.get((exchange, token), 0)
            rows.append(Position(exchange=exchange, token=token, tradingsymbol=token, product=product,
                                 net_quantity=net, buy_quantity=max(net, 0), sell_quantity=max(-net, 0),
                                 buy_average=ltp, sell_average=ltp, ltp=ltp, realised=0, unrealised=0))
        return rows

    async def funds(self) -> Funds:
        return Funds(available_cash=self.cash, net=self.cash, utilised=0, realised=0, unrealised=0)

    async def margin(self, legs: Sequence[MarginLeg]) -> int:
        return sum(leg.quantity * (leg.price or self.prices.get((leg.exchange, leg.token), 0)) for leg in legs)

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
