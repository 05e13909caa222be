"""The margin batch route (`getMarginApi`, POST rest/secure/angelbroking/margin/v1/batch).

Request, as the SDKs send it (numbers may come as strings):

    {"positions": [{"exchange": "NFO", "qty": 75, "price": 0, "productType": "CARRYFORWARD",
                    "token": "…", "tradeType": "BUY", "orderType": "MARKET"}]}

Each position is charged by the same rule the paper RMS blocks margin by (`paper.positions.margin`):
a future 15 % of price × qty, a long option its premium, a short option 15 % of strike × qty, a
cash equity 20 % (INTRADAY) or 100 % (DELIVERY, MARGIN) of its value. `price` 0 (a market order)
is priced at the last traded price. Legs are added up: the paper exchange gives no spread or hedge
benefit (`marginBenefit` is always 0) and ignores the login's open positions.

Reply (the shape is the one clients commonly read; the live reply is not confirmed, see the README):

    {"totalMarginRequired": 270000.0,
     "marginComponents": {"netPremium", "spanMargin", "marginBenefit", "deliveryMargin",
                          "nonNFOMargin", "totOptionsPremium"}}   all rupees

Refusals: AB1009 Symbol Not Found (unknown exchange/token, an index), AB1012 Invalid Product Type,
AB2000 with a precise message for anything else unreadable (our choice of code).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from paper import positions as pos
from paper.envelopes import BadRequest, ok
from paper.errors import PaperError
from paper.instruments import Instrument
from paper.vocabulary import PRODUCTS

if TYPE_CHECKING:
    from paper.auth import Session
    from paper.exchange import PaperExchange

__all__ = ["margin_batch", "required_margin"]

MAX_POSITIONS = 50  # our choice: the live limit is not published


async def margin_batch(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    legs = body.get("positions")
    if not isinstance(legs, list) or not legs:
        raise BadRequest("positions must be a non-empty list of positions")
    if len(legs) > MAX_POSITIONS:
        raise BadRequest(f"positions: at most {MAX_POSITIONS} in one request")
    blocked = dict.fromkeys(pos.CATEGORIES, 0)
    for at, leg in enumerate(legs):
        if not isinstance(leg, dict):
            raise BadRequest(f"positions[{at}] must be an object")
        category, amount = required_margin(ex, leg)
        blocked[category] += amount
    total = sum(blocked.values())
    return ok({
        "totalMarginRequired": pos.rupees(total),
        "marginComponents": {
            "netPremium": pos.rupees(blocked["optionpremium"]),
            "spanMargin": pos.rupees(blocked["span"]),
            "marginBenefit": 0.0,
            "deliveryMargin": 0.0,
            "nonNFOMargin": pos.rupees(blocked["exposure"]),
            "totOptionsPremium": pos.rupees(blocked["optionpremium"]),
        },
    })


def required_margin(ex: PaperExchange, leg: dict[str, Any]) -> tuple[str, int]:
    """(category, paise) the paper RMS would block for this position."""
    instrument = _instrument(ex, leg)
    qty = _number(leg, "qty")
    if qty is None or qty != qty.to_integral_value() or qty < 1:
        raise BadRequest(f"qty must be a whole number of units above 0, got {leg.get('qty')!r}")
    if qty % instrument.lotsize:
        raise BadRequest(f"qty {qty} is not a multiple of the lot size {instrument.lotsize} for {instrument.symbol}")
    side = str(leg.get("tradeType") or "").strip().upper()
    if side not in ("BUY", "SELL"):
        raise BadRequest(f"tradeType must be BUY or SELL, got {leg.get('tradeType')!r}")
    product = str(leg.get("productType") or "").strip().upper()
    cash_only = product == "DELIVERY" and instrument.is_derivative
    derivatives_only = product == "CARRYFORWARD" and not instrument.is_derivative
    if product not in PRODUCTS or product == "BO" or cash_only or derivatives_only:
        raise PaperError("AB1012", "Invalid Product Type", "productType")
    price = _number(leg, "price") if "price" in leg else Decimal(0)  # no price: a market order
    if price is None or price < 0:
        raise BadRequest(f"price must be a number of rupees, 0 or more, got {leg.get('price')!r}")
    paise = int(price * 100) or ex.prices.ltp(instrument.exchange, instrument.token)
    signed = int(qty) if side == "BUY" else -int(qty)
    return pos.margin(instrument, product, signed, paise)


def _instrument(ex: PaperExchange, leg: dict[str, Any]) -> Instrument:
    instrument = ex.universe.by_token(str(leg.get("exchange") or ""), str(leg.get("token") or "").strip())
    if instrument is None or instrument.is_index:
        raise PaperError("AB1009", "Symbol Not Found", "token")
    return instrument


def _number(leg: dict[str, Any], name: str) -> Decimal | None:
    value = leg.get(name)
    if isinstance(value, bool) or value is None or str(value).strip() == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
