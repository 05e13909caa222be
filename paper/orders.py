"""The paper exchange's fill engine: SmartAPI order semantics over a price source, in memory.

Life of an order: `accept` validates the request (refusals raise `OrderError` and leave nothing
behind) and books it "open pending"; `settle` runs the RMS checks (lot, tick, circuit, SL-M on
options, funds: see `paper.positions`) and either rejects it with the broker's kind of text or sends
it to the "exchange": "open" (or "trigger pending" for stop orders), then matches it.

Matching, on arrival and on every later quote of the instrument:
    MARKET           fills at the ltp
    LIMIT            marketable on arrival (buy: ltp ≤ price, sell: ltp ≥ price) → fills at the ltp;
                     resting → fills at its limit price once a quote crosses it (gaps included)
    STOPLOSS_*       "trigger pending" until buy: ltp ≥ trigger / sell: ltp ≤ trigger, then arrives
                     as a LIMIT / MARKET order
    IOC              whatever does not fill on arrival is cancelled
A stop whose trigger is already crossed when it reaches the exchange triggers at once.

The engine is synchronous and does no I/O; time comes from `clock` (epoch seconds, shown in IST).
Every state change is reported to the listeners, in order, after the state has changed; a listener
that raises is recorded in `listener_error` and the engine carries on.

Synchronous refusals (`OrderError`; codes from the SmartAPI table, "unverified" = our choice):
    AB1008 Invalid Order Variety            unknown variety; STOPLOSS_* without STOPLOSS (unverified)
    AB2002 ROBO order is block              variety ROBO
    AB1009 Symbol Not Found                 unknown exchange/token, symbol not the token's, an index
    AB4018 Symbol token cannot be empty     no symboltoken
    AB1012 Invalid Product Type             unknown product; BO outside ROBO; DELIVERY on F&O;
                                            CARRYFORWARD on cash (unverified)
    AB4008 ordertag length should be less than 20 characters
    AB1013 Order not found                  modify/cancel of an unknown or another client's order
    AB2000 <precise message>                (unverified) bad transactiontype / ordertype / duration /
                                            quantity / price / triggerprice; modify or cancel of a
                                            finished order; a modification the RMS would reject
Variety AMO is accepted and handled like NORMAL (the paper market is always open).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from paper import positions as pos
from paper.errors import OrderError, OrderNotFound
from paper.faults import Fault, FaultPlan
from paper.instruments import Instrument, Universe
from paper.positions import Fill, Funds, Position
from paper.prices import Quote

__all__ = [
    "OrderEngine", "Order", "OrderEvent", "EngineState", "PriceSource", "LIVE_STATUSES", "parse_order",
    "order_row", "order_from_row",
]

IST = ZoneInfo("Asia/Kolkata")
VARIETIES = ("NORMAL", "STOPLOSS", "AMO", "ROBO")
SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT", "STOPLOSS_LIMIT", "STOPLOSS_MARKET")
STOP_TYPES = ("STOPLOSS_LIMIT", "STOPLOSS_MARKET")
PRODUCTS = ("DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO")
DURATIONS = ("DAY", "IOC")
LIVE_STATUSES = ("open pending", "open", "trigger pending")  # can still fill or be cancelled
WORKING = ("open", "trigger pending")  # at the exchange: modifiable, matched, blocking margin


class PriceSource(Protocol):
    def quote(self, exchange: str, token: str) -> Quote: ...


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the engine holds it: prices in paise, times already formatted in IST."""

    orderid: str
    uniqueorderid: str
    clientcode: str
    variety: str
    exchange: str
    symboltoken: str
    tradingsymbol: str
    transactiontype: str
    ordertype: str
    producttype: str
    duration: str
    price: int
    triggerprice: int
    quantity: int
    disclosedquantity: int = 0
    squareoff: int = 0
    stoploss: int = 0
    trailingstoploss: int = 0
    ordertag: str = ""
    status: str = "open pending"
    text: str = ""
    filledshares: int = 0
    filledvalue: int = 0  # Σ fill price × size, paise
    cancelsize: int = 0
    triggered: bool = False
    held: bool = False  # a fault keeps it resting until it is modified
    fault: Fault | None = None  # an order fault not yet applied
    exchangeorderid: str = ""
    updatetime: str = ""
    exchtime: str = ""
    fillid: str = ""
    filltime: str = ""

    @property
    def unfilled(self) -> int:
        return self.quantity - self.filledshares

    @property
    def is_buy(self) -> bool:
        return self.transactiontype == "BUY"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    clientcode: str
    status: str
    row: dict[str, Any]  # the full order-book row after the change
    fill: dict[str, str] | None = None  # the trade-book row when the change is a fill


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
        self.opening_cash = opening_cash
        self.faults = FaultPlan()
        self._listeners: list[Callable[[OrderEvent], None]] = []
        self.listener_error: BaseException | None = None  # the last exception a listener raised
        self._orders: dict[str, Order] = {}
        self._working_ids: dict[str, None] = {}  # orders at the exchange, in placement order
        self._by_uid: dict[str, str] = {}
        self._fills: list[Fill] = []
        self._positions: dict[pos.PositionKey, Position] = {}
        self._sequence = 0
        self._fill_sequence = 0

    def add_listener(self, fn: Callable[[OrderEvent], None]) -> None:
        self._listeners.append(fn)

    # Placing, modifying, cancelling -----------------------------------------------------------------
    def accept(self, clientcode: str, params: Mapping[str, Any]) -> Order:
        fields = parse_order(params, self.universe)
        self._sequence += 1
        orderid = f"{self._now():%y%m%d}{self._sequence:09d}"
        order = Order(orderid, str(uuid.uuid4()), clientcode, **fields, fault=self.faults.take_order())
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
            exchangeorderid=f"{1_100_000_000_000_000 + self._sequence_of(order)}", exchtime=_stamp(now),
            held=fault is not None and fault.kind == "open",
            fault=fault if fault is not None and fault.kind == "partial" else None,
        ))
        self._match(order, quote, arriving=True)

    def place(self, clientcode: str, params: Mapping[str, Any]) -> Order:
        order = self.accept(clientcode, params)
        self.settle(order.orderid)
        return self._orders[order.orderid]

    def modify(self, clientcode: str, params: Mapping[str, Any]) -> Order:
        order = self._own(clientcode, params.get("orderid"))
        changes = parse_modify(params, order)
        if order.status not in WORKING:
            raise OrderError("AB2000", f"Order {order.orderid} is {order.status} and can no longer be modified", "orderid")
        candidate = replace(order, **changes, held=False, fault=None)
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
        _variety({"variety": variety})
        if order.status not in LIVE_STATUSES:
            raise OrderError("AB2000", f"Order {order.orderid} is {order.status} and can no longer be cancelled", "orderid")
        return self._store(replace(order, status="cancelled", cancelsize=order.unfilled, fault=None, held=False))

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

    def _fill(self, order: Order, price: int) -> Order:
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
        self._fills.append(fill)
        pos.apply_fill(self._positions, fill)
        filled = order.filledshares + quantity
        return self._store(replace(
            order, status="complete" if filled == order.quantity else "open", filledshares=filled,
            filledvalue=order.filledvalue + price * quantity, fillid=fill.fillid, filltime=fill.filltime,
            fault=fault, held=held,
        ), fill)

    # RMS ---------------------------------------------------------------------------------------------------
    def _refusal(self, order: Order, quote: Quote | None) -> str | None:
        """Why the exchange/RMS refuses this order regardless of funds, or None."""
        instrument = self._instrument(order)
        if order.quantity % instrument.lotsize:
            return (f"Your order has been rejected as the quantity {order.quantity} is not a multiple of the "
                    f"lot size {instrument.lotsize} for {instrument.symbol}.")
        if order.ordertype == "STOPLOSS_MARKET" and instrument.is_option:
            return ("Your order has been rejected as STOPLOSS_MARKET orders are not allowed for options by the "
                    "exchange. Place a STOPLOSS_LIMIT order instead.")
        priced = [("price", order.price)] if order.ordertype in ("LIMIT", "STOPLOSS_LIMIT") else []
        if order.ordertype in STOP_TYPES:
            priced.append(("trigger price", order.triggerprice))
        for name, value in priced:
            if value % instrument.tick_paise:
                return (f"Your order has been rejected as the {name} {pos.paise_text(value)} is not a multiple of "
                        f"the tick size {pos.paise_text(instrument.tick_paise)}.")
        if quote is None:
            return f"Your order has been rejected as there is no market price for {instrument.symbol}."
        for name, value in priced:
            if quote.upper_circuit > 0 and not quote.lower_circuit <= value <= quote.upper_circuit:
                return (f"Your order has been rejected as the {name} {pos.paise_text(value)} is outside the circuit "
                        f"limits (lower Rs. {pos.paise_text(quote.lower_circuit)}, upper Rs. "
                        f"{pos.paise_text(quote.upper_circuit)}).")
        return None

    def _funds_shortfall(self, order: Order, replacing: str | None = None) -> str | None:
        pending = [o for o in self._working(order.clientcode) if o.orderid != replacing]
        before = self._funds(order.clientcode, pending)
        after = self._funds(order.clientcode, sorted([*pending, order], key=lambda o: o.orderid))
        required = after.utiliseddebits - before.utiliseddebits
        if required <= before.net:
            return None
        return (f"Your order has been rejected due to Insufficient Funds. Available funds - Rs. "
                f"{pos.paise_text(before.net)} . You require Rs. {pos.paise_text(required)} funds to execute this order.")

    def _working(self, clientcode: str) -> list[Order]:
        return [o for o in map(self._orders.__getitem__, self._working_ids) if o.clientcode == clientcode]

    def _funds(self, clientcode: str, pending: list[Order]) -> Funds:
        realised = unrealised = 0
        utilised = dict.fromkeys(pos.CATEGORIES, 0)
        for key, position in self._positions.items():
            if key[0] != clientcode:
                continue
            instrument = self._instrument_at(position.exchange, position.symboltoken)
            ltp = self._mark(position)
            realised += position.realised()
            unrealised += position.unrealised(ltp)
            category, amount = pos.margin(instrument, position.producttype, position.netqty, ltp)
            utilised[category] += amount
        groups: dict[pos.PositionKey, list[Order]] = {}
        for order in pending:
            groups.setdefault((clientcode, order.exchange, order.symboltoken, order.producttype), []).append(order)
        for key, orders in groups.items():
            position = self._positions.get(key)
            instrument = self._instrument(orders[0])
            sides = [(o.transactiontype, o.unfilled, self._margin_price(o)) for o in orders]
            for category, amount in pos.pending_margin(instrument, key[3], position.netqty if position else 0, sides).items():
                utilised[category] += amount
        return Funds(self.opening_cash(clientcode), realised, unrealised, utilised)

    def _margin_price(self, order: Order) -> int:
        if order.ordertype in ("LIMIT", "STOPLOSS_LIMIT"):
            return order.price
        if order.ordertype == "STOPLOSS_MARKET":
            return order.triggerprice
        quote = self._quote(order.exchange, order.symboltoken)
        return quote.ltp if quote is not None else 0

    # Books ---------------------------------------------------------------------------------------------------
    def order_book(self, clientcode: str) -> list[dict[str, Any]]:
        return [self._row(o) for o in self._orders.values() if o.clientcode == clientcode]

    def order_details(self, clientcode: str, uniqueorderid: str) -> dict[str, Any] | None:
        order = self._orders.get(self._by_uid.get(uniqueorderid, ""))
        return self._row(order) if order is not None and order.clientcode == clientcode else None

    def find_by_tag(self, clientcode: str, ordertag: str) -> list[dict[str, Any]]:
        return [row for row in self.order_book(clientcode) if ordertag and row["ordertag"] == ordertag]

    def order(self, orderid: str) -> Order | None:
        return self._orders.get(orderid)

    def trade_book(self, clientcode: str) -> list[dict[str, str]]:
        return [self._trade_row(f) for f in self._fills if f.clientcode == clientcode]

    def positions(self, clientcode: str) -> list[dict[str, str]]:
        return [
            pos.position_row(p, self._instrument_at(p.exchange, p.symboltoken), self._mark(p), self._close(p))
            for key, p in self._positions.items() if key[0] == clientcode
        ]

    def holdings(self, clientcode: str) -> list[dict[str, Any]]:
        return [
            pos.holding_row(p, self._instrument_at(p.exchange, p.symboltoken), self._mark(p), self._close(p))
            for key, p in self._positions.items()
            if key[0] == clientcode and p.producttype == "DELIVERY" and p.netqty > 0
        ]

    def funds(self, clientcode: str) -> Funds:
        return self._funds(clientcode, self._working(clientcode))

    def rms(self, clientcode: str) -> dict[str, str]:
        return pos.rms_row(self.funds(clientcode))

    # Persistence ------------------------------------------------------------------------------------------
    def export(self) -> EngineState:
        return EngineState(
            tuple((o.clientcode, self._row(o)) for o in self._orders.values()),
            tuple((f.clientcode, self._trade_row(f)) for f in self._fills),
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
        self._orders, self._by_uid, self._fills, self._positions, self._working_ids = {}, {}, [], {}, {}
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
            self._fills.append(fill)
            pos.apply_fill(self._positions, fill)
        self._sequence = max((self._sequence_of(o) for o in self._orders.values()), default=0)
        self._fill_sequence = max((int(f.fillid) - 50_000_000 for f in self._fills), default=0)

    # Plumbing ---------------------------------------------------------------------------------------------
    def _store(self, order: Order, fill: Fill | None = None) -> Order:
        order = replace(order, updatetime=_stamp(self._now()))
        self._orders[order.orderid] = order
        if order.status in WORKING:
            self._working_ids[order.orderid] = None
        else:
            self._working_ids.pop(order.orderid, None)
        event = OrderEvent(order.clientcode, order.status, self._row(order), self._trade_row(fill) if fill else None)
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
        try:
            return self.prices.quote(exchange, token)
        except KeyError:
            return None

    def _mark(self, position: Position) -> int:
        quote = self._quote(position.exchange, position.symboltoken)
        return quote.ltp if quote is not None else position.last_price

    def _close(self, position: Position) -> int:
        quote = self._quote(position.exchange, position.symboltoken)
        return quote.close if quote is not None else 0

    def _instrument(self, order: Order) -> Instrument:
        return self._instrument_at(order.exchange, order.symboltoken)

    def _instrument_at(self, exchange: str, token: str) -> Instrument:
        instrument = self.universe.by_token(exchange, token)
        assert instrument is not None, f"{exchange}:{token} left the universe"
        return instrument

    @staticmethod
    def _sequence_of(order: Order) -> int:
        return int(order.orderid[6:])

    def _row(self, order: Order) -> dict[str, Any]:
        return order_row(order, self._instrument(order))

    def _trade_row(self, fill: Fill) -> dict[str, str]:
        return pos.trade_row(fill, self._instrument_at(fill.exchange, fill.symboltoken))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%d-%b-%Y %H:%M:%S")


# Requests ---------------------------------------------------------------------------------------------------
def parse_order(params: Mapping[str, Any], universe: Universe) -> dict[str, Any]:
    """The `Order` fields of a placeOrder request, numbers coerced from the SDK's strings; refusals raise."""
    variety = _variety(params)
    instrument = _instrument(params, universe)
    fields = {
        "variety": variety, "exchange": instrument.exchange, "symboltoken": instrument.token,
        "tradingsymbol": instrument.symbol,
        "transactiontype": _choice(params, "transactiontype", SIDES, "Invalid Transaction Type"),
        "ordertype": _choice(params, "ordertype", ORDER_TYPES, "Invalid Order Type"),
        "producttype": _product(params, variety, instrument),
        "duration": _choice(params, "duration", DURATIONS, "Invalid Duration"),
        "quantity": _whole(params, "quantity", "Invalid Quantity", minimum=1),
        "disclosedquantity": _whole(params, "disclosedquantity", "Invalid Disclosed Quantity", minimum=0),
        "squareoff": _paise(params, "squareoff", "Invalid Squareoff") or 0,
        "stoploss": _paise(params, "stoploss", "Invalid Stoploss") or 0,
        "trailingstoploss": _paise(params, "trailingStopLoss", "Invalid Trailing Stoploss") or 0,
        "ordertag": _text(params, "ordertag"),
    }
    if len(fields["ordertag"]) >= 20:
        raise OrderError("AB4008", "ordertag length should be less than 20 characters", "ordertag")
    fields.update(_prices(params, variety, fields["ordertype"], None))
    return fields


def parse_modify(params: Mapping[str, Any], order: Order) -> dict[str, Any]:
    """The changes a modifyOrder request makes; absent fields keep the order's values."""
    variety = _variety(params)
    ordertype = _choice(params, "ordertype", ORDER_TYPES, "Invalid Order Type", default=order.ordertype)
    if _text(params, "producttype").upper() not in ("", order.producttype):
        raise OrderError("AB1012", "Invalid Product Type", "producttype")
    token = _text(params, "symboltoken")
    if token and token != order.symboltoken:
        raise OrderError("AB1009", "Symbol Not Found", "symboltoken")
    changes: dict[str, Any] = {
        "variety": variety, "ordertype": ordertype,
        "duration": _choice(params, "duration", DURATIONS, "Invalid Duration", default=order.duration),
        "quantity": _whole(params, "quantity", "Invalid Quantity", minimum=1, default=order.quantity),
    }
    changes.update(_prices(params, variety, ordertype, order))
    return changes


def _prices(params: Mapping[str, Any], variety: str, ordertype: str, order: Order | None) -> dict[str, int]:
    if (ordertype in STOP_TYPES) != (variety == "STOPLOSS"):
        needs = "needs variety STOPLOSS" if ordertype in STOP_TYPES else "cannot use variety STOPLOSS"
        raise OrderError("AB1008", f"Invalid Order Variety: a {ordertype} order {needs}", "variety")
    price = trigger = 0
    if ordertype in ("LIMIT", "STOPLOSS_LIMIT"):
        price = _paise(params, "price", "Invalid Price") or (order.price if order else 0)
        if price <= 0:
            raise OrderError("AB2000", f"Invalid Price: a {ordertype} order needs a price greater than 0", "price")
    if ordertype in STOP_TYPES:
        trigger = _paise(params, "triggerprice", "Invalid Trigger Price") or (order.triggerprice if order else 0)
        if trigger <= 0:
            raise OrderError(
                "AB2000", f"Invalid Trigger Price: a {ordertype} order needs a trigger price greater than 0", "triggerprice"
            )
    return {"price": price, "triggerprice": trigger}


def _variety(params: Mapping[str, Any]) -> str:
    variety = _text(params, "variety").upper()
    if variety == "ROBO":
        raise OrderError("AB2002", "ROBO order is block", "variety")
    if variety not in VARIETIES:
        raise OrderError("AB1008", "Invalid Order Variety", "variety")
    return variety


def _instrument(params: Mapping[str, Any], universe: Universe) -> Instrument:
    token = _text(params, "symboltoken")
    if not token:
        raise OrderError("AB4018", "Symbol token cannot be empty", "symboltoken")
    instrument = universe.by_token(_text(params, "exchange"), token)
    symbol = _text(params, "tradingsymbol").upper()
    if instrument is None or instrument.is_index or symbol != instrument.symbol.upper():
        field = "tradingsymbol" if instrument is not None else "symboltoken"
        raise OrderError("AB1009", "Symbol Not Found", field)
    return instrument


def _product(params: Mapping[str, Any], variety: str, instrument: Instrument) -> str:
    product = _text(params, "producttype").upper()
    cash_only, derivatives_only = ("DELIVERY",), ("CARRYFORWARD",)
    if (
        product not in PRODUCTS
        or (product == "BO") != (variety == "ROBO")
        or (product in cash_only and instrument.is_derivative)
        or (product in derivatives_only and not instrument.is_derivative)
    ):
        raise OrderError("AB1012", "Invalid Product Type", "producttype")
    return product


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    return "" if value is None else str(value).strip()


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], label: str, default: str | None = None) -> str:
    value = _text(params, name).upper()
    if not value and default is not None:
        return default
    if value not in allowed:
        raise OrderError("AB2000", f"{label}: {_text(params, name)!r} (expected {' or '.join(allowed)})", name)
    return value


