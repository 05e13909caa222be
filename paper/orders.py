"""The paper exchange's fill engine: SmartAPI order semantics over a price source, in memory.

Life of an order: `accept` validates the request (`paper.params`: refusals raise `OrderError` and leave
nothing behind) and books it "open pending"; `settle` runs the RMS checks (lot, tick, circuit, SL-M on
options, funds: the `ledger`'s, by the rules of `paper.positions`) and either rejects it with the
broker's kind of text or sends it to the "exchange": "open" (or "trigger pending" for stop orders),
then matches it.

Matching, on arrival and on every later quote of the instrument:
    MARKET           fills at the ltp
    LIMIT            marketable on arrival (buy: ltp ≤ price, sell: ltp ≥ price) → fills at the ltp;
                     resting → fills at its limit price once a quote crosses it (gaps included)
    STOPLOSS_*       "trigger pending" until buy: ltp ≥ trigger / sell: ltp ≤ trigger, then arrives
                     as a LIMIT / MARKET order
    IOC              whatever does not fill on arrival is cancelled
A stop whose trigger is already crossed when it reaches the exchange triggers at once.

Every fill is booked in the engine's `ledger` (`paper.ledger`): the trade book, positions, holdings
and funds are read from there.

The engine is synchronous and does no I/O; time comes from `clock` (epoch seconds, shown in IST).
Every state change is reported to the listeners, in order, after the state has changed; a listener
that raises is recorded in `listener_error` and the engine carries on.

Synchronous refusals of a known order (`OrderError`; the request's own are in `paper.params`):
    AB1013 Order not found                  modify/cancel of an unknown or another client's order
    AB2000 <precise message>                (unverified) modify or cancel of a finished order; a
                                            modification the RMS would reject
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from paper import positions as pos
from paper.errors import OrderError, OrderNotFound
from paper.faults import Fault, FaultPlan
from paper.instruments import Instrument, Universe
from paper.ledger import Ledger
from paper.params import parse_modify, parse_order, parse_variety
from paper.positions import Fill, Funds
from paper.quotes import PriceSource, Quote, quote_or_none
from paper.rms import refusal
from paper.rows import Order, order_from_row, order_row, stamp
from paper.vocabulary import STOP_TYPES

__all__ = [
    "OrderEngine", "Order", "OrderEvent", "EngineState", "LIVE_STATUSES", "parse_order",
    "order_row", "order_from_row",
]

IST = ZoneInfo("Asia/Kolkata")
LIVE_STATUSES = ("open pending", "open", "trigger pending")  # can still fill or be cancelled
WORKING = ("open", "trigger pending")  # at the exchange: modifiable, matched, blocking margin


@dataclass(frozen=True, slots=True)
class OrderEvent:
    clientcode: str
    status: str
    row: dict[str, Any]  # the full order-book row after the change
    fill: dict[str, str] | None = None  # the trade-book row when the change is a fill
    push_after_s: float = 0.0  # how long the order-update socket holds this change back (`cancel_loses`)


@dataclass(frozen=True, slots=True)
class EngineState:
    orders: tuple[tuple[str, dict[str, Any]], ...]  # (clientcode, order-book row), in placement order
    trades: tuple[tuple[str, dict[str, str]], ...]  # (clientcode, trade-book row), in fill order
    sequence: int
    fill_sequence: int
    held: tuple[str, ...] = ()  # orders an "open" fault keeps resting: not visible in the rows
    armed: tuple[tuple[str, Fault], ...] = ()  # order faults attached but not applied yet


class OrderEngine:
    def __init__(
        self, universe: Universe, prices: PriceSource, *, clock: Callable[[], float], opening_cash: Callable[[str], int]
    ) -> None:
        self.universe = universe
        self.prices = prices
        self.clock = clock
        self.faults = FaultPlan()
        self.ledger = Ledger(universe, prices, opening_cash)
        self._listeners: list[Callable[[OrderEvent], None]] = []
        self.listener_error: BaseException | None = None  # the last exception a listener raised
        self._orders: dict[str, Order] = {}
        self._working_ids: dict[str, None] = {}  # orders at the exchange, in placement order
        self._by_uid: dict[str, str] = {}
        self._sequence = 0
        self._fill_sequence = 0
        self._unlisted: dict[str, float] = {}  # orderid -> clock time until which the books leave it out

    def add_listener(self, fn: Callable[[OrderEvent], None]) -> None:
        self._listeners.append(fn)

    # Placing, modifying, cancelling -----------------------------------------------------------------
    def accept(self, clientcode: str, params: Mapping[str, Any], *, parent: str = "") -> Order:
        """Book a placement "open pending"; `parent` is the GTT rule placing it, where one is."""
        fields = parse_order(params, self.universe)
        self._sequence += 1
        orderid = f"{self._now():%y%m%d}{self._sequence:09d}"
        order = Order(orderid, str(uuid.uuid4()), clientcode, **fields, fault=self.faults.take_order(),
                      parentorderid=parent)
        self._by_uid[order.uniqueorderid] = orderid
        self._store(order)
        return order

    def settle(self, orderid: str) -> None:
        """RMS, then the exchange. A no-op unless the order is still "open pending" (e.g. cancelled first)."""
        order = self._orders.get(orderid)
        if order is None or order.status != "open pending":
            return
        quote = self._quote(order.exchange, order.symboltoken)
        reason = self._refusal(order, quote) or self._funds_shortfall(order)
        fault = order.fault
        if reason is None and fault is not None and fault.kind == "reject":
            reason = fault.text
        if reason is not None:
            self._store(replace(order, status="rejected", text=reason, fault=None))
            return
        now = self._now()
        order = self._store(replace(
            order, status="trigger pending" if order.ordertype in STOP_TYPES else "open",
            exchangeorderid=f"{1_100_000_000_000_000 + self._sequence_of(order)}", exchtime=stamp(now),
            held=fault is not None and fault.kind == "open",
            fault=fault if fault is not None and fault.kind in ("partial", "cancel_loses") else None,
        ))
        self._match(order, quote, arriving=True)

    def place(self, clientcode: str, params: Mapping[str, Any], *, parent: str = "") -> Order:
        order = self.accept(clientcode, params, parent=parent)
        self.settle(order.orderid)
        return self._orders[order.orderid]

    def modify(self, clientcode: str, params: Mapping[str, Any]) -> Order:
        order = self._own(clientcode, params.get("orderid"))
        changes = parse_modify(params, order)
        if order.status not in WORKING:
            raise OrderError("AB2000", f"Order {order.orderid} is {order.status} and can no longer be modified", "orderid")
        candidate = replace(order, **changes, held=False, fault=order.fault if _loses_cancel(order) else None)
        if candidate.quantity < order.filledshares:
            raise OrderError("AB2000", f"Invalid Quantity: {candidate.quantity} is less than the "
                             f"{order.filledshares} already filled", "quantity")
        # at the exchange a triggered stop is a plain order: it never goes back to waiting for its trigger
        keep_trigger = candidate.ordertype in STOP_TYPES and (order.triggered or order.filledshares > 0)
        candidate = replace(candidate, triggered=keep_trigger)
        quote = self._quote(order.exchange, order.symboltoken)
        reason = self._refusal(candidate, quote) or self._funds_shortfall(candidate, replacing=order.orderid)
        if reason is not None:
            raise OrderError("AB2000", reason)
        self._store(replace(candidate, status="modified", text=""))
        working = "trigger pending" if candidate.ordertype in STOP_TYPES and not keep_trigger else "open"
        if candidate.unfilled == 0:  # cut down to what already filled
            working = "complete"
        order = self._store(replace(candidate, status=working))
        self._match(order, quote, arriving=True)
        return self._orders[order.orderid]

    def cancel(self, clientcode: str, orderid: str, variety: str) -> Order:
        order = self._own(clientcode, orderid)
        parse_variety({"variety": variety})
        if _loses_cancel(order) and order.status in LIVE_STATUSES:
            order = self._fill_before_cancel(order)
        if order.status not in LIVE_STATUSES:
            raise OrderError("AB2000", f"Order {order.orderid} is {order.status} and can no longer be cancelled", "orderid")
        return self._store(replace(order, status="cancelled", cancelsize=order.unfilled, fault=None, held=False))

    def _fill_before_cancel(self, order: Order) -> Order:
        """The `cancel_loses` fault: the rest of the order fills just before the cancel reaches the
        exchange, and the fill's push lags behind the cancel's reply (see `paper.faults.Fault`)."""
        assert order.fault is not None
        delay = order.fault.update_after_s
        if order.status == "open pending":
            self.settle(order.orderid)
            order = self._orders[order.orderid]
            if order.status not in WORKING:
                return order
        quote = self._quote(order.exchange, order.symboltoken)
        price = order.price if order.ordertype in ("LIMIT", "STOPLOSS_LIMIT") else quote.ltp if quote else None
        if price is None:
            return order
        # a waiting stop triggers on the way: one change, pushed with the fill
        triggered = order.triggered or order.status == "trigger pending"
        return self._fill(replace(order, status="open", triggered=triggered, fault=None, held=False), price, delay)

    def on_quotes(self, quotes: Iterable[Quote]) -> None:
        working: dict[tuple[str, str], list[str]] = {}
        for order in map(self._orders.__getitem__, self._working_ids):
            if not order.held:
                working.setdefault((order.exchange, order.symboltoken), []).append(order.orderid)
        if not working:
            return
        for quote in quotes:
            for orderid in working.get((quote.exchange, quote.token), ()):
                self._match(self._orders[orderid], quote, arriving=False)

    # Matching ------------------------------------------------------------------------------------------
    def _match(self, order: Order, quote: Quote | None, *, arriving: bool) -> None:
        if quote is None or order.held or order.status not in WORKING:
            return
        if order.status == "trigger pending":
            if not (quote.ltp >= order.triggerprice if order.is_buy else quote.ltp <= order.triggerprice):
                return
            order = self._store(replace(order, status="open", triggered=True))
            arriving = True
        price = self._fill_price(order, quote.ltp, arriving)
        if price is not None:
            order = self._fill(order, price)
        if arriving and order.duration == "IOC" and order.status == "open" and order.unfilled > 0:
            self._store(replace(order, status="cancelled", cancelsize=order.unfilled, held=False))

    @staticmethod
    def _fill_price(order: Order, ltp: int, arriving: bool) -> int | None:
        if order.ordertype in ("MARKET", "STOPLOSS_MARKET"):
            return ltp
        marketable = ltp <= order.price if order.is_buy else ltp >= order.price
        if not marketable:
            return None
        return ltp if arriving else order.price

    def _fill(self, order: Order, price: int, push_after_s: float = 0.0) -> Order:
        quantity, fault, held = order.unfilled, order.fault, order.held
        if fault is not None and fault.kind == "partial":
            lot = self._instrument(order).lotsize
            quantity = min(quantity, int(order.quantity * fault.fraction) // lot * lot)
            fault, held = None, order.ordertype in ("MARKET", "STOPLOSS_MARKET")
        if quantity <= 0:
            return self._store(replace(order, fault=fault, held=held))
        self._fill_sequence += 1
        now = self._now()
        fill = Fill(order.clientcode, order.orderid, f"{50_000_000 + self._fill_sequence}", order.exchange,
                    order.symboltoken, order.tradingsymbol, order.producttype, order.transactiontype, price,
                    quantity, f"{now:%H:%M:%S}")
        self.ledger.book(fill)
        filled = order.filledshares + quantity
        return self._store(replace(
            order, status="complete" if filled == order.quantity else "open", filledshares=filled,
            filledvalue=order.filledvalue + price * quantity, fillid=fill.fillid, filltime=fill.filltime,
            fault=fault, held=held,
        ), fill, push_after_s)

    # RMS ---------------------------------------------------------------------------------------------------
    def _refusal(self, order: Order, quote: Quote | None) -> str | None:
        return refusal(order, self._instrument(order), quote)

    def _funds_shortfall(self, order: Order, replacing: str | None = None) -> str | None:
        pending = [o for o in self._working(order.clientcode) if o.orderid != replacing]
        before = self.ledger.funds(order.clientcode, pending)
        after = self.ledger.funds(order.clientcode, sorted([*pending, order], key=lambda o: o.orderid))
        required = after.utiliseddebits - before.utiliseddebits
        if required <= before.net:
            return None
        return (f"Your order has been rejected due to Insufficient Funds. Available funds - Rs. "
                f"{pos.paise_text(before.net)} . You require Rs. {pos.paise_text(required)} funds to execute this order.")

    def _working(self, clientcode: str) -> list[Order]:
        return [o for o in map(self._orders.__getitem__, self._working_ids) if o.clientcode == clientcode]

    # Books ---------------------------------------------------------------------------------------------------
    def unlist(self, orderid: str, seconds: float) -> None:
        """Leave an order out of the order book and its details for `seconds` (a lagging book)."""
        self._unlisted[orderid] = self.clock() + seconds

    def _listed(self, order: Order) -> bool:
        until = self._unlisted.get(order.orderid)
        if until is None:
            return True
        if self.clock() < until:
            return False
        del self._unlisted[order.orderid]
        return True

    def order_book(self, clientcode: str) -> list[dict[str, Any]]:
        return [self._row(o) for o in self._orders.values() if o.clientcode == clientcode and self._listed(o)]

    def order_details(self, clientcode: str, uniqueorderid: str) -> dict[str, Any] | None:
        order = self._orders.get(self._by_uid.get(uniqueorderid, ""))
        listed = order is not None and order.clientcode == clientcode and self._listed(order)
        return self._row(order) if listed else None

    def find_by_tag(self, clientcode: str, ordertag: str) -> list[dict[str, Any]]:
        return [row for row in self.order_book(clientcode) if ordertag and row["ordertag"] == ordertag]

    def order(self, orderid: str) -> Order | None:
        return self._orders.get(orderid)

    def trade_book(self, clientcode: str) -> list[dict[str, str]]:
        return self.ledger.trade_book(clientcode)

    def positions(self, clientcode: str) -> list[dict[str, str]]:
        return self.ledger.positions(clientcode)

    def holdings(self, clientcode: str) -> list[dict[str, Any]]:
        return self.ledger.holdings(clientcode)

    def funds(self, clientcode: str) -> Funds:
        return self.ledger.funds(clientcode, self._working(clientcode))

    def rms(self, clientcode: str) -> dict[str, str]:
        return pos.rms_row(self.funds(clientcode))

    # Persistence ------------------------------------------------------------------------------------------
    def export(self) -> EngineState:
        return EngineState(
            tuple((o.clientcode, self._row(o)) for o in self._orders.values()),
            tuple((f.clientcode, self.ledger.trade_row(f)) for f in self.ledger.fills),
            self._sequence, self._fill_sequence,
            tuple(o.orderid for o in self._orders.values() if o.held),
            tuple((o.orderid, o.fault) for o in self._orders.values() if o.fault is not None),
        )

    def restore(self, state: EngineState) -> None:
        self.restore_rows(state.orders, state.trades)
        self._sequence = max(self._sequence, state.sequence)
        self._fill_sequence = max(self._fill_sequence, state.fill_sequence)
        for orderid in state.held:
            self._orders[orderid] = replace(self._orders[orderid], held=True)
        for orderid, fault in state.armed:
            self._orders[orderid] = replace(self._orders[orderid], fault=fault)

    def restore_rows(self, orders: Iterable[tuple[str, Mapping[str, Any]]], trades: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Rebuild from stored rows (as emitted to the listeners); positions and funds are folded again."""
        self._orders, self._by_uid, self._working_ids = {}, {}, {}
        self.ledger.clear()
        trades = list(trades)
        values: dict[str, int] = {}
        for _, row in trades:
            values[str(row["orderid"])] = values.get(str(row["orderid"]), 0) + pos.paise_of(row["fillprice"]) * int(row["fillsize"])
        for clientcode, row in orders:
            order = order_from_row(clientcode, row, values.get(str(row["orderid"]), 0))
            self._orders[order.orderid] = order
            self._by_uid[order.uniqueorderid] = order.orderid
            if order.status in WORKING:
                self._working_ids[order.orderid] = None
        for clientcode, row in trades:
            order = self._orders[str(row["orderid"])]
            fill = Fill(clientcode, order.orderid, str(row["fillid"]), order.exchange, order.symboltoken,
                        order.tradingsymbol, order.producttype, order.transactiontype, pos.paise_of(row["fillprice"]),
                        int(row["fillsize"]), str(row["filltime"]))
            self.ledger.book(fill)
        self._sequence = max((self._sequence_of(o) for o in self._orders.values()), default=0)
        self._fill_sequence = max((int(f.fillid) - 50_000_000 for f in self.ledger.fills), default=0)

    # Plumbing ---------------------------------------------------------------------------------------------
    def _store(self, order: Order, fill: Fill | None = None, push_after_s: float = 0.0) -> Order:
        order = replace(order, updatetime=stamp(self._now()))
        self._orders[order.orderid] = order
        if order.status in WORKING:
            self._working_ids[order.orderid] = None
        else:
            self._working_ids.pop(order.orderid, None)
        event = OrderEvent(order.clientcode, order.status, self._row(order), self.ledger.trade_row(fill) if fill else None,
                           push_after_s)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # a failing listener must not leave matching half done
                self.listener_error = exc
        return order

    def _own(self, clientcode: str, orderid: object) -> Order:
        order = self._orders.get(str(orderid or "").strip())
        if order is None or order.clientcode != clientcode:
            raise OrderNotFound(str(orderid))
        return order

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), IST)

    def _quote(self, exchange: str, token: str) -> Quote | None:
        return quote_or_none(self.prices, exchange, token)

    def _instrument(self, order: Order) -> Instrument:
        instrument = self.universe.by_token(order.exchange, order.symboltoken)
        assert instrument is not None, f"{order.exchange}:{order.symboltoken} left the universe"
        return instrument

    @staticmethod
    def _sequence_of(order: Order) -> int:
        return int(order.orderid[6:])

    def _row(self, order: Order) -> dict[str, Any]:
        return order_row(order, self._instrument(order))


def _loses_cancel(order: Order) -> bool:
    return order.fault is not None and order.fault.kind == "cancel_loses"
