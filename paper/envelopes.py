"""SmartAPI's response dialects, built in one place."""
from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

__all__ = ["BadRequest", "json_object", "ok", "fail", "token_fail", "rate_limited", "RATE_LIMIT_TEXT"]

RATE_LIMIT_TEXT = "Access denied because of exceeding access rate"


def ok(data: Any, message: str = "SUCCESS") -> Response:
    return JSONResponse({"status": True, "message": message, "errorcode": "", "data": data})


def fail(errorcode: str, message: str, status_code: int = 200, data: Any = None) -> Response:
    """The documented failure envelope. `message` is always present: the SDK crashes without it."""
    return JSONResponse({"status": False, "message": message, "errorcode": errorcode, "data": data}, status_code)


def token_fail(errorcode: str, message: str) -> Response:
    """The gateway's token dialect, observed live with HTTP 200: `success` and camel-case `errorCode`."""
    return JSONResponse({"success": False, "message": message, "errorCode": errorcode, "data": ""})


def rate_limited() -> Response:
    return PlainTextResponse(RATE_LIMIT_TEXT, status_code=403)


class BadRequest(Exception):
    """A request the paper exchange cannot read: answered as AB2000 with a precise message."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (empty means `{}`); ValueError says what is wrong."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body
