"""The OpenAPI description served at /openapi.json, built from the definitions the service validates with.

The alert's schema comes from the tables of `service/alerts/parse.py` (its fields, words and amounts, each
a `service/alerts/fields.py` definition that also reads the value), the Chartink body's from the same
amounts, the trade's from its msgspec struct, and the query and path bounds from the constants the
routes check. So a request is valid by this document exactly when its fields pass the validator;
what the document cannot state — a symbol that is listed, an account that exists, a stop that lands
above zero at the alert's price, as many Chartink prices as stocks — is said in the descriptions and
answered with a 422 (or 404, 409, 503 by state) that names the field.
"""
from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.alerts.fields import NON_BLANK, PRICE, SPACE, WHOLE, Words
from service.alerts.parse import AMOUNTS, CLOSING_WORDS, FIELDS, PERCENT_TYPES, TEXT_LIMIT, WORDS
from service.store import OrderRecord
from service.trades import TradeRecord
from service.web.api import STATES, TRADE_ID_MAX
from service.web.readiness import NEEDS_RUNTIME
from service.web.openapi_desk import CONFLICT_RULES, NEXT, PAGING, TRADE_VIEW_FIELDS, desk_paths
from service.web.bodies import MAX_BODY_BYTES

__all__ = ["ALERT", "SPEC", "document"]

NULL = {"type": "null"}


