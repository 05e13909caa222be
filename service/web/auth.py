"""Who is asking: the webhook secret (alert routes only), an operator's API token, or an operator's
dashboard session — and the per-address brake on `/login`.

- `authorised`: the webhook secret by `X-Webhook-Secret` header, `Authorization: Bearer`, `token`
  query parameter or (on the alert routes) `token` body field, compared in constant time. It opens
  `/opentrade` and `/chartink` and nothing else: it travels in third-party alert systems.
- `operator_of`: the operator behind a request: `Authorization: Bearer tgo_…` (or a `token` query
  parameter on the feed's handshake, where browsers' scripts cannot set headers) → the API token's
  operator; else the `tickguard_session` cookie → the session's operator (service/operators). The
  role is always read from OPERATORS_FILE as it is now.
- `/metrics` also takes `METRICS_TOKEN` as a bearer token.
- `LoginBrake`: `LOGIN_FAILURES` failed logins from one client address within `LOGIN_WINDOW_S` make
  the next attempts from it wait (429, `Retry-After`) until the oldest failure leaves the window.
"""
from __future__ import annotations

import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection

from service.operators import TOKEN_PREFIX, Operator, OperatorBook, SessionStore

__all__ = ["COOKIE", "LOGIN_FAILURES", "LOGIN_WINDOW_S", "LoginBrake", "authorised", "bearer", "metrics_token_ok",
           "operator_of"]

COOKIE = "tickguard_session"
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 60.0
_ADDRESSES_MAX = 10_000


def bearer(conn: HTTPConnection) -> str:
    return conn.headers.get("authorization", "").removeprefix("Bearer ").strip()


def authorised(request: HTTPConnection, secret: str, body: dict[str, Any] | None = None) -> bool:
    """The webhook secret by header, `token` query parameter or `token` body field, compared in constant time."""
    if not secret:
        return False
    offered = (
        request.headers.get("x-webhook-secret")
        or bearer(request)
        or request.query_params.get("token")
        or (body.get("token") if isinstance(body, dict) and isinstance(body.get("token"), str) else None)
        or ""
    )
    return hmac.compare_digest(offered.encode(), secret.encode())


async def operator_of(conn: HTTPConnection, *, query_token: bool = False) -> tuple[Operator | None, str]:
    """The operator behind `conn` and how they were recognised ("token" or "session"); (None, "")."""
    book: OperatorBook = conn.app.state.operators
    token = bearer(conn) or (conn.query_params.get("token", "") if query_token else "")
    if token.startswith(TOKEN_PREFIX):
        return book.check_token(token), "token"
    sessions: SessionStore = conn.app.state.sessions
    name = await sessions.operator(conn.cookies.get(COOKIE))
    operator = book.operator(name) if name else None
    return operator, "session" if operator else ""


def metrics_token_ok(conn: HTTPConnection, token: str) -> bool:
    offered = bearer(conn)
    return bool(token) and bool(offered) and hmac.compare_digest(offered.encode(), token.encode())


class LoginBrake:
    """Failed logins per client address, forgotten after `window_s`."""

    def __init__(self, failures: int = LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window_s = window_s
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def wait_s(self, address: str) -> float:
        """Seconds `address` must wait before its next attempt; 0 when it may try now."""
        recent = self._recent(address)
        if recent is None or len(recent) < self.failures:
            return 0.0
        return max(0.0, recent[0] + self.window_s - self.clock())

    def failed(self, address: str) -> None:
        recent = self._recent(address)
        if recent is None:
            recent = self._seen[address] = deque(maxlen=self.failures)
            while len(self._seen) > _ADDRESSES_MAX:
                self._seen.popitem(last=False)
        recent.append(self.clock())
        self._seen.move_to_end(address)

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)

    def _recent(self, address: str) -> deque[float] | None:
        recent = self._seen.get(address)
        if recent is None:
            return None
        cutoff = self.clock() - self.window_s
        while recent and recent[0] <= cutoff:
            recent.popleft()
        return recent
