"""The OpenAPI description served at /openapi.json (kept beside the code it describes)."""
from __future__ import annotations

__all__ = ["SPEC"]

_DISTANCE = {
    "type": "object", "additionalProperties": False, "required": ["type", "value"],
    "properties": {"type": {"enum": ["points", "entry_pct", "rupees", "fund_pct"]}, "value": {"type": "number", "exclusiveMinimum": 0}},
}
_TRAIL_DISTANCE = {
    "type": "object", "additionalProperties": False, "required": ["type", "value"],
    "properties": {"type": {"enum": ["points", "entry_pct"]}, "value": {"type": "number", "exclusiveMinimum": 0}},
}
_ERRORS = {
    "type": "object", "required": ["errors"],
    "properties": {"errors": {"type": "array", "items": {
        "type": "object", "required": ["field", "reason"],
        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}}},
}
ALERT = {
    "type": "object", "additionalProperties": False,
    "required": ["symbolname", "signal", "price", "type", "strategyname"],
    "properties": {
        "symbolname": {"type": "string", "maxLength": 64},
        "signal": {"enum": ["buy", "sell", "exit", "short", "cover"], "description": "case-insensitive"},
        "price": {"type": "number", "exclusiveMinimum": 0},
        "type": {"enum": ["equity", "option"]},
        "strategyname": {"type": "string", "maxLength": 64},
        "token": {"type": "string", "description": "the webhook secret, for senders that cannot set headers"},
        "id": {"type": "string", "maxLength": 64, "description": "idempotency key: a repeat within 24 h is a duplicate"},
        "position_size": {"type": "number", "description": "target net position (units; lots for options)"},
        "exchange": {"enum": ["NSE", "BSE", "NFO", "BFO", "MCX", "CDS"]},
        "product": {"enum": ["INTRADAY", "DELIVERY", "CARRYFORWARD"]},
        "quantity": {"type": "integer", "minimum": 1},
        "lots": {"type": "integer", "minimum": 1},
        "stoploss": _DISTANCE,
        "target": _DISTANCE,
        "trail": {**_TRAIL_DISTANCE, "properties": {**_TRAIL_DISTANCE["properties"], "activation": _TRAIL_DISTANCE}},
        "stop_basis": {"enum": ["option", "underlying"]},
        "option": {"type": "object", "additionalProperties": False, "properties": {
            "expiry": {"type": "string", "description": "current | next | monthly | DDMMMYYYY"},
            "strike": {"type": ["string", "number"], "description": "ATM | ITMn | OTMn | a strike"},
            "right": {"enum": ["CE", "PE"]}}},
        "accounts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
}
_SECRET = [{"webhookSecret": []}, {"tokenQuery": []}]
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

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "tickguard", "version": "0.1.0",
             "description": "Trade alerts to Angel One orders; every open trade guarded against its stop from the tick stream."},
    "components": {
        "securitySchemes": {
            "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Webhook-Secret"},
            "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
        },
        "schemas": {"Alert": ALERT, "Errors": _ERRORS},
    },
    "paths": {
        "/opentrade": {"post": {
            "summary": "Take an alert", "security": _SECRET,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Alert"}}}},
            "responses": {
                "202": {"description": "stored; execution follows", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"alert_id": {"type": "integer"}, "trades": {"type": "array", "items": {"type": "integer"}},
                                                     "closing": {"type": "array", "items": {"type": "integer"}}}}}}},
                "200": {"description": "a duplicate: the original alert's ids, with duplicate: true"},
                "401": {"description": "no or wrong secret"},
                "409": {"description": "halted or outside the entry window (stored as refused)"},
                "413": {"description": "body too large"},
                "422": {"description": "invalid alert, nothing stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}},
            }}},
        "/trades": {"get": {"summary": "Trades, newest first", "security": _SECRET, "parameters": [
            {"name": "state", "in": "query", "schema": {"type": "string"}, "description": "comma-separated states"},
            {"name": "strategy", "in": "query", "schema": {"type": "string"}},
            {"name": "account", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": {"description": "trades"}}}},
        "/trades/{trade_id}": {"get": {"summary": "One trade with its orders and events", "security": _SECRET,
                                       "parameters": [{"name": "trade_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                                       "responses": {"200": {"description": "the trade"}, "404": {"description": "no such trade"}}}},
        "/trades/{trade_id}/close": {"post": {"summary": "Close a trade now", "security": _SECRET,
                                              "parameters": [{"name": "trade_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                                              "responses": {"202": {"description": "closing"}, "404": {"description": "no such trade"},
                                                            "409": {"description": "the trade is not open"}}}},
        "/halt": {"get": {"summary": "Every halt: the operator's, and today's daily-loss halts and realised P&L per account"
                                     " and strategy (paise)", "security": _SECRET,
                          "responses": {"200": {"description": "halts", "content": {"application/json": {"schema": HALTS}}}}},
                  "post": {"summary": "Halt or resume entries (optionally flatten)", "security": _SECRET,
                           "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                               "halted": {"type": "boolean"}, "flatten": {"type": "boolean"},
                               "reason": {"type": "string", "maxLength": 200}}, "required": ["halted"]}}}},
                           "responses": {"200": {"description": "the new state"},
                                         "422": {"description": "bad body", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}}}}},
        "/chartink": {"post": {"summary": "Take a Chartink scan alert: one alert per stock", "security": _SECRET,
                               "parameters": [{"name": "signal", "in": "query", "schema": {"enum": ["buy", "sell", "exit", "short", "cover"]}},
                                              {"name": "strategy", "in": "query", "schema": {"type": "string"}}],
                               "responses": {"202": {"description": "at least one stock accepted, per-stock results"},
                                             "200": {"description": "every stock a duplicate"}}}},
        "/": {"get": {"summary": "The dashboard (log in with the secret)", "responses": {"200": {"description": "HTML"}}}},
        "/login": {"post": {"summary": "Log in with the secret: sets an HttpOnly, SameSite=Strict session cookie",
                            "responses": {"200": {"description": "logged in"}, "401": {"description": "wrong secret"}}}},
        "/logout": {"post": {"summary": "End the session", "responses": {"200": {"description": "logged out"}}}},
        "/session": {"get": {"summary": "Whether this browser is logged in", "responses": {"200": {"description": "state"}}}},
        "/ws/trades": {"get": {"summary": "WebSocket feed of trades, events and prices (session cookie or ?token=)",
                               "parameters": [{"name": "strategy", "in": "query", "schema": {"type": "string"}},
                                              {"name": "account", "in": "query", "schema": {"type": "string"}}],
                               "responses": {"101": {"description": "switching to WebSocket; see the README for messages"}}}},
        "/healthz": {"get": {"summary": "Liveness; needs no secret", "responses": {"200": {"description": "ok"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "security": _SECRET, "responses": {"200": {"description": "text exposition"}}}},
    },
}
