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
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from service.errors import TickguardError

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
PRODUCTS = ("INTRADAY", "DELIVERY", "CARRYFORWARD")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
STRIKE_WORDS = re.compile(r"^(ATM|ITM[1-9][0-9]?|OTM[1-9][0-9]?)$")
EXPIRY_WORDS = re.compile(r"^(current|next|monthly|[0-9]{2}[A-Z]{3}[0-9]{4})$")
TEXT_LIMIT = 64
FIELDS = {
    "symbolname", "signal", "price", "type", "strategyname", "token", "id", "position_size", "exchange",
    "product", "quantity", "lots", "stoploss", "target", "trail", "stop_basis", "option", "accounts",
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
    stoploss: DistanceSpec | None = None
    target: DistanceSpec | None = None
    trail: TrailSpec | None = None
    stop_basis: str = "option"
    option: OptionSpec | None = None
    accounts: tuple[str, ...] | None = None

    def stored(self) -> dict[str, Any]:
        """The alert as stored and shown: no secret, decimals as strings."""
        return msgspec.to_builtins(self)


class _Checker:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: list[dict[str, str]] = []

    def fail(self, field: str, reason: str) -> None:
        self.errors.append({"field": field, "reason": reason})

    def text(self, field: str, required: bool = False, value: Any = None) -> str | None:
        value = self.body.get(field) if value is None else value
        if value is None:
            if required:
                self.fail(field, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "expected a non-empty string")
            return None
        if len(value) > TEXT_LIMIT:
            self.fail(field, f"longer than {TEXT_LIMIT} characters")
            return None
        return value.strip()

    def number(self, field: str, value: Any, *, positive: bool = True, required: bool = False) -> Decimal | None:
        if value is None:
            if required:
                self.fail(field, "required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.fail(field, "expected a number")
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(field, f"expected a number, got {str(value)[:20]!r}")
            return None
        if not number.is_finite() or abs(number) > Decimal("1e9"):
            self.fail(field, "expected a finite number below 1e9")
            return None
        if positive and number <= 0:
            self.fail(field, "must be greater than 0")
            return None
        return number

    def whole(self, field: str) -> int | None:
        number = self.number(field, self.body.get(field))
        if number is None:
            return None
        if number != number.to_integral_value():
            self.fail(field, "expected a whole number")
            return None
        return int(number)

    def choice(self, field: str, allowed: tuple[str, ...], *, upper: bool = False, value: Any = None) -> str | None:
        value = self.body.get(field) if value is None else value
        if value is None:
            return None
        if not isinstance(value, str) or (value.upper() if upper else value.lower()) not in allowed:
            self.fail(field, f"expected one of {', '.join(allowed)}")
            return None
        return value.upper() if upper else value.lower()

    def distance(self, field: str, allowed: tuple[str, ...], value: Any = None) -> DistanceSpec | None:
        value = self.body.get(field) if value is None else value
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"type", "value"} or not {"type", "value"} <= set(value):
            self.fail(field, 'expected {"type": ..., "value": n}')
            return None
        kind = self.choice(f"{field}.type", allowed, value=value["type"])
        amount = self.number(f"{field}.value", value["value"])
        if kind is None or amount is None:
            return None
        if kind in ("entry_pct", "fund_pct") and amount >= 100:
            self.fail(f"{field}.value", "a percentage must be below 100")
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
    signal, chartink = None, False
    raw_signal = body.get("signal")
    if raw_signal is None:
        check.fail("signal", "required")
    elif not isinstance(raw_signal, str) or raw_signal.strip().lower() not in SIGNAL_ALIASES:
        check.fail("signal", f"expected one of {', '.join(SIGNAL_ALIASES)}")
    else:
        signal, chartink = SIGNAL_ALIASES[raw_signal.strip().lower()]
    price = check.number("price", body.get("price"), required=True)
    if body.get("type") is None:  # absent or null
        kind = None
        check.fail("type", "required")
    else:
        kind = check.choice("type", ("equity", "option"))
    values: dict[str, Any] = {}
    if "id" in body:
        values["id"] = check.text("id")
    if "position_size" in body:
        values["position_size"] = check.number("position_size", body["position_size"], positive=False)
    values["exchange"] = check.choice("exchange", EXCHANGES, upper=True)
    values["product"] = check.choice("product", PRODUCTS, upper=True) or "INTRADAY"
    if "quantity" in body and "lots" in body:
        check.fail("lots", "give quantity or lots, not both")
    values["quantity"] = check.whole("quantity") if "quantity" in body else None
    values["lots"] = check.whole("lots") if "lots" in body else None
    values["stoploss"] = check.distance("stoploss", STOP_TYPES)
    values["target"] = check.distance("target", STOP_TYPES)
    values["trail"] = _trail(check)
    values["stop_basis"] = check.choice("stop_basis", ("option", "underlying")) or "option"
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
    if not isinstance(value, dict) or set(value) - {"type", "value", "activation"}:
        check.fail("trail", 'expected {"type", "value", "activation"?}')
        return None
    base = check.distance("trail", TRAIL_TYPES, value={"type": value.get("type"), "value": value.get("value")})
    activation = None
    if value.get("activation") is not None:
        activation = check.distance("trail.activation", TRAIL_TYPES, value=value["activation"])
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
    expiry = str(value.get("expiry", "current"))
    if not EXPIRY_WORDS.match(expiry if expiry in ("current", "next", "monthly") else expiry.upper()):
        check.fail("option.expiry", "expected current, next, monthly or DDMMMYYYY")
    strike = value.get("strike", "ATM")
    if isinstance(strike, (int, float)) and not isinstance(strike, bool) and strike > 0:
        strike = str(strike)
    elif not isinstance(strike, str) or not STRIKE_WORDS.match(strike.upper()):
        check.fail("option.strike", "expected ATM, ITMn, OTMn or a strike price")
        strike = "ATM"
    right = value.get("right")
    if right is not None and (not isinstance(right, str) or right.upper() not in ("CE", "PE")):
        check.fail("option.right", "expected CE or PE")
        right = None
    return OptionSpec(expiry if expiry in ("current", "next", "monthly") else expiry.upper(),
                      strike.upper() if isinstance(strike, str) else strike, right.upper() if right else None)


def _accounts(check: _Checker) -> tuple[str, ...] | None:
    value = check.body.get("accounts")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a.strip() for a in value):
        check.fail("accounts", "expected a non-empty list of account ids")
        return None
    return tuple(dict.fromkeys(a.strip() for a in value))


def dedup_key(body: dict[str, Any]) -> str:
    """The alert's idempotency key: its `id`, else a hash of the body without the secret."""
    if isinstance(body.get("id"), str) and body["id"].strip():
        return "id:" + body["id"].strip()
    canonical = json.dumps({k: v for k, v in body.items() if k != "token"}, sort_keys=True, separators=(",", ":"))
    return "body:" + hashlib.sha256(canonical.encode()).hexdigest()


__all__ += ["dedup_key"]
