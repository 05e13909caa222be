"""Request bodies: read up to `MAX_BODY_BYTES`, JSON parsed strictly (no unpaired surrogates), and
the msgspec-encoded JSON reply of the hot route."""
from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from service.metrics import Metrics
from service.web.errors import HttpError

__all__ = ["MAX_BODY_BYTES", "json_reply", "limited_body", "parse_json", "read_body", "read_json"]

MAX_BODY_BYTES = 16 * 1024

_encode = msgspec.json.Encoder().encode


def json_reply(content: dict[str, Any], status: int) -> Response:
    """A JSON response encoded by msgspec (the bytes Starlette's JSONResponse would send)."""
    return Response(_encode(content), status, media_type="application/json")


def parse_json(raw: bytes) -> tuple[Any, str]:
    """(the JSON value of `raw`, "") or (None, why not): not JSON, or a string with an unpaired
    surrogate escape (`"\\ud800"`), which no store, log or reply could encode."""
    if not raw.strip():
        return None, "expected a JSON object"
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None, "not valid JSON"
    if raw.isascii() and b"\\u" not in raw:
        return value, ""  # plain ASCII without a \u escape holds no surrogate: the usual alert, checked cheaply
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return None, "a string holds an unpaired surrogate escape"
    return value, ""


def read_json(raw: bytes) -> Any:
    return parse_json(raw)[0]


async def read_body(request: Request) -> bytes | None:
    """The body, or None when it is longer than MAX_BODY_BYTES (declared or counted)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def limited_body(request: Request, metrics: Metrics | None = None) -> bytes:
    """The body; a 413 for one over MAX_BODY_BYTES (an alert route counts it as an invalid alert). A
    sender that hangs up mid-body gets a 400 nobody reads — not an application error and a traceback."""
    try:
        raw = await read_body(request)
    except ClientDisconnect:
        raise HttpError.of(400, "body", "the client disconnected before the body ended") from None
    if raw is None:
        if metrics is not None:
            metrics.count_alert("invalid")
        raise HttpError.of(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
    return raw
