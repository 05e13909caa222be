"""Chartink's scan alert: one scan alert becomes one `/opentrade` alert per stock (trading-semantics §1).

Chartink posts a fixed JSON body and cannot set headers, so the webhook secret travels as the `token`
query parameter:

    {"stocks": "SEPOWER,ASTEC,EDUCOMP", "trigger_prices": "3.75,541.8,2.1", "triggered_at": "2:34 pm",
     "scan_name": "Short term breakouts", "scan_url": "short-term-breakouts",
     "alert_name": "Alert for Short term breakouts", "webhook_url": "https://..."}

The signal and strategy come from `CHARTINK_SCANS` (`{"scan name": {"strategy", "signal", "product"?}}`,
names matched ignoring case and spacing) or from `signal` / `strategy` query parameters, which win.
Each stock's alert carries the id `chartink:<scan>:<IST date> <triggered_at>:<stock>`, so Chartink's
retries are duplicates while the same scan at the same clock time on another day is not (Chartink's
`triggered_at` is a time of day only). An id over 64 characters is replaced by a hash of it
(short, and the same as before alert ids could be longer, so a retry across an upgrade is still a duplicate).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from service.alerts.fields import PRICE
from service.alerts.parse import PRODUCTS, SIGNAL_ALIASES, TEXT_LIMIT, WORDS, AlertInvalid
from service.errors import SettingsError

__all__ = ["ChartinkScan", "chartink_id", "load_chartink_scans", "parse_chartink"]


class ChartinkScan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    strategy: str
    signal: str
    product: str | None = None


def _key(scan_name: str) -> str:
    return " ".join(scan_name.split()).casefold()


def load_chartink_scans(path: str) -> dict[str, ChartinkScan]:
    """CHARTINK_SCANS, keyed by the normalised scan name; empty path → no scans."""
    if not path:
        return {}
    try:
        raw = msgspec.convert(json.loads(Path(path).read_text()), dict[str, ChartinkScan])
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise SettingsError([("CHARTINK_SCANS", f"{path}: {exc}")]) from None
    problems = []
    for name, scan in raw.items():
        if scan.signal.strip().lower() not in SIGNAL_ALIASES:
            problems.append(("CHARTINK_SCANS", f"{name}: signal must be one of {', '.join(SIGNAL_ALIASES)}"))
        if not scan.strategy.strip() or len(scan.strategy.strip()) > TEXT_LIMIT:
            problems.append(("CHARTINK_SCANS", f"{name}: strategy must be 1-{TEXT_LIMIT} characters"))
        if scan.product is not None and scan.product.upper() not in PRODUCTS:
            problems.append(("CHARTINK_SCANS", f"{name}: product must be one of {', '.join(PRODUCTS)}"))
    if problems:
        raise SettingsError(problems)
    return {_key(name): scan for name, scan in raw.items()}


def chartink_id(scan_name: str, triggered_at: str, stock: str, day: date | None = None) -> str:
    """The alert id of one stock of one scan run; hashed when longer than 64 characters."""
    when = f"{day.isoformat()} {triggered_at}" if day is not None else triggered_at
    full = f"chartink:{scan_name}:{when}:{stock}"
    if len(full) <= TEXT_LIMIT:
        return full
    return "chartink:" + hashlib.sha256(full.encode()).hexdigest()[:40]


def _listed(body: dict[str, Any], field: str, errors: list[dict[str, str]]) -> list[Any] | None:
    """A comma-separated text's items, stripped, or a JSON list's items (texts stripped, numbers kept)."""
    value = body.get(field)
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) and not isinstance(item, bool)
                                       for item in value):
        return [item.strip() if isinstance(item, str) else item for item in value]
    if not isinstance(value, str):
        errors.append({"field": field, "reason": "required, a comma-separated list"})
        return None
    items = [item.strip() for item in value.split(",")]
    return [] if items == [""] else items


def _text(body: Mapping[str, Any], field: str, errors: list[dict[str, str]], *, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append({"field": field, "reason": "required" if value is None else "expected a non-empty string"})
        return None
    return " ".join(value.split())


def parse_chartink(body: Any, query: Mapping[str, str], scan_settings: Mapping[str, ChartinkScan], *,
                   day: date | None = None) -> list[dict[str, Any]]:
    """One `/opentrade` alert body per stock, in Chartink's order; `AlertInvalid` naming every problem."""
    if not isinstance(body, dict):
        raise AlertInvalid([{"field": "body", "reason": "expected a JSON object"}])
    errors: list[dict[str, str]] = []
    stocks = _listed(body, "stocks", errors)
    prices = _listed(body, "trigger_prices", errors)
    scan_name = _text(body, "scan_name", errors)
    triggered_at = _text(body, "triggered_at", errors)
    if stocks is not None and not stocks:
        errors.append({"field": "stocks", "reason": "no stock in the alert"})
    if stocks and prices is not None and len(stocks) != len(prices):
        errors.append({"field": "trigger_prices", "reason": f"{len(prices)} prices for {len(stocks)} stocks"})
    stocks = [str(stock) for stock in stocks or ()] if stocks is not None else None
    for position, stock in enumerate(stocks or ()):
        if not stock or len(stock) > TEXT_LIMIT:
            errors.append({"field": f"stocks[{position}]", "reason": f"expected a symbol of 1-{TEXT_LIMIT} characters"})
    for position, price in enumerate(prices or ()):
        _, reason = PRICE.read(price)  # the alert's own rule: at least one paisa, as a number or digits
        if reason:
            errors.append({"field": f"trigger_prices[{position}]", "reason": reason})
    scan = scan_settings.get(_key(scan_name)) if scan_name else None
    signal = WORDS["signal"].read(query["signal"]) if "signal" in query else None
    if "signal" in query and signal is None:
        errors.append({"field": "signal", "reason": f"expected one of {', '.join(SIGNAL_ALIASES)}"})
    if len(query.get("strategy") or "") > TEXT_LIMIT:
        errors.append({"field": "strategy", "reason": f"longer than {TEXT_LIMIT} characters"})
    strategy = _text(query, "strategy", errors, required=False)
    if scan is None and signal is None and scan_name:
        errors.append({"field": "signal", "reason": f"scan {scan_name!r} is not in CHARTINK_SCANS: add it there "
                       f"or put ?signal={'|'.join(SIGNAL_ALIASES)} on the webhook URL"})
    if errors:
        raise AlertInvalid(errors)
    assert stocks and prices and scan_name and triggered_at
    signal = (signal or (scan.signal if scan else "")).lower()
    strategy = strategy or (scan.strategy.strip() if scan else scan_name[:TEXT_LIMIT])
    alerts = []
    for stock, price in zip(stocks, prices):
        alert = {"symbolname": stock, "signal": signal, "price": price, "type": "equity", "strategyname": strategy,
                 "id": chartink_id(scan_name, triggered_at, stock, day)}
        if scan is not None and scan.product:
            alert["product"] = scan.product.upper()
        alerts.append(alert)
    return alerts
