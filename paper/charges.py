"""SmartAPI's brokerage calculator (`estimateCharges`, POST rest/secure/angelbroking/brokerage/v1/estimateCharges).

Request, as SmartAPI documents it (numbers may come as strings):

    {"orders": [{"product_type": "INTRADAY", "transaction_type": "BUY", "quantity": "10", "price": "800",
                 "exchange": "NSE", "symbol_name": "SBIN-EQ", "token": "3045"}]}

Each order is charged on its own, from this exchange's own copy of the rates (`charges_rates.json`,
which imports nothing of tickguard's schedule): brokerage by Angel One's plan, STT, exchange
transaction charges, SEBI fee, stamp duty on a buy, GST on brokerage + exchange + SEBI. Amounts are
rupees to 4 decimals (the live reply shows `3.0796`), each component rounded half up there.

Reply: `data.summary` {total_charges, trade_value, breakup} and `data.charges`, one per order with
the same three fields. `breakup` is three groups, each {name, amount, msg, breakup}: "Angel One
Brokerage"; "External Charges" (Exchange Transaction Charges, Stamp Duty, SEBI Fees); "Taxes"
(Security Transaction Tax, GST). The group names follow the published sample; the names of the
items inside them are this exchange's choice where the sample is cut off (see the README).

`PUT /paper/v1/charges` (control API) replaces parts of the rates, so a test can make this copy differ.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from paper.charge_rates import RatesError
from paper.envelopes import BadRequest, ok
from paper.errors import PaperError

if TYPE_CHECKING:
    from paper.auth import Session
    from paper.exchange import PaperExchange

__all__ = ["estimate_charges", "set_rates"]

MAX_ORDERS = 50  # our choice: the live limit is not published
_PLACES = Decimal("0.0001")
_PRODUCTS = {"INTRADAY", "DELIVERY", "CARRYFORWARD", "MARGIN"}
_CASH = {"NSE": "NSE", "BSE": "BSE"}
_DERIVATIVES = {"NFO": "NSE", "BFO": "BSE"}


def _four(amount: Decimal) -> Decimal:
    return amount.quantize(_PLACES, rounding=ROUND_HALF_UP)


def _groups(parts: dict[str, Decimal]) -> tuple[Decimal, list[dict[str, Any]]]:
    brokerage = _four(parts["brokerage"])
    external = [("Exchange Transaction Charges", _four(parts["exchange_txn"])), ("Stamp Duty", _four(parts["stamp"])),
                ("SEBI Fees", _four(parts["sebi"]))]
    taxes = [("Security Transaction Tax", _four(parts["stt"])), ("GST", _four(parts["gst"]))]

    def group(name: str, items: list[tuple[str, Decimal]], amount: Decimal) -> dict[str, Any]:
        return {"name": name, "amount": float(amount), "msg": "",
                "breakup": [{"name": n, "amount": float(a), "msg": "", "breakup": []} for n, a in items]}

    external_total, taxes_total = sum(a for _, a in external), sum(a for _, a in taxes)
    total = brokerage + external_total + taxes_total
    return total, [group("Angel One Brokerage", [], brokerage), group("External Charges", external, external_total),
                   group("Taxes", taxes, taxes_total)]


def _segment(ex: PaperExchange, order: dict[str, Any], at: int) -> tuple[str, str, str]:
    exchange = str(order.get("exchange") or "").strip().upper()
    token = str(order.get("token") or "").strip()
    instrument = ex.universe.by_token(exchange, token)
    if instrument is None or instrument.is_index:
        raise PaperError("AB1009", "Symbol Not Found", "token")
    product = str(order.get("product_type") or "").strip().upper()
    if product not in _PRODUCTS:
        raise PaperError("AB1012", "Invalid Product Type", "product_type")
    if exchange in _CASH:
        return ("equity_delivery" if product == "DELIVERY" else "equity_intraday"), _CASH[exchange], product
    if exchange in _DERIVATIVES:
        return ("options" if instrument.is_option else "futures"), _DERIVATIVES[exchange], product
    raise BadRequest(f"orders[{at}].exchange: charges are estimated for NSE, BSE, NFO and BFO, got {exchange!r}")


def _decimal(order: dict[str, Any], name: str, at: int) -> Decimal:
    value = order.get(name)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, bool) and value is not None else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise BadRequest(f"orders[{at}].{name} must be a number above 0, got {value!r}")
    return number


async def estimate_charges(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    orders = body.get("orders")
    if not isinstance(orders, list) or not orders:
        raise BadRequest("orders must be a non-empty list of orders")
    if len(orders) > MAX_ORDERS:
        raise BadRequest(f"orders: at most {MAX_ORDERS} in one request")
    each, grand, traded = [], Decimal(0), Decimal(0)
    for at, order in enumerate(orders):
        if not isinstance(order, dict):
            raise BadRequest(f"orders[{at}] must be an object")
        segment, exchange, _ = _segment(ex, order, at)
        side = str(order.get("transaction_type") or "").strip().upper()
        if side not in ("BUY", "SELL"):
            raise BadRequest(f"orders[{at}].transaction_type must be BUY or SELL, got {order.get('transaction_type')!r}")
        quantity, price = _decimal(order, "quantity", at), _decimal(order, "price", at)
        if quantity != quantity.to_integral_value():
            raise BadRequest(f"orders[{at}].quantity must be a whole number, got {order.get('quantity')!r}")
        value = quantity * price
        total, breakup = _groups(ex.charge_rates.charge(segment, exchange, side, value))
        each.append({"total_charges": float(total), "trade_value": float(value), "breakup": breakup})
        grand, traded = grand + total, traded + value
    summary = _summary(each, grand, traded)
    return ok({"summary": summary, "charges": each})


def _summary(each: list[dict[str, Any]], grand: Decimal, traded: Decimal) -> dict[str, Any]:
    """The orders' groups and items added up by name (each already rounded to 4 decimals)."""
    groups: dict[str, dict[str, Any]] = {}
    for order in each:
        for group in order["breakup"]:
            into = groups.setdefault(group["name"], {"name": group["name"], "amount": Decimal(0), "msg": "", "items": {}})
            into["amount"] += Decimal(str(group["amount"]))
            for item in group["breakup"]:
                into["items"][item["name"]] = into["items"].get(item["name"], Decimal(0)) + Decimal(str(item["amount"]))
    breakup = [{"name": g["name"], "amount": float(g["amount"]), "msg": "",
                "breakup": [{"name": n, "amount": float(a), "msg": "", "breakup": []} for n, a in g["items"].items()]}
               for g in groups.values()]
    return {"total_charges": float(grand), "trade_value": float(traded), "breakup": breakup}


def set_rates(ex: PaperExchange):
    """PUT /paper/v1/charges: merge `{"segments": {"equity_intraday": {"NSE": {"stt": "0.03"}}}}` (any
    part of the rates document) over the current rates; `{"reset": true}` restores the shipped copy."""

    async def charges(request: Request, body: dict[str, Any]) -> Response:
        try:
            if body.get("reset") is True:
                ex.charge_rates.reset()
            else:
                ex.charge_rates.replace(body)
        except RatesError as bad:
            return JSONResponse({"errors": [{"field": bad.field, "reason": bad.reason}]}, 422)
        return JSONResponse({"rates": ex.charge_rates.document})

    return charges