def _number(params: Mapping[str, Any], name: str, label: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise OrderError("AB2000", f"{label}: {raw!r} is not a number", name)
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise OrderError("AB2000", f"{label}: {raw!r} is not a number", name) from None
    if not value.is_finite() or value < 0:
        raise OrderError("AB2000", f"{label}: {raw!r} must be a finite number >= 0", name)
    return value


def _whole(params: Mapping[str, Any], name: str, label: str, *, minimum: int, default: int | None = 0) -> int:
    value = _number(params, name, label)
    if value is None:
        if minimum > 0 and default in (None, 0):
            raise OrderError("AB2000", f"{label}: {name} is required", name)
        return default or 0
    if value != value.to_integral_value() or value < minimum:
        raise OrderError("AB2000", f"{label}: {params.get(name)!r} (expected a whole number >= {minimum})", name)
    return int(value)


def _paise(params: Mapping[str, Any], name: str, label: str) -> int | None:
    value = _number(params, name, label)
    if value is None:
        return None
    paise = value * 100
    if paise != paise.to_integral_value():
        raise OrderError("AB2000", f"{label}: {params.get(name)!r} has more than 2 decimals", name)
    return int(paise)


# Rows -----------------------------------------------------------------------------------------------------
def order_row(order: Order, instrument: Instrument) -> dict[str, Any]:
    """The order-book row: prices as numbers in rupees, quantities as strings, as the docs show them."""
    average = order.filledvalue / order.filledshares / 100 if order.filledshares else 0
    return {
        "variety": order.variety, "ordertype": order.ordertype, "producttype": order.producttype,
        "duration": order.duration, "price": pos.rupees(order.price), "triggerprice": pos.rupees(order.triggerprice),
        "quantity": str(order.quantity), "disclosedquantity": str(order.disclosedquantity),
        "squareoff": pos.rupees(order.squareoff), "stoploss": pos.rupees(order.stoploss),
        "trailingstoploss": pos.rupees(order.trailingstoploss), "tradingsymbol": order.tradingsymbol,
        "transactiontype": order.transactiontype, "exchange": order.exchange, "symboltoken": order.symboltoken,
        "ordertag": order.ordertag, "instrumenttype": instrument.instrumenttype,
        "strikeprice": pos.strike_value(instrument), "optiontype": instrument.option_type or "",
        "expirydate": pos.expiry_text(instrument), "lotsize": str(instrument.lotsize),
        "cancelsize": str(order.cancelsize), "averageprice": round(average, 2),
        "filledshares": str(order.filledshares), "unfilledshares": str(order.unfilled),
        "orderid": order.orderid, "text": order.text, "status": order.status, "orderstatus": order.status,
        "updatetime": order.updatetime, "exchtime": order.exchtime, "exchorderupdatetime": order.exchtime and order.updatetime,
        "fillid": order.fillid, "filltime": order.filltime, "parentorderid": "",
        "uniqueorderid": order.uniqueorderid, "exchangeorderid": order.exchangeorderid,
    }


def order_from_row(clientcode: str, row: Mapping[str, Any], filledvalue: int) -> Order:
    """An order back from its stored row; `filledvalue` comes from its fills (the row's average is rounded)."""
    status = str(row["status"])
    if status == "modified":  # the row stored between a modification and its re-entry
        status = "trigger pending" if row["ordertype"] in STOP_TYPES and row["filledshares"] == "0" else "open"
    return Order(
        str(row["orderid"]), str(row["uniqueorderid"]), clientcode, str(row["variety"]), str(row["exchange"]),
        str(row["symboltoken"]), str(row["tradingsymbol"]), str(row["transactiontype"]), str(row["ordertype"]),
        str(row["producttype"]), str(row["duration"]), pos.paise_of(row["price"]), pos.paise_of(row["triggerprice"]),
        int(row["quantity"]), int(row["disclosedquantity"]), pos.paise_of(row["squareoff"]),
        pos.paise_of(row["stoploss"]), pos.paise_of(row["trailingstoploss"]), str(row["ordertag"]),
        status=status, text=str(row["text"]),
        filledshares=int(row["filledshares"]), filledvalue=filledvalue, cancelsize=int(row["cancelsize"]),
        triggered=status == "open" and row["ordertype"] in STOP_TYPES, exchangeorderid=str(row["exchangeorderid"]),
        held=status == "open" and row["ordertype"] in ("MARKET", "STOPLOSS_MARKET"),  # only a fault keeps these open
        updatetime=str(row["updatetime"]), exchtime=str(row["exchtime"]), fillid=str(row["fillid"]),
        filltime=str(row["filltime"]),
    )