def optional(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """`schema`, or null: an optional field sent as null is the field left out."""
    branches = list(schema["anyOf"]) if set(schema) == {"anyOf"} else [schema]
    return {"anyOf": [*branches, NULL], **({"description": description} if description else {})}


def text(limit: int | None = TEXT_LIMIT, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": NON_BLANK, **({"maxLength": limit} if limit else {}), **extra}


def distance(words: Words, description: str) -> dict[str, Any]:
    """`{"type", "value"}`: a percentage type takes a value below 100, the others up to 1e9."""
    branches = []
    for group, amount in (([w for w in words.words if w not in PERCENT_TYPES], AMOUNTS["distance"]),
                          ([w for w in words.words if w in PERCENT_TYPES], AMOUNTS["percent"])):
        if group:
            branches.append({"type": "object", "additionalProperties": False, "required": ["type", "value"],
                             "properties": {"type": Words(tuple(group)).schema(), "value": amount.schema()}})
    return {"anyOf": branches, "description": description}


def _trail() -> dict[str, Any]:
    base = distance(WORDS["trail_type"], "")
    for branch in base["anyOf"]:
        branch["properties"]["activation"] = optional(distance(WORDS["trail_type"], "trailing starts this far in profit"))
    return {"anyOf": base["anyOf"], "description": "a trailing stop (points or entry_pct), optionally activated later"}


def _word(key: str, *words: str) -> dict[str, Any]:
    return Words(words, upper=WORDS[key].upper).schema()


_STRIKE_NUMBER = AMOUNTS["option.strike"].schema()["anyOf"][0]  # a strike is a number, not text
ALERT = {
    "type": "object", "additionalProperties": False,
    "required": ["symbolname", "signal", "price", "type", "strategyname"],
    "description": "Every field but the five required may be left out or sent as null. Words ignore case and "
                   "surrounding whitespace; numbers may be sent as decimal text (`\"812.50\"`).",
    "properties": {
        "symbolname": text(description="NSE:SBIN, SBIN, SBIN-EQ, NIFTY, a contract such as NIFTY25NOV2524000CE, or a "
                                       "TradingView spelling; an instrument not in the instrument master is a 422"),
        "signal": WORDS["signal"].schema(description="buy, sell, exit, or Chartink's short / cover"),
        "price": AMOUNTS["price"].schema(description="the price the alert fired at (an option alert: the underlying's), "
                                                     "at least one paisa"),
        "type": WORDS["type"].schema(),
        "strategyname": text(),
        "token": optional({"type": "string"}, "the webhook secret, for senders that cannot set headers"),
        "id": optional(text(None), f"idempotency key of any length (within the {MAX_BODY_BYTES // 1024} KiB body): "
                                   "a repeat within 24 h is a duplicate"),
        "position_size": optional(AMOUNTS["position_size"].schema(),
                                  "target net position (units; lots for options), e.g. {{strategy.position_size}}"),
        "exchange": optional(WORDS["exchange"].schema()),
        "product": optional(WORDS["product"].schema(), "default INTRADAY; options trade INTRADAY or CARRYFORWARD"),
        "quantity": optional(AMOUNTS["quantity"].schema(), "units (a multiple of the lot size for options)"),
        "lots": optional(AMOUNTS["lots"].schema(), "lots, instead of quantity"),
        "percent": optional(AMOUNTS["close_percent"].schema(),
                            "exit (or a close_only sell, or cover): close this share of the open position, rounded "
                            "down to whole units or lots, at least one"),
        "stoploss": optional(distance(WORDS["stop_type"], "how far the stop sits from the entry")),
        "target": optional(distance(WORDS["stop_type"], "how far the target sits from the entry")),
        "trail": optional(_trail()),
        "stop_basis": optional(WORDS["stop_basis"].schema(), "option alerts only: underlying keeps the stop on the "
                                                             "underlying's price"),
        "option": optional({"type": "object", "additionalProperties": False, "properties": {
            "expiry": optional(WORDS["option.expiry"].schema(description="current | next | monthly | DDMMMYYYY")),
            "strike": optional({"anyOf": [_STRIKE_NUMBER, WORDS["option.strike"].schema()]},
                               "ATM | ITMn | OTMn (n = 1-99) | a strike in rupees"),
            "right": optional(WORDS["option.right"].schema(), "CE | PE; default from the signal"),
        }}, "option alerts only"),
        "accounts": optional({"type": "array", "minItems": 1, "items": text(None)},
                             "trade on these account ids only (each must be listed)"),
    },
    "allOf": [
        {"not": {"required": ["quantity", "lots"]}, "description": "quantity or lots, not both"},
        {"not": {"anyOf": [{"required": ["percent", "quantity"]}, {"required": ["percent", "lots"]},
                           {"required": ["percent", "position_size"]}]},
         "description": "percent alone: not with quantity, lots or position_size"},
        {"if": {"required": ["percent"], "properties": {"percent": {"not": NULL}}},
         "then": {"required": ["signal"], "properties": {"signal": _word("signal", *CLOSING_WORDS)}},
         "description": "percent closes a share of a position: exit, sell or cover"},
        {"if": {"required": ["option"], "properties": {"option": {"not": NULL}}},
         "then": {"properties": {"type": _word("type", "option")}}, "description": "an option block needs type option"},
        {"if": {"required": ["stop_basis"], "properties": {"stop_basis": _word("stop_basis", "underlying")}},
         "then": {"properties": {"type": _word("type", "option")}}, "description": "only options keep a stop on the underlying"},
        {"if": {"required": ["type"], "properties": {"type": _word("type", "option")}},
         "then": {"properties": {"product": {"not": _word("product", "DELIVERY")}}},
         "description": "options are not bought for delivery"},
    ],
}
assert set(ALERT["properties"]) == FIELDS, "every alert field is described"


def _listed(item: str) -> str:
    """A comma-separated list of `item`s, whitespace around each ignored."""
    one = f"[{SPACE}]*(?:{item})[{SPACE}]*"
    return f"^{one}(?:,{one})*$"


_STOCK = f"[^,{SPACE}](?:[^,]{{0,{TEXT_LIMIT - 2}}}[^,{SPACE}])?"
_STOCK_ITEM = {"type": "string", "pattern": f"^[{SPACE}]*[^{SPACE}](?:[\\s\\S]{{0,{TEXT_LIMIT - 2}}}[^{SPACE}])?[{SPACE}]*$"}


def _chartink(form: bool) -> dict[str, Any]:
    stocks: dict[str, Any] = {"type": "string", "pattern": _listed(_STOCK)}
    prices: dict[str, Any] = {"type": "string", "pattern": _listed(PRICE.text)}
    if not form:
        stocks = {"anyOf": [stocks, {"type": "array", "minItems": 1, "items": {"anyOf": [_STOCK_ITEM, {"type": "number"}]}}]}
        prices = {"anyOf": [prices, {"type": "array", "minItems": 1, "items": PRICE.schema()}]}
    return {"type": "object", "required": ["stocks", "trigger_prices", "triggered_at", "scan_name"], "properties": {
        "stocks": {**stocks, "description": "symbols, 1-64 characters each; each must be listed"},
        "trigger_prices": {**prices, "description": "one price per stock, in order, at least one paisa each"},
        "triggered_at": text(None, description="Chartink's time of day, e.g. 2:34 pm"),
        "scan_name": text(None, description="matched against CHARTINK_SCANS ignoring case and spacing"),
        "scan_url": {"description": "ignored"}, "alert_name": {"description": "ignored"},
        "webhook_url": {"description": "ignored"}}}


def _json(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"application/json": {"schema": schema or {"type": "object"}}}


_ERRORS_REF = {"$ref": "#/components/schemas/Errors"}
_ERRORS = {"type": "object", "required": ["errors"], "properties": {
    "alert_id": {"type": "integer", "description": "a refused alert's id (409, 503)"},
    "errors": {"type": "array", "items": {"type": "object", "required": ["field", "reason"],
                                          "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}}}}


def reply(description: str, schema: dict[str, Any] | None = None, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or _ERRORS_REF}}}


UNAUTHORISED = reply("no or wrong webhook secret (header, query or, on /opentrade, body token)")
NOT_SIGNED_IN = reply("no operator: neither a dashboard session nor an operator's API token (the webhook secret opens "
                      "only the alert routes)")
CROSS_ORIGIN = reply("a dashboard session from another origin, or a viewer (viewers watch; traders close and halt)")
TOO_LARGE = reply(f"body over {MAX_BODY_BYTES} bytes")
DISCONNECTED = reply("the client hung up before the body ended")
_ids = {"type": "array", "items": {"type": "integer"}}
_ACCEPTED = {"type": "object", "required": ["alert_id", "trades", "closing"], "properties": {
    "alert_id": {"type": "integer"}, "trades": _ids, "closing": _ids,
    "notes": {"type": "array", "items": {"type": "string"}, "description": "why an account opened nothing"},
    "refused": {"type": "array", "items": {"type": "object", "properties": {"leg": {}, "reason": {"type": "string"}}},
                "description": "legs refused while others went ahead"},
    "reducing": {"type": "array", "items": {"type": "object", "required": ["trade", "quantity"], "properties": {
        "trade": {"type": "integer"}, "quantity": {"type": "integer"}}},
        "description": "trades of which a part is being exited (the rest stays open and guarded)"}}}
_GROUP = {"type": "object", "required": ["halted", "realised"], "properties": {
    "halted": {"type": "boolean"}, "realised": {"type": "integer", "description": "today's realised P&L"},
    "reason": {"type": "string"}, "at_ms": {"type": "integer"}, "pnl": {"type": "integer", "description": "P&L at the halt"},
    "max_loss": {"type": "integer"}}}
HALTS = {
    "type": "object", "required": ["halted", "day", "global", "accounts", "strategies", "halts"],
    "properties": {
        "halted": {"type": "boolean", "description": "the operator's halt"},
        "day": {"type": "string", "description": "today, IST (YYYY-MM-DD)"},
        "global": {"type": "object", "properties": {"halted": {"type": "boolean"}, "reason": {"type": ["string", "null"]},
                                                    "at_ms": {"type": ["integer", "null"]}}},
        "accounts": {"type": "object", "additionalProperties": _GROUP},
        "strategies": {"type": "object", "additionalProperties": _GROUP},
        "halts": {"type": "array", "description": "today's halts and any still holding, with reason, time and lift time",
                  "items": {"type": "object", "properties": {
                      "scope": {"enum": ["global", "account", "strategy"]}, "key": {"type": "string"}, "day": {"type": "string"},
                      "reason": {"type": "string"}, "at_ms": {"type": "integer"}, "pnl": {"type": ["integer", "null"]},
                      "max_loss": {"type": ["integer", "null"]}, "lifted_ms": {"type": ["integer", "null"]}}}},
    },
}
_DUPLICATE = {"type": "object", "required": ["alert_id", "trades", "duplicate"], "properties": {
    "alert_id": {"type": "integer"}, "trades": _ids, "duplicate": {"const": True}}}
_CHARTINK_RESULT = {"type": "object", "required": ["alerts"], "properties": {"alerts": {"type": "array", "items": {
    "type": "object", "required": ["symbolname", "status"],
    "properties": {"symbolname": {"type": "string"}, "status": {"type": "integer"}}}}}}
_TRADE_ID = {"name": "trade_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 0, "maximum": TRADE_ID_MAX}}
_TRADE_REF = {"$ref": "#/components/schemas/TradeView"}
_LOGIN = {"type": "object", "properties": {"name": {"type": "string"}, "password": {"type": "string"}}}
_WHO = {"type": "object", "required": ["authenticated", "operator", "role"], "properties": {
    "authenticated": {"type": "boolean"}, "operator": {"type": ["string", "null"]},
    "role": {"enum": ["trader", "viewer", None]}}}
_WEBHOOK = [{"webhookSecret": []}, {"tokenQuery": []}, {"bearer": []}]
_OPERATOR = [{"operatorToken": []}, {"session": []}]
_, _COMPONENTS = msgspec.json.schema_components([TradeRecord, OrderRecord], ref_template="#/components/schemas/{name}")
# The document calls the stored trade `Trade`, as the API always has (its struct is `TradeRecord`), and
# promises of its `spec` only that it is an object: what a trade was opened with is the service's own
# bookkeeping (`service.trades.TradeSpec`), free to grow, not an interface.
_INTERNAL = {"TradeSpec", "Basis", "SizedFor"}


def _published(name: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if name != "TradeRecord":
        return name, schema
    properties = {**schema["properties"], "spec": {"type": "object", "default": {}}}
    return "Trade", {**schema, "title": "Trade", "properties": properties}


_COMPONENTS = dict(_published(name, schema) for name, schema in _COMPONENTS.items() if name not in _INTERNAL)


_HEALTH = {"type": "object", "required": ["status", "ready", "mode", "halted"],
           "properties": {"ready": {"type": "boolean"}, "reason": {"type": "string"},
                          "warnings": {"type": "array", "items": {"type": "object"}}}}


def secured(operation_id: str, summary: str, responses: dict[str, Any], **operation: Any) -> dict[str, Any]:
    """An operator's route: a session or an operator's API token."""
    return {"operationId": operation_id, "summary": summary, "security": _OPERATOR, **operation,
            "responses": {**responses, "401": NOT_SIGNED_IN}}


def webhook(operation_id: str, summary: str, responses: dict[str, Any], **operation: Any) -> dict[str, Any]:
    """An alert route: the webhook secret."""
    return {"operationId": operation_id, "summary": summary, "security": _WEBHOOK, **operation,
            "responses": {**responses, "401": UNAUTHORISED}}


def _links(pointer: str) -> dict[str, Any]:
    """From a reply holding trade ids at `pointer` to the routes of one trade."""
    return {"links": {name: {"operationId": name, "parameters": {"trade_id": f"$response.body#{pointer}"}}
                      for name in ("getTrade", "closeTrade")}}


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "tickguard", "version": "0.1.0", "description": (
        "Trade alerts to Angel One orders; every open trade guarded against its stop from the tick stream. "
        "Errors are `{\"errors\": [{\"field\", \"reason\"}]}`. The live feed is a WebSocket at `/ws/trades` "
        "(session cookie or `?token=`), described in the README.")},
    "components": {
        "securitySchemes": {
            "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret"},
            "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "the webhook secret as a Bearer token"},
            "operatorToken": {"type": "http", "scheme": "bearer",
                              "description": "an operator's API token (`tickguard operator token NAME`: tgo_…)"},
            "session": {"type": "apiKey", "in": "cookie", "name": "tickguard_session",
                        "description": "an operator's dashboard session (POST /login)"},
        },
        "schemas": {"Alert": ALERT, "Errors": _ERRORS, **_COMPONENTS, "TradeView": {"allOf": [
            {"$ref": "#/components/schemas/Trade"},
            {"type": "object", "required": ["open_quantity", "broker_stop", *TRADE_VIEW_FIELDS], "properties": {
                "open_quantity": {"type": "integer"}, **TRADE_VIEW_FIELDS,
                "broker_stop": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
                    "trigger": {"type": "integer"}, "limit": {"type": "integer"}, "quantity": {"type": "integer"},
                    "status": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
                    "why": {"type": "string"}}}]}}}]}},
    },
    "paths": {
        "/opentrade": {"post": webhook(
            "openTrade", "Take an alert", {
                "202": {**reply("stored; execution follows", _ACCEPTED), **_links("/trades/0")},
                "200": reply("a duplicate: the original alert's ids", _DUPLICATE),
                "400": DISCONNECTED, "403": reply("the client's address is not in WEBHOOK_ALLOWLIST"),
                "409": reply(f"refused by a rule, stored as refused; `field` names it ({CONFLICT_RULES})"),
                "413": TOO_LARGE,
                "422": reply("invalid alert, nothing stored: a field out of its schema, an instrument or account that "
                             "is not listed, or a stop that would not land above zero at the alert's price"),
                "503": reply("the account service is down: entries refused (exits still run), stored as refused"),
            },
            description="JSON whatever the Content-Type says.",
            requestBody={"required": True, "content": _json({"$ref": "#/components/schemas/Alert"})})},
        "/chartink": {"post": webhook(
            "chartink", "Take a Chartink scan alert: one alert per stock", {
                "202": reply("at least one stock accepted; per-stock results", _CHARTINK_RESULT),
                "200": reply("every stock a duplicate", _CHARTINK_RESULT),
                "400": DISCONNECTED, "403": reply("the client's address is not in WEBHOOK_ALLOWLIST"),
                "409": reply("no stock accepted: the first stock's refusal, its rule in `field` as on /opentrade",
                             _CHARTINK_RESULT),
                "413": TOO_LARGE,
                "422": reply("invalid body (nothing stored), or no stock accepted and the first stock's error was a "
                             "422 (per-stock results)", {"anyOf": [_ERRORS_REF, _CHARTINK_RESULT]}),
                "503": reply("CHARTINK_SCANS unreadable, or no stock accepted and the account service is down",
                             {"anyOf": [_ERRORS_REF, _CHARTINK_RESULT]}),
            },
            description="JSON whatever the Content-Type says; a form-encoded body when it is not JSON and the "
                        "Content-Type says form. A scan not in CHARTINK_SCANS needs ?signal=.",
            parameters=[{"name": "signal", "in": "query", "schema": WORDS["signal"].schema()},
                        {"name": "strategy", "in": "query", "schema": text()}],
            requestBody={"required": True, "content": {
                **_json(_chartink(form=False)), "application/x-www-form-urlencoded": {"schema": _chartink(form=True)}}})},
        "/trades": {"get": secured(
            "listTrades", "Trades, newest first, a page at a time", {
                "200": reply("trades", {"type": "object", "required": ["trades", "next"], "properties": {
                    "trades": {"type": "array", "items": _TRADE_REF}, "next": NEXT}}),
                "422": reply("an unknown state, a limit out of range, a bad cursor or day")},
            parameters=[
                {"name": "state", "in": "query", "description": f"comma-separated, any of {', '.join(STATES.words)}",
                 "schema": {"type": "string", "pattern": _listed(f"(?:{STATES.core})?")}},
                {"name": "strategy", "in": "query", "schema": {"type": "string"}},
                {"name": "account", "in": "query", "schema": {"type": "string"}}, *PAGING])},
        "/trades/{trade_id}": {"get": secured(
            "getTrade", "One trade with its orders and events", {
                "200": reply("the trade", {"type": "object", "required": ["trade", "orders", "events"], "properties": {
                    "trade": _TRADE_REF, "orders": {"type": "array", "items": {"$ref": "#/components/schemas/OrderRecord"}},
                    "events": {"type": "array", "items": {"type": "object"}}}}),
                "404": reply("no such trade"), "422": reply("not a trade id")},
            parameters=[_TRADE_ID])},
        "/trades/{trade_id}/close": {"post": secured(
            "closeTrade", "Close a trade now (a pending entry is cancelled), or part of it with `quantity`", {
                "202": reply("closing (all of it), or reducing (the part asked; the rest stays guarded)", {
                    "type": "object", "required": ["trade_id", "closing"],
                    "properties": {"trade_id": {"type": "integer"}, "closing": {"type": "boolean"},
                                   "reducing": {"type": "integer"}}}),
                "400": DISCONNECTED, "403": CROSS_ORIGIN, "404": reply("no such trade"), "413": TOO_LARGE,
                "409": reply("field close: nothing to close (the trade is not open), already closing, or a part "
                             "asked of a trade that is not OPEN"),
                "422": reply("not a trade id, or a quantity that is not whole lots or more than is open")},
            parameters=[_TRADE_ID],
            requestBody={"required": False, "content": _json({
                "type": "object", "additionalProperties": False, "properties": {
                    "quantity": optional(WHOLE.schema(), "units to close (whole lots); all of it when left out "
                                                         "or when it is all that is open")}})})},
        **desk_paths(reply, secured, _TRADE_ID),
        "/halt": {
            "get": secured("getHalt", "Every halt: the operator's, and today's daily-loss halts and realised P&L per "
                                      "account and strategy (paise)", {"200": reply("halts", HALTS)}),
            "post": secured(
                "setHalt", "Halt or resume entries (optionally flatten)", {
                    "200": reply("the new state", {"type": "object", "required": ["halted", "closing"],
                                                   "properties": {"halted": {"type": "boolean"}, "closing": _ids}}),
                    "400": DISCONNECTED, "403": CROSS_ORIGIN, "413": TOO_LARGE,
                    "422": reply("not {\"halted\": bool, \"flatten\"?: bool, \"reason\"?: text}")},
                requestBody={"required": True, "content": _json({
                    "type": "object", "additionalProperties": False, "required": ["halted"],
                    "properties": {"halted": {"type": "boolean"}, "flatten": {"type": "boolean"},
                                   "reason": {"type": "string", "maxLength": 200,
                                              "description": "why (shown in GET /halt and on the dashboard)"}}})})},
        "/healthz": {"get": {"summary": "Readiness; needs no secret. `warnings`: exchanges in use without a holiday "
                                    "calendar for the current year, special sessions whose times are still unknown",
                             "responses": {"200": reply("ready", _HEALTH), "503": reply(
                                 "not ready: `status` starting | waiting (the broker not reached yet) | failed, "
                                 "`reason` says why", _HEALTH)}}},
        "/metrics": {"get": secured("metrics", "Prometheus metrics", {"200": {
            "description": "text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}})},
        "/openapi.json": {"get": secured("openapi", "This document", {"200": reply("OpenAPI 3.1", {"type": "object"})})},
        "/": {"get": {"summary": "The dashboard (operators log in with their name and password)", "responses": {"200": {
            "description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/login": {"post": {
            "summary": "An operator logs in: sets an HttpOnly, SameSite=Strict session cookie (kept across restarts)",
            "requestBody": {"required": False, "content": {
                **_json(_LOGIN), "application/x-www-form-urlencoded": {"schema": _LOGIN}}},
            "responses": {
                "200": reply("logged in (a JSON request)", _WHO),
                "303": {"description": "a form: to / when logged in, to /?login=failed when not"},
                "401": reply("unknown operator or wrong password (a JSON request)"),
                "429": reply("too many failed logins from this address: wait `Retry-After` seconds")}}},
        "/logout": {"post": {"summary": "End the session", "responses": {
            "200": reply("logged out (a JSON request)", {"type": "object", "properties": {"authenticated": {"const": False}}}),
            "303": {"description": "logged out; to / (a form or no body)"}}}},
        "/session": {"get": {"summary": "Who this browser (or API token) is signed in as", "responses": {
            "200": reply("state", _WHO)}}},
    },
}


for _path, _item in SPEC["paths"].items():  # the routes that wait for the start-up (service/web/readiness.py)
    for _operation in _item.values() if _path.startswith(NEEDS_RUNTIME) else ():
        _was = _operation["responses"].get("503", {}).get("description")
        _operation["responses"]["503"] = reply(f"{_was + '; or ' if _was else ''}not ready: tickguard is still "
                                               "starting (the broker not reached yet; GET /healthz says why)")


async def document(request: Request, runtime: Any) -> Response:
    """`GET /openapi.json` (for operators, like every route but `/healthz`, the page and the alert routes)."""
    return JSONResponse(SPEC)
