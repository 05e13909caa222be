"""The webhook secret: by `X-Webhook-Secret` header, `Authorization: Bearer`, `token` query parameter
or (on the alert routes) `token` body field, compared in constant time."""
from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import HTTPConnection

__all__ = ["authorised"]


def authorised(request: HTTPConnection, secret: str, body: dict[str, Any] | None = None) -> bool:
    """The secret by header, `token` query parameter or `token` body field, compared in constant time."""
    if not secret:
        return False
    offered = (
        request.headers.get("x-webhook-secret")
        or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        or request.query_params.get("token")
        or (body.get("token") if isinstance(body, dict) and isinstance(body.get("token"), str) else None)
        or ""
    )
    return hmac.compare_digest(offered.encode(), secret.encode())
