"""The model broker's exchange: its orders, matched against the prices `ModelBroker` is given.

Every order carries the `Fault` it met when placed. Besides what `place_order` answers (the broker's
part, `service.broker.model`), a `Fault` says:

- `fill`: what the exchange does with an accepted order (a stop: once triggered) — `match` (a
  marketable order fills at the price, a limit beyond it rests), `partial` (`fraction` of it fills at
  once, at the price or its limit, the rest rests until modified; a single unit just matches),
  `rest` (rests until modified), `reject` (the broker's RMS rejects it a moment later);
- `updates`: how its order updates travel — `prompt`, `delayed` (each `delay_s` late) or `lost`;
- `cancel` / `modify`: `ok`, or `loses` — the order fills while the request is on its way: whatever
  was unfilled fills (at its limit price; a stop-market at its trigger, a market order at the price),
  the request is refused with `OrderRefused` (AB4008, as for any finished order), and the fill's
  updates arrive `race_delay_s` after that refusal;
- `listed_after_s`: the order book shows it only this long after it was placed — a broker whose book
  lags its order entry;
- `unreadable_s`: for this long after it was placed, the order is reported with a status text the
  adapter could not read (`OrderStatus.UNRECOGNISED`); then its real status follows.

Stop orders (`STOPLOSS_LIMIT`, `STOPLOSS_MARKET`) wait as "trigger pending" until the price reaches
their trigger (SELL: ltp ≤ trigger, BUY: ltp ≥ trigger; already reached when placed: at once), then
work as "open" LIMIT / MARKET orders, keeping their kind as the broker's book does. A triggered
stop-limit the price has run past rests until the price comes back or it is modified; a modified
stop that had triggered stays triggered. Held orders (`fill="rest"`) trigger but do not fill.

Matching: an order fills whole at the ltp once it is marketable there (a limit: the ltp at or better
than its price), gaps included. Prices are integer paise. Every state of every order is appended to `journal` and sent on the order-update
stream with its SmartAPI code.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

import msgspec

from service.broker.errors import OrderRefused
from service.broker.model_streams import ModelOrderUpdates
from service.broker.types import BrokerOrder, Fill, OrderKind, OrderRequest, OrderSide, OrderStatus, OrderUpdate

__all__ = ["Fault", "ModelExchange", "ModelOrder"]

# the order-update stream's codes (smartapi-protocol.md, section 4)
CODES = {OrderStatus.OPEN: "AB01", OrderStatus.CANCELLED: "AB02", OrderStatus.REJECTED: "AB03",
         OrderStatus.MODIFIED: "AB04", OrderStatus.COMPLETE: "AB05", OrderStatus.OPEN_PENDING: "AB09",
         OrderStatus.TRIGGER_PENDING: "AB10", OrderStatus.MODIFY_PENDING: "AB11"}
STOPS = frozenset({OrderKind.STOPLOSS_LIMIT, OrderKind.STOPLOSS_MARKET})
_LIMITED = frozenset({OrderKind.LIMIT, OrderKind.STOPLOSS_LIMIT})  # fill only at their price or better


@dataclass(frozen=True)
class Fault:
    placement: Literal["ok", "refused", "rate_limited", "doubt_placed", "doubt_lost"] = "ok"
    fill: Literal["match", "partial", "rest", "reject"] = "match"
    updates: Literal["prompt", "delayed", "lost"] = "prompt"
    cancel: Literal["ok", "loses"] = "ok"
    modify: Literal["ok", "loses"] = "ok"
    fraction: float = 0.5  # partial: the share that fills at once (at least one unit, never all)
    delay_s: float = 0.0  # delayed: how late each update arrives
    race_delay_s: float = 0.05  # a lost cancel/modify: how long after the refusal the fill's updates arrive
    latency_s: float = 0.0  # how long place_order takes to answer (the order is live meanwhile)
    listed_after_s: float = 0.0
    unreadable_s: float = 0.0
    text: str = "rejected by the model broker"


@dataclass
class ModelOrder:
    order: BrokerOrder
    fault: Fault
    listed_at: float  # loop time from which the book shows it
    readable_at: float  # loop time from which its status can be read
    held: bool  # resting whatever the price, until modified
    triggered: bool  # working at the exchange: not a stop, or a stop whose trigger the price reached

    def shown(self, now: float) -> BrokerOrder:
        """The order as the broker reports it at `now`."""
        if now < self.readable_at:
            return msgspec.structs.replace(self.order, status=OrderStatus.UNRECOGNISED)
        return self.order


class ModelExchange:
    def __init__(self, prices: dict[tuple[str, str], int], clock: Callable[[], float], updates: ModelOrderUpdates) -> None:
        self.prices = prices  # the broker's own dict: (exchange, token) -> LTP, paise
        self.clock = clock
        self.journal: list[tuple[float, BrokerOrder]] = []  # every state of every order, in order
        self.orders: dict[str, ModelOrder] = {}  # by order id, oldest first
        self.by_uid: dict[str, str] = {}  # unique order id -> order id
        self.fills: list[Fill] = []
        self.net: dict[tuple[str, str, str], int] = {}  # (exchange, token, product) -> signed units
        self._updates = updates
        self._ids = itertools.count(1)

    def accept(self, request: OrderRequest, fault: Fault, parent_rule: str = "") -> ModelOrder:
        n = next(self._ids)
        stop = request.kind in STOPS
        order = BrokerOrder(
            order_id=f"M{n:06d}", unique_order_id=f"model-{n}", tag=request.tag, exchange=request.exchange,
            token=request.token, tradingsymbol=request.tradingsymbol, side=request.side, kind=request.kind,
            product=request.product, variety=request.variety, quantity=request.quantity, filled=0, cancelled=0,
            average_price=0, price=request.price, trigger_price=request.trigger_price,
            status=OrderStatus.TRIGGER_PENDING if stop else OrderStatus.OPEN, parent_order_id=parent_rule)
        now = self.clock()
        entry = self.orders[order.order_id] = ModelOrder(
            order, fault, now + fault.listed_after_s, now + fault.unreadable_s,
            held=fault.fill == "rest" or (fault.fill == "partial" and request.quantity > 1), triggered=not stop)
        self.by_uid[order.unique_order_id] = order.order_id
        if fault.unreadable_s:
            asyncio.get_running_loop().call_later(fault.unreadable_s, self._emit, entry)
        if fault.fill == "reject":
            self._change(entry, status=OrderStatus.REJECTED, cancelled=order.quantity, text=fault.text)
            return entry
        self._change(entry)
        if entry.triggered:
            self._work(entry)
        else:
            self.match(entry)  # a stop whose trigger the price already reached triggers at once
        return entry

    def modify(self, order_id: str, request: OrderRequest) -> ModelOrder:
        entry = self.live(order_id, "modifyOrder")
        if entry.fault.modify == "loses":
            self._lose_race(entry, "modifyOrder")
        if request.quantity < entry.order.filled:
            raise OrderRefused("quantity below the filled quantity", "AB4010", route="modifyOrder", field="quantity")
        stop = request.kind in STOPS
        if stop and entry.order.kind not in STOPS:
            raise OrderRefused(f"a {entry.order.kind} order cannot be turned into a stop", "AB2000",
                               route="modifyOrder", field="ordertype")
        check_stop(request, "modifyOrder")
        entry.held = False
        entry.triggered = entry.triggered or not stop  # a stop made a plain order works at once
        self._change(entry, status=OrderStatus.MODIFIED, price=request.price, quantity=request.quantity,
                     kind=request.kind, trigger_price=request.trigger_price)
        if request.quantity <= entry.order.filled:  # cut down to what already filled
            self._change(entry, status=OrderStatus.COMPLETE)
        else:
            self._change(entry, status=OrderStatus.OPEN if entry.triggered else OrderStatus.TRIGGER_PENDING)
            self.match(entry)
        return entry

    def cancel(self, order_id: str) -> ModelOrder:
        entry = self.live(order_id, "cancelOrder")
        if entry.fault.cancel == "loses":
            self._lose_race(entry, "cancelOrder")
        self._change(entry, status=OrderStatus.CANCELLED, cancelled=entry.order.quantity - entry.order.filled)
        return entry

    def live(self, order_id: str, route: str) -> ModelOrder:
        """The order, still live; refused (as the broker would) otherwise."""
        entry = self.orders.get(order_id)
        if entry is None:
            raise OrderRefused("Order not found", "AB1007", route=route)
        if entry.order.terminal:
            raise OrderRefused(f"the order is {entry.order.status}", "AB4008", route=route)
        return entry

    def _lose_race(self, entry: ModelOrder, route: str) -> NoReturn:
        """The order filled while `route`'s request was on its way: the broker refuses the request as
        for a finished order, and the fill's updates reach the stream only after that refusal."""
        fault = entry.fault
        if fault.updates != "lost":
            late = max(fault.delay_s if fault.updates == "delayed" else 0.0, fault.race_delay_s)
            entry.fault = dataclasses.replace(fault, updates="delayed", delay_s=late)
        order = entry.order
        if not entry.triggered:
            entry.triggered = True
            self._change(entry, status=OrderStatus.OPEN)
        if order.kind in _LIMITED:
            price = order.price
        elif order.kind is OrderKind.STOPLOSS_MARKET:
            price = order.trigger_price
        else:
            price = self.prices.get((order.exchange, order.token), order.price)
        self._fill(entry, order.quantity - order.filled, price)
        raise OrderRefused(f"the order is {entry.order.status}", "AB4008", route=route)

    # Matching ----------------------------------------------------------------------------------------
    def move(self, exchange: str, token: str) -> None:
        """The instrument's price moved: its live orders meet the new price."""
        for entry in list(self.orders.values()):
            if (entry.order.exchange, entry.order.token) == (exchange, token):
                self.match(entry)

    def _work(self, entry: ModelOrder) -> None:
        """The order works at the exchange (placed, or its stop triggered): its fill fault, then the market."""
        order = entry.order
        if entry.fault.fill == "partial" and order.quantity > 1:
            part = min(order.quantity - 1, max(1, int(order.quantity * entry.fault.fraction)))
            ltp = self.prices.get((order.exchange, order.token))
            reached = ltp is not None and (order.kind not in _LIMITED or _reached(order, ltp))
            self._fill(entry, part, ltp if ltp is not None and reached else order.price)
        elif not entry.held:
            self.match(entry)

    def match(self, entry: ModelOrder) -> None:
        order = entry.order
        ltp = self.prices.get((order.exchange, order.token))
        if ltp is None or order.terminal:
            return
        if not entry.triggered:
            if not (ltp <= order.trigger_price if order.side is OrderSide.SELL else ltp >= order.trigger_price):
                return
            entry.triggered = True
            self._change(entry, status=OrderStatus.OPEN)
            self._work(entry)
            return
        if entry.held or (order.kind in _LIMITED and not _reached(order, ltp)):
            return
        self._fill(entry, order.quantity - order.filled, ltp)

    def _fill(self, entry: ModelOrder, quantity: int, price: int) -> None:
        order = entry.order
        if quantity <= 0:
            return
        filled = order.filled + quantity
        average = round((order.filled * order.average_price + quantity * price) / filled)
        key = (order.exchange, order.token, order.product)
        self.net[key] = self.net.get(key, 0) + (quantity if order.side is OrderSide.BUY else -quantity)
        self.fills.append(Fill(order_id=order.order_id, fill_id=f"F{len(self.fills) + 1}", exchange=order.exchange,
                               tradingsymbol=order.tradingsymbol, side=order.side, quantity=quantity, price=price))
        done = filled >= order.quantity
        self._change(entry, filled=filled, average_price=average,
                     status=OrderStatus.COMPLETE if done else order.status)

    def _change(self, entry: ModelOrder, **changes) -> None:
        entry.order = msgspec.structs.replace(entry.order, **changes) if changes else entry.order
        self.journal.append((self.clock(), entry.order))
        self._emit(entry)

    def _emit(self, entry: ModelOrder) -> None:
        fault = entry.fault
        if fault.updates == "lost":
            return
        order = entry.shown(self.clock())
        update = OrderUpdate(CODES.get(order.status, "AB01"), order)
        loop = asyncio.get_running_loop()
        if fault.updates == "delayed" and fault.delay_s > 0:
            loop.call_later(fault.delay_s, self._updates.push, update)
        else:
            loop.call_soon(self._updates.push, update)


def _reached(order: BrokerOrder, ltp: int) -> bool:
    """Whether a limit order is marketable at `ltp` (SELL: at or above its price, BUY: at or below)."""
    return ltp >= order.price if order.side is OrderSide.SELL else ltp <= order.price


def check_stop(request: OrderRequest, route: str) -> None:
    """Refuse a stop without a trigger (or a stop-limit without a price), as the broker does."""
    if request.kind in STOPS and request.trigger_price <= 0:
        raise OrderRefused(f"Invalid Trigger Price: a {request.kind} order needs a trigger price greater than 0",
                           "AB2000", route=route, field="triggerprice")
    if request.kind is OrderKind.STOPLOSS_LIMIT and request.price <= 0:
        raise OrderRefused("Invalid Price: a STOPLOSS_LIMIT order needs a price greater than 0",
                           "AB2000", route=route, field="price")
