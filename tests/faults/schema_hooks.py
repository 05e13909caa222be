"""Schemathesis hooks for the runs against tickguard's own OpenAPI document (the quick one in
tests/faults/test_api_schema.py, the long one in tests/faults/full/schema.py, which loads this module
through SCHEMATHESIS_HOOKS).

The schema states every field exactly as the validator reads it. What JSON Schema cannot state is
what depends on data the service holds: an instrument listed in the instrument master, an account in
the account list, a stop that lands above zero at the alert's price, as many Chartink prices as stocks
and a signal for a scan not in CHARTINK_SCANS. A *positive* case (one the schema calls valid) is moved
inside those facts here — the listed SBIN or NIFTY, the demo account, small stop distances — keeping
every other choice the generator made; the service answers it with a 2xx (or a documented 409). A
negative case is sent exactly as generated and must be refused. Schemathesis revalidates a case a hook
changed, so a shaped case is still judged by the schema, not by this module.
"""
from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import GenerationMode

from service.alerts.parse import PERCENT_TYPES, WORDS

__all__ = ["shape"]

EQUITY_PRICE = 5000  # any stop this module leaves (≤ 5 points, ≤ ₹5, ≤ 0.5 %) lands above zero here
NIFTY_PRICE = 24000  # the paper universe's NIFTY: its option chain is listed around this strike
EQUITIES = ("SBIN", "NSE:SBIN", "sbin", "SBIN-EQ", "RELIANCE")
ACCOUNT = "DEMO"  # the paper desk's demo account (DEMO_ACCOUNT's default)


def _pick(choices: tuple[str, ...], seed: Any) -> str:
    return choices[len(repr(seed)) % len(choices)]


def _like(old: Any, new: float) -> Any:
    """`new` in the form the generator chose for `old`: decimal text stays text."""
    return f"{new:g}" if isinstance(old, str) else new


def _distance(value: Any, types: str) -> None:
    if not isinstance(value, dict) or "value" not in value:
        return
    kind = WORDS[types].read(value.get("type"))
    value["value"] = _like(value["value"], 0.5 if kind in PERCENT_TYPES else 5)


def _alert(body: dict[str, Any], query: dict[str, Any]) -> None:
    option = WORDS["type"].read(body.get("type")) == "option"
    body["symbolname"] = "NIFTY" if option else _pick(EQUITIES, body.get("strategyname"))
    if body.get("exchange") is not None:
        body["symbolname"] = body["symbolname"].split(":")[-1]  # the exchange field names it already
    body["price"] = _like(body["price"], NIFTY_PRICE if option else EQUITY_PRICE)
    for field, fixed in (("exchange", "NSE"), ("accounts", [ACCOUNT])):
        if body.get(field) is not None:
            body[field] = fixed
    for field in ("stoploss", "target"):
        _distance(body.get(field), "stop_type")
    if isinstance(body.get("trail"), dict):
        _distance(body["trail"], "trail_type")
        _distance(body["trail"].get("activation"), "trail_type")
    if option:
        if body.get("quantity") is not None:
            body["quantity"] = None  # a multiple of a lot size the schema cannot know
        if body.get("lots") is not None:
            body["lots"] = _like(body["lots"], 1)
        if isinstance(body.get("option"), dict):
            spec = body["option"]
            if spec.get("expiry") is not None and WORDS["option.expiry"].read(spec["expiry"]) not in ("current", "next"):
                spec["expiry"] = "current"  # a listed expiry (a weekly chain has no `monthly` beyond it always)
            strike = spec.get("strike")
            if strike is not None and WORDS["option.strike"].read(strike) not in ("ATM", "ITM1", "OTM1", "ITM2", "OTM2"):
                spec["strike"] = "ATM"


def _chartink(body: dict[str, Any], query: dict[str, Any]) -> None:
    prices = body.get("trigger_prices")
    count = len(prices) if isinstance(prices, list) else str(prices).count(",") + 1
    stocks = [("SBIN", "RELIANCE")[i % 2] for i in range(count)]
    body["stocks"] = stocks if isinstance(body.get("stocks"), list) else ",".join(stocks)
    body["trigger_prices"] = [_like(p, 800) for p in prices] if isinstance(prices, list) else ",".join(["800"] * count)
    query.setdefault("signal", "buy")  # no CHARTINK_SCANS in these runs: the signal comes from the URL


SHAPES = {("POST", "/opentrade"): _alert, ("POST", "/chartink"): _chartink}


def shape(case: Any) -> Any:
    """`case` moved inside the service's data when it is a positive case of a shaped operation."""
    meta = case.meta
    shaper = SHAPES.get((case.method.upper(), case.operation.path))
    if shaper is None or meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
        return case
    if isinstance(case.body, dict):
        if case.query is None:
            case.query = {}
        shaper(case.body, case.query)
    return case


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    return shape(case)
