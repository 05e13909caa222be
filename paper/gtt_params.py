"""GTT requests (createRule, modifyRule, cancelRule, ruleDetails, ruleList): the SDK's fields checked
and coerced. Numbers may arrive as JSON numbers or as strings; every refusal is a `GttError` with the
code `paper.gtt`'s table gives it (the meanings are the paper exchange's choice).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from paper.errors import GttError
from paper.instruments import Instrument, Universe
from paper.vocabulary import SIDES

__all__ = [
    "RuleTerms", "parse_create", "parse_terms", "parse_rule_id", "parse_instrument_check", "parse_list",
    "GTT_EXCHANGES", "GTT_PRODUCTS", "RULE_STATUSES", "WAITING", "MAX_PERIOD_DAYS", "MAX_PAGE_SIZE",
    "INVALID", "NOT_FOUND", "BAD_EXCHANGE", "BAD_SYMBOL", "BAD_PRODUCT", "BAD_SIDE", "BAD_PRICE", "BAD_TRIGGER",
    "BAD_QUANTITY", "BAD_DISCLOSED", "BAD_PERIOD", "TRIGGER_SIDE", "NO_PRICE", "NOT_MODIFIABLE",
    "NOT_CANCELLABLE", "OTHER_INSTRUMENT", "BAD_STATUS", "BAD_PAGE", "TOO_MANY",
]

INVALID = "AB9000"  # a field missing or unreadable
NOT_FOUND = "AB9001"
BAD_EXCHANGE = "AB9002"
BAD_SYMBOL = "AB9003"
BAD_PRODUCT = "AB9004"
BAD_SIDE = "AB9005"
BAD_PRICE = "AB9006"
BAD_TRIGGER = "AB9007"
BAD_QUANTITY = "AB9008"
BAD_DISCLOSED = "AB9009"
BAD_PERIOD = "AB9010"
TRIGGER_SIDE = "AB9011"
NO_PRICE = "AB9012"
NOT_MODIFIABLE = "AB9013"
NOT_CANCELLABLE = "AB9014"
OTHER_INSTRUMENT = "AB9015"
BAD_STATUS = "AB9016"
BAD_PAGE = "AB9017"
TOO_MANY = "AB9018"

GTT_EXCHANGES = ("NSE", "BSE")  # the cash segments
GTT_PRODUCTS = ("DELIVERY", "MARGIN")
RULE_STATUSES = ("NEW", "ACTIVE", "SENTTOEXCHANGE", "CANCELLED")
WAITING = ("NEW", "ACTIVE")
MAX_PERIOD_DAYS = 365
MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class RuleTerms:
    """What a modification may change. Prices in paise."""

    price: int
    qty: int
    triggerprice: int
    disclosedqty: int
    timeperiod: int  # days the rule lives from its creation or last modification


def parse_create(body: Mapping[str, Any], universe: Universe) -> tuple[Instrument, str, str, RuleTerms]:
    """(instrument, transactiontype, producttype, terms) of a createRule body."""
    instrument = _instrument(body, universe)
    side = _text(body, "transactiontype").upper()
    if side not in SIDES:
        raise GttError(BAD_SIDE, f"Invalid transactiontype {_text(body, 'transactiontype')!r}: expected BUY or SELL",
                       "transactiontype")
    product = _text(body, "producttype").upper()
    if product not in GTT_PRODUCTS:
        raise GttError(BAD_PRODUCT, f"Invalid producttype {_text(body, 'producttype')!r}: a GTT rule takes "
                       f"{' or '.join(GTT_PRODUCTS)}", "producttype")
    return instrument, side, product, parse_terms(body, instrument, None)


def parse_terms(body: Mapping[str, Any], instrument: Instrument, current: RuleTerms | None) -> RuleTerms:
    """Price, qty, trigger, disclosed qty and time period; on a modification an absent field keeps `current`'s."""
    price = _paise(body, "price", BAD_PRICE, instrument, current.price if current else None)
    trigger = _paise(body, "triggerprice", BAD_TRIGGER, instrument, current.triggerprice if current else None)
    qty = _whole(body, "qty", BAD_QUANTITY, current.qty if current else None)
    if qty < 1 or qty % instrument.lotsize:
        raise GttError(BAD_QUANTITY, f"Invalid qty {qty}: expected a multiple of the lot size {instrument.lotsize}, "
                       "at least one lot", "qty")
    disclosed = _whole(body, "disclosedqty", BAD_DISCLOSED, current.disclosedqty if current else 0)
    if not 0 <= disclosed <= qty:
        raise GttError(BAD_DISCLOSED, f"Invalid disclosedqty {disclosed}: expected 0 to qty ({qty})", "disclosedqty")
    period = _whole(body, "timeperiod", BAD_PERIOD, current.timeperiod if current else MAX_PERIOD_DAYS)
    if not 1 <= period <= MAX_PERIOD_DAYS:
        raise GttError(BAD_PERIOD, f"Invalid timeperiod {period}: expected 1 to {MAX_PERIOD_DAYS} days", "timeperiod")
    return RuleTerms(price, qty, trigger, disclosed, period)


