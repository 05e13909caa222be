"""placeOrder / modifyOrder / cancelOrder requests: the SDK's strings checked and coerced to `Order` fields.

Synchronous refusals (`OrderError`; codes from the SmartAPI table, "unverified" = our choice):
    AB1008 Invalid Order Variety            unknown variety; STOPLOSS_* without STOPLOSS (unverified)
    AB2002 ROBO order is block              variety ROBO
    AB1009 Symbol Not Found                 unknown exchange/token, symbol not the token's, an index;
                                            a modification naming another token
    AB4018 Symbol token cannot be empty     no symboltoken
    AB1012 Invalid Product Type             unknown product; BO outside ROBO; DELIVERY on F&O;
                                            CARRYFORWARD on cash (unverified); a modification
                                            changing the product
    AB4008 ordertag length should be less than 20 characters
    AB2000 <precise message>                (unverified) bad transactiontype / ordertype / duration /
                                            quantity / price / triggerprice
Refusals the engine raises once it knows the order (AB1013, finished orders, RMS) are in `paper.orders`.
Variety AMO is accepted and handled like NORMAL (the paper market is always open).
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from paper.errors import OrderError
from paper.instruments import Instrument, Universe
from paper.vocabulary import DURATIONS, ORDER_TYPES, PRODUCTS, SIDES, STOP_TYPES, VARIETIES

if TYPE_CHECKING:
    from paper.rows import Order

__all__ = ["parse_order", "parse_modify", "parse_variety"]


def parse_order(params: Mapping[str, Any], universe: Universe) -> dict[str, Any]:
    """The `Order` fields of a placeOrder request, numbers coerced from the SDK's strings; refusals raise."""
    variety = parse_variety(params)
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
    variety = parse_variety(params)
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


def parse_variety(params: Mapping[str, Any]) -> str:
    """The request's variety, upper-cased; ROBO and unknown varieties are refused."""
    variety = _text(params, "variety").upper()
    if variety == "ROBO":
        raise OrderError("AB2002", "ROBO order is block", "variety")
    if variety not in VARIETIES:
        raise OrderError("AB1008", "Invalid Order Variety", "variety")
    return variety


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
