"""The alert a webhook carries, validated field by field (trading-semantics §1).

`parse_alert(body)` returns an `Alert` or raises `AlertInvalid` listing every problem as
`{"field", "reason"}` — all of them at once, so a sender fixes its template in one go. Unknown
fields are refused. `dedup_key` is the idempotency id when given, else a hash of the body without
its `token` (the webhook secret is never part of a key, a log line or a stored body).
"""
from __future__ import annotations

import enum
import hashlib
import json
from decimal import Decimal
from typing import Any

import msgspec

from service.errors import TickguardError
from service.alerts.fields import PERCENT, POSITIVE, PRICE, SHARE, SIGNED, WHOLE, Words, blank

__all__ = [
    "Alert", "AlertInvalid", "DistanceSpec", "OptionSpec", "Signal", "TrailSpec", "parse_alert", "SIGNAL_ALIASES",
]


class Signal(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    EXIT = "exit"


# Chartink-style words: `short` opens/adds a short (a sell), `cover` closes it (a buy).
SIGNAL_ALIASES = {"buy": (Signal.BUY, False), "sell": (Signal.SELL, False), "exit": (Signal.EXIT, False),
                  "short": (Signal.SELL, True), "cover": (Signal.BUY, True)}
STOP_TYPES = ("points", "entry_pct", "rupees", "fund_pct")
TRAIL_TYPES = ("points", "entry_pct")
PERCENT_TYPES = ("entry_pct", "fund_pct")  # distances in percent: below 100
PRODUCTS = ("INTRADAY", "DELIVERY", "CARRYFORWARD")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
TEXT_LIMIT = 64  # symbolname and strategyname; an `id` may be as long as the body allows
# Every field that takes one of a few words: any case, whitespace around it ignored (service/alerts/fields.py).
WORDS = {
    "signal": Words(tuple(SIGNAL_ALIASES)),
    "type": Words(("equity", "option")),
    "exchange": Words(EXCHANGES, upper=True),
    "product": Words(PRODUCTS, upper=True),
    "stop_basis": Words(("option", "underlying")),
    "stop_type": Words(STOP_TYPES),
    "trail_type": Words(TRAIL_TYPES),
    "option.expiry": Words(("current", "next", "monthly"), extra="[0-9]{2}[A-Za-z]{3}[0-9]{4}",
                           label="current, next, monthly or DDMMMYYYY"),
    "option.strike": Words(("ATM",), upper=True, extra="[iIoO][tT][mM][1-9][0-9]?"),
    "option.right": Words(("CE", "PE"), upper=True),
}
# Every number: a JSON number or the same number as decimal text, in range (service/alerts/fields.py).
AMOUNTS = {"price": PRICE, "position_size": SIGNED, "quantity": WHOLE, "lots": WHOLE, "distance": POSITIVE,
           "percent": PERCENT, "option.strike": POSITIVE, "close_percent": SHARE}
CLOSING_WORDS = ("exit", "sell", "cover")  # the signals `percent` (a part of the position) goes with
FIELDS = {
    "symbolname", "signal", "price", "type", "strategyname", "token", "id", "position_size", "exchange",
    "product", "quantity", "lots", "percent", "stoploss", "target", "trail", "stop_basis", "option", "accounts",
}


class AlertInvalid(TickguardError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class DistanceSpec(msgspec.Struct, frozen=True):
    type: str
    value: Decimal


class TrailSpec(msgspec.Struct, frozen=True):
    type: str
    value: Decimal
    activation: DistanceSpec | None = None


class OptionSpec(msgspec.Struct, frozen=True):
    expiry: str = "current"
    strike: str = "ATM"  # ATM | ITMn | OTMn | a strike in rupees, as text
    right: str | None = None  # CE | PE; None = from the signal


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    symbolname: str
    signal: Signal
    price: Decimal
    type: str  # equity | option
    strategyname: str
    chartink_word: bool = False  # signal given as short/cover
    id: str | None = None
    position_size: Decimal | None = None
    exchange: str | None = None
    product: str = "INTRADAY"
    quantity: int | None = None
    lots: int | None = None
    percent: Decimal | None = None  # exit / close_only sell: this share of the open position
    stoploss: DistanceSpec | None = None
    target: DistanceSpec | None = None
    trail: TrailSpec | None = None
    stop_basis: str = "option"
    option: OptionSpec | None = None
    accounts: tuple[str, ...] | None = None

    def stored(self) -> dict[str, Any]:
        """The alert as stored and shown: no secret, decimals as strings."""
        return msgspec.to_builtins(self)


_FROM_BODY: Any = object()  # "read the field from the body"


class _Checker:
    """Reads fields of one body, collecting every problem. A field sent as null is a field left out."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: list[dict[str, str]] = []

    def fail(self, field: str, reason: str) -> None:
        self.errors.append({"field": field, "reason": reason})

    def text(self, field: str, required: bool = False, limit: int | None = TEXT_LIMIT) -> str | None:
        value = self.body.get(field)
        if value is None:
            if required:
                self.fail(field, "required")
            return None
        if not isinstance(value, str) or blank(value):
            self.fail(field, "expected a non-empty string")
            return None
        if limit is not None and len(value) > limit:
            self.fail(field, f"longer than {limit} characters")
            return None
        return value.strip()

    def amount(self, field: str, value: Any, kind: str, required: bool = False) -> Decimal | None:
        if value is None:
            if required:
                self.fail(field, "required")
            return None
        number, reason = AMOUNTS[kind].read(value)
        if number is None:
            self.fail(field, reason)
        return number

    def whole(self, field: str) -> int | None:
        number = self.amount(field, self.body.get(field), field)
        return None if number is None else int(number)

    def choice(self, field: str, words: str, value: Any = _FROM_BODY, *, required: bool = False) -> str | None:
        value = self.body.get(field) if value is _FROM_BODY else value
        if value is None:
            if required:
                self.fail(field, "required")
            return None
        word = WORDS[words].read(value)
        if word is None:
            self.fail(field, f"expected one of {WORDS[words].describe()}")
        return word

    def distance(self, field: str, types: str, value: Any = _FROM_BODY) -> DistanceSpec | None:
        value = self.body.get(field) if value is _FROM_BODY else value
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"type", "value"} or not {"type", "value"} <= set(value):
            self.fail(field, 'expected {"type": ..., "value": n}')
            return None
        kind = self.choice(f"{field}.type", types, value["type"], required=True)
        percent = kind in PERCENT_TYPES
        amount = self.amount(f"{field}.value", value["value"], "percent" if percent else "distance", required=True)
        if kind is None or amount is None:
            return None
        return DistanceSpec(kind, amount)


def parse_alert(body: Any) -> Alert:
    if not isinstance(body, dict):
        raise AlertInvalid([{"field": "body", "reason": "expected a JSON object"}])
    check = _Checker(body)
    for unknown in sorted(set(body) - FIELDS):
        check.fail(unknown[:TEXT_LIMIT], "unknown field")
    symbol = check.text("symbolname", required=True)
    strategy = check.text("strategyname", required=True)
    word = check.choice("signal", "signal", required=True)
    signal, chartink = SIGNAL_ALIASES[word] if word is not None else (None, False)
    price = check.amount("price", body.get("price"), "price", required=True)
    kind = check.choice("type", "type", required=True)
    if body.get("token") is not None and not isinstance(body["token"], str):
        check.fail("token", "expected a string")
    values: dict[str, Any] = {}
    values["id"] = check.text("id", limit=None)  # any length: the dedup key digests a long one
    values["position_size"] = check.amount("position_size", body.get("position_size"), "position_size")
    values["exchange"] = check.choice("exchange", "exchange")
    values["product"] = check.choice("product", "product") or "INTRADAY"
    if "quantity" in body and "lots" in body:
        check.fail("lots", "give quantity or lots, not both")
    values["quantity"] = check.whole("quantity")
    values["lots"] = check.whole("lots")
    values["percent"] = check.amount("percent", body.get("percent"), "close_percent")
    if "percent" in body and ("quantity" in body or "lots" in body):
        check.fail("percent", "give percent, quantity or lots, not two of them")
    if "percent" in body and "position_size" in body:
        check.fail("percent", "position_size sets the position itself: no percent with it")
    if values["percent"] is not None and word is not None and word not in CLOSING_WORDS:
        check.fail("percent", f"a share of the open position to close: only with {', '.join(CLOSING_WORDS)}")
    values["stoploss"] = check.distance("stoploss", "stop_type")
    values["target"] = check.distance("target", "stop_type")
    values["trail"] = _trail(check)
    values["stop_basis"] = check.choice("stop_basis", "stop_basis") or "option"
    if values["stop_basis"] == "underlying" and kind == "equity":
        check.fail("stop_basis", "only option alerts can keep their stop on the underlying")
    values["option"] = _option(check, kind)
    values["accounts"] = _accounts(check)
    if values["product"] == "DELIVERY" and kind == "option":
        check.fail("product", "options trade INTRADAY or CARRYFORWARD")
    if check.errors:
        raise AlertInvalid(check.errors)
    if not (symbol and strategy and signal and price and kind):  # every path above reports its field
        raise AlertInvalid([{"field": "body", "reason": "incomplete alert"}])
    return Alert(symbolname=symbol, signal=signal, price=price, type=kind, strategyname=strategy,
                 chartink_word=chartink, **{k: v for k, v in values.items() if v is not None})


def _trail(check: _Checker) -> TrailSpec | None:
    value = check.body.get("trail")
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"type", "value", "activation"} \
            or not {"type", "value"} <= set(value):
        check.fail("trail", 'expected {"type", "value", "activation"?}')
        return None
    base = check.distance("trail", "trail_type", value={"type": value["type"], "value": value["value"]})
    activation = None
    if value.get("activation") is not None:
        activation = check.distance("trail.activation", "trail_type", value=value["activation"])
    return TrailSpec(base.type, base.value, activation) if base is not None else None


def _option(check: _Checker, kind: str | None) -> OptionSpec | None:
    value = check.body.get("option")
    if value is None:
        return None
    if kind != "option":
        check.fail("option", "only option alerts take an option block")
        return None
    if not isinstance(value, dict) or set(value) - {"expiry", "strike", "right"}:
        check.fail("option", 'expected {"expiry"?, "strike"?, "right"?}')
        return None
    expiry = check.choice("option.expiry", "option.expiry", value.get("expiry")) or "current"
    if expiry not in ("current", "next", "monthly"):
        expiry = expiry.upper()  # DDMMMYYYY
    strike: Any = value.get("strike")
    if isinstance(strike, (int, float)) and not isinstance(strike, bool):
        number = check.amount("option.strike", strike, "option.strike")
        strike = str(strike) if number is not None else "ATM"
    elif strike is not None and WORDS["option.strike"].read(strike) is None:
        check.fail("option.strike", "expected ATM, ITMn, OTMn or a strike price")
        strike = "ATM"
    else:
        strike = WORDS["option.strike"].read(strike) if strike is not None else "ATM"
    right = check.choice("option.right", "option.right", value.get("right"))
    return OptionSpec(expiry, strike, right)


def _accounts(check: _Checker) -> tuple[str, ...] | None:
    value = check.body.get("accounts")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and not blank(a) for a in value):
        check.fail("accounts", "expected a non-empty list of account ids")
        return None
    return tuple(dict.fromkeys(a.strip() for a in value))


ID_KEY_LIMIT = 64  # an id up to this long is its own key; a longer one is keyed by its digest


def dedup_key(body: dict[str, Any]) -> str:
    """The alert's idempotency key: its `id` (a SHA-256 digest of a long one), else a hash of the body
    without the secret."""
    ident = body.get("id")
    if isinstance(ident, str) and not blank(ident):
        ident = ident.strip()
        if len(ident) <= ID_KEY_LIMIT:
            return "id:" + ident
        return "id-sha256:" + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
    canonical = json.dumps({k: v for k, v in body.items() if k != "token"}, sort_keys=True, separators=(",", ":"))
    return "body:" + hashlib.sha256(canonical.encode()).hexdigest()


__all__ += ["dedup_key", "AMOUNTS", "CLOSING_WORDS", "FIELDS", "WORDS"]
