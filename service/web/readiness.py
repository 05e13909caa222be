"""`NotReady`: while start-up has not finished (the broker not reached yet) or has failed, the routes
that need the started runtime answer 503 with the reason instead of touching half-opened parts.
`/healthz`, `/metrics`, the API description and the dashboard's own pages pass: they say what is
going on. Plain ASGI, like `allowlist.py`."""
from __future__ import annotations

import json
from typing import Any

from service.startup import Readiness

__all__ = ["NEEDS_RUNTIME", "NotReady"]

# Path prefixes that need the started runtime (alerts in, trades, halts, the live feed).
NEEDS_RUNTIME = ("/opentrade", "/chartink", "/trades", "/halt", "/alerts", "/desk/", "/ws/")


class NotReady:
    def __init__(self, app: Any, readiness: Readiness, prefixes: tuple[str, ...] = NEEDS_RUNTIME) -> None:
        self.app = app
        self.readiness = readiness
        self.prefixes = prefixes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or self.readiness.ready \
                or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": "not ready"})  # 1013: try again later
            return
        body = json.dumps({"errors": [{"field": "service", "reason": f"not ready: {self.readiness.reason}"}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"retry-after", b"5")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