def parse_rule_id(body: Mapping[str, Any]) -> int:
    raw = _text(body, "id")
    if not raw.isdigit():
        raise GttError(INVALID, f"Invalid rule id {raw!r}: expected a whole number" if raw else "id is required", "id")
    return int(raw)


def parse_instrument_check(body: Mapping[str, Any], exchange: str, token: str) -> None:
    """modifyRule and cancelRule name the rule's instrument again: it must be the rule's."""
    for name, expected in (("exchange", exchange), ("symboltoken", token)):
        given = _text(body, name)
        if not given:
            raise GttError(INVALID, f"{name} is required", name)
        if given.upper() != expected.upper():
            raise GttError(OTHER_INSTRUMENT, f"The rule is for {exchange}:{token}, not {name} {given!r}", name)


def parse_list(body: Mapping[str, Any]) -> tuple[tuple[str, ...], int, int]:
    """(statuses, page, count) of a ruleList body; pages count from 1."""
    statuses = body.get("status")
    if not isinstance(statuses, list) or not statuses:
        raise GttError(BAD_STATUS, f"status must be a non-empty list of {', '.join(RULE_STATUSES)}", "status")
    wanted = tuple(str(s).strip().upper() for s in statuses)
    unknown = [s for s in wanted if s not in RULE_STATUSES]
    if unknown:
        raise GttError(BAD_STATUS, f"Unknown status {unknown[0]!r}: expected {', '.join(RULE_STATUSES)}", "status")
    page = _whole(body, "page", BAD_PAGE, None)
    count = _whole(body, "count", BAD_PAGE, None)
    if page < 1 or not 1 <= count <= MAX_PAGE_SIZE:
        raise GttError(BAD_PAGE, f"Invalid page {page} / count {count}: page from 1, count 1 to {MAX_PAGE_SIZE}",
                       "count" if page >= 1 else "page")
    return wanted, page, count


def _instrument(body: Mapping[str, Any], universe: Universe) -> Instrument:
    exchange = _text(body, "exchange").upper()
    if exchange not in GTT_EXCHANGES:
        raise GttError(BAD_EXCHANGE, f"Invalid exchange {exchange!r}: GTT rules are for the cash segments "
                       f"{' and '.join(GTT_EXCHANGES)}", "exchange")
    token = _text(body, "symboltoken")
    if not token:
        raise GttError(INVALID, "symboltoken is required", "symboltoken")
    instrument = universe.by_token(exchange, token)
    symbol = _text(body, "tradingsymbol").upper()
    if instrument is None or instrument.is_index or symbol != instrument.symbol.upper():
        field = "tradingsymbol" if instrument is not None else "symboltoken"
        raise GttError(BAD_SYMBOL, f"Symbol not found: {exchange} {token} {symbol}", field)
    return instrument


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    return "" if value is None else str(value).strip()


def _number(body: Mapping[str, Any], name: str, code: str) -> Decimal | None:
    raw = body.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise GttError(code, f"Invalid {name} {raw!r}: not a number", name) from None
    if not value.is_finite():
        raise GttError(code, f"Invalid {name} {raw!r}: not a finite number", name)
    return value


def _whole(body: Mapping[str, Any], name: str, code: str, default: int | None) -> int:
    value = _number(body, name, code)
    if value is None:
        if default is None:
            raise GttError(INVALID, f"{name} is required", name)
        return default
    if value != value.to_integral_value():
        raise GttError(code, f"Invalid {name} {body.get(name)!r}: expected a whole number", name)
    return int(value)


def _paise(body: Mapping[str, Any], name: str, code: str, instrument: Instrument, default: int | None) -> int:
    value = _number(body, name, code)
    if value is None:
        if default is None:
            raise GttError(INVALID, f"{name} is required", name)
        return default
    paise = value * 100
    if value <= 0 or paise != paise.to_integral_value():
        raise GttError(code, f"Invalid {name} {body.get(name)!r}: expected a price > 0 with at most 2 decimals", name)
    if int(paise) % instrument.tick_paise:
        raise GttError(code, f"Invalid {name} {body.get(name)!r}: not a multiple of the tick size "
                       f"{instrument.tick_paise / 100:.2f}", name)
    return int(paise)
