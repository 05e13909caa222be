"""The desk's part of `/openapi.json` (`service/web/openapi.py` puts it in): the trade view's added
fields, the paged reads, the day's CSV, the stored alerts, the summary, a trade's price line, and the
rules a 409 names."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.charges.trades import BREAKDOWN_FIELDS
from service.web.alerts_api import ALERT_STATUSES
from service.web.csv_export import CSV_COLUMNS
from service.web.queries import ID_MAX, LIMIT_MAX
from service.web.views import MONEY_FIELDS

__all__ = ["CONFLICT_RULES", "PAGING", "TRADE_VIEW_FIELDS", "desk_paths"]

_MONEY = {"type": ["integer", "null"], "description": "paise"}
_RUPEES = {"type": ["string", "null"], "pattern": r"^-?[0-9]+\.[0-9]{2}$",
           "description": "the paise field beside it as a rupee decimal (\"812.35\", \"-0.40\"); null when it is null"}
TRADE_VIEW_FIELDS: dict[str, Any] = {
    "ltp": {**_MONEY, "description": "the latest tick tickguard holds for the instrument, paise"},
    "open_pnl": {**_MONEY, "description": "open quantity × (ltp − entry), signed by side; null with nothing open or no price"},
    "exit_reason": {"type": ["string", "null"], "description": "why it is exiting or was closed: STOP, TARGET, TRAIL, "
                                                             "SQUARE_OFF, SIGNAL, MANUAL, BROKER_STOP, …"},
    "gross_pnl": {**_MONEY, "description": "an open trade: realised + what is open at ltp (null without a price); a "
                                          "finished one: its realised P&L"},
    "charges": {"type": ["object", "null"], "description": "charges on its executed orders (an open trade: what is "
                "open charged as an exit at ltp), paise, with `_rupees` beside each; null: nothing executed, no "
                "price yet, or not covered (`charges_why`)",
                "properties": {**{name: {"type": "integer"} for name in BREAKDOWN_FIELDS},
                               **{f"{name}_rupees": _RUPEES for name in BREAKDOWN_FIELDS},
                               "unverified": {"type": "array", "items": {"type": "string"},
                                              "description": "charges computed from a rate no source states"}}},
    "net_pnl": {**_MONEY, "description": "gross_pnl − charges.total"},
    "charges_why": {"type": ["string", "null"], "description": "why there are no charges, when there is a reason"},
    **{f"{name}_rupees": _RUPEES for name in MONEY_FIELDS},
}
CONFLICT_RULES = ("halt: new entries are halted (operator); window: outside the entry window; limits: a daily loss "
                  "limit or an open-trades maximum reached; accounts: the account is not listed or its login is "
                  "unknown; position: nothing to close or already at the size asked")
_DAY = {"name": "day", "in": "query", "description": "the IST trading day, YYYY-MM-DD (empty: as if left out)",
        "schema": {"anyOf": [{"type": "string", "format": "date"}, {"const": ""}]}}
PAGING = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}},
          {"name": "before", "in": "query", "description": "the reply's `next`: the page after the one that gave it",
           "schema": {"type": "integer", "minimum": 0, "maximum": ID_MAX}}, _DAY]
NEXT = {"type": ["integer", "null"], "description": "pass as `before` for the next page; null after the last"}
_ALERT = {"type": "object", "required": ["id", "received_ms", "source", "status", "reason", "body", "trade_ids"],
          "properties": {"id": {"type": "integer"}, "received_ms": {"type": "integer"}, "source": {"type": "string"},
                         "status": {"enum": list(ALERT_STATUSES)}, "reason": {"type": "string"},
                         "body": {"type": "object", "description": "as received; secret-named fields and the secret read ***"},
                         "trade_ids": {"type": "array", "items": {"type": "integer"}}}}
_MONEY_PAIR = ("realised_pnl", "open_pnl", "charges", "net_pnl")
_SUMMARY = {"type": "object", "required": ["day", *_MONEY_PAIR, "uncharged", "open_trades", "unprotected", "exits_by_reason", "halts", "stream"],
            "properties": {
                "day": {"type": "string", "description": "today, IST"},
                "realised_pnl": {"type": "integer", "description": "the day's realised P&L over every account, paise"},
                "open_pnl": {**_MONEY, "description": "open trades at their latest prices; null while one has no price"},
                "charges": {"type": "integer", "description": "charges of the trades closed today and of the open "
                            "trades (what is open charged as an exit at its latest price), paise"},
                "net_pnl": {**_MONEY, "description": "realised + open − charges; null while an open trade has no price"},
                "uncharged": {"type": "integer", "description": "trades the charges schedule does not cover (not in charges)"},
                **{f"{name}_rupees": _RUPEES for name in _MONEY_PAIR},
                "open_trades": {"type": "integer"}, "unprotected": {"type": "integer"},
                "exits_by_reason": {"type": "object", "additionalProperties": {"type": "integer"},
                                    "description": "trades closed today by exit reason"},
                "halts": {"type": "object", "properties": {
                    "operator": {"type": "boolean"}, "reason": {"type": ["string", "null"]},
                    "accounts": {"type": "object", "additionalProperties": {"type": "string"}, "description": "halted: why"},
                    "strategies": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "stream": {"type": "object", "properties": {
                    "state": {"enum": ["live", "stale", "down"]}, "last_tick_ms": {"type": ["integer", "null"]},
                    "reason": {"type": ["string", "null"]},
                    "sockets": {"type": "array", "description": "each smart-stream socket opened (up to 3)",
                                "items": {"type": "object", "required": ["socket", "up", "said"], "properties": {
                                    "socket": {"type": "integer"}, "up": {"type": "boolean"},
                                    "said": {"type": "string", "description": "its last word"}}}}}}}}
_PRICES = {"type": "object", "required": ["trade_id", "points", "levels"], "properties": {
    "trade_id": {"type": "integer"},
    "points": {"type": "array", "description": "[at_ms, ltp paise] of the basis instrument, oldest first",
               "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}},
    "levels": {"type": "object", "properties": {name: _MONEY for name in
                                                ("entry", "stop", "target", "trail_activation", "exit")}}}}


def desk_paths(reply: Callable[..., dict[str, Any]], secured: Callable[..., dict[str, Any]],
               trade_id: dict[str, Any]) -> dict[str, Any]:
    return {
        "/trades.csv": {"get": secured(
            "tradesCsv", "A day's trades as CSV (today by default), one row each, oldest first", {
                "200": {"description": f"columns: {', '.join(CSV_COLUMNS)}; prices in rupees, created in IST",
                        "content": {"text/csv": {"schema": {"type": "string"}}}},
                "422": reply("day is not YYYY-MM-DD")},
            parameters=[_DAY])},
        "/alerts": {"get": secured(
            "listAlerts", "Alerts as stored, newest first", {
                "200": reply("alerts", {"type": "object", "required": ["alerts", "next"], "properties": {
                    "alerts": {"type": "array", "items": _ALERT}, "next": NEXT}}),
                "422": reply("an unknown status, a limit out of range, a bad cursor or day")},
            parameters=[{"name": "status", "in": "query", "schema": {"enum": list(ALERT_STATUSES)}},
                        {"name": "source", "in": "query", "schema": {"type": "string"},
                         "description": "opentrade or chartink"}, *PAGING])},
        "/desk/summary": {"get": secured(
            "deskSummary", "The day at a glance (also pushed on the feed as `summary`)",
            {"200": reply("the summary", _SUMMARY)})},
        "/trades/{trade_id}/prices": {"get": secured(
            "tradePrices", "The trade's basis instrument's recent prices (up to 2000, at most 4 a second) and levels", {
                "200": reply("the price line", _PRICES), "404": reply("no such trade"),
                "422": reply("not a trade id, or since_ms not a whole number")},
            parameters=[trade_id, {"name": "since_ms", "in": "query",
                                   "schema": {"type": "integer", "minimum": 0, "maximum": 10**16 - 1},
                                   "description": "only points after this time"}])},
    }
