"""The dashboard: its page, and the session cookie that lets a browser use the feed and the controls.

`POST /login` takes the webhook secret (form field or JSON `secret`, compared in constant time) and
sets `tickguard_session`: a random id kept in this process's memory (`Sessions`), `HttpOnly`,
`SameSite=Strict`, `Path=/`, `Secure` when the request came over https. A restart logs every browser
out; that is the price of a logout that really revokes. `POST /logout` forgets the session.

A request authenticated by the cookie alone must come from our own page: on a POST, and on the feed's
WebSocket handshake, an `Origin` (or, lacking it, a `Referer`) naming another host:port than `Host` is
refused with 403, and a POST naming neither is refused too. SameSite=Strict already keeps the cookie
off cross-site requests; the origin check also covers a sibling site on the same registrable domain.
"""
from __future__ import annotations

import hmac
import json
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service.web.auth import authorised
from service.web.errors import HttpError

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["COOKIE", "Sessions", "feed_access", "routes", "session_status"]

COOKIE = "tickguard_session"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 1000
MAX_LOGIN_BYTES = 4096
STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


class Sessions:
    """Dashboard sessions in memory: id → expiry, the oldest dropped past `MAX_SESSIONS`."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, clock=time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def of(conn: HTTPConnection) -> Sessions:
        state = conn.app.state
        if not hasattr(state, "sessions"):
            state.sessions = Sessions()
        return state.sessions

    def new(self) -> str:
        session_id = secrets.token_urlsafe(32)
        self._expiry[session_id] = self.clock() + self.ttl_s
        while len(self._expiry) > MAX_SESSIONS:
            self._expiry.popitem(last=False)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        expiry = self._expiry.get(session_id)
        if expiry is None:
            return False
        if expiry < self.clock():
            del self._expiry[session_id]
            return False
        return True

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._expiry.pop(session_id, None)


def _same_origin(conn: HTTPConnection, *, required: bool) -> bool:
    source = conn.headers.get("origin") or conn.headers.get("referer")
    if not source or source == "null":
        return not required
    return urlsplit(source).netloc.lower() == conn.headers.get("host", "").lower()


def session_status(conn: HTTPConnection) -> int:
    """200 when the session cookie is valid (and, on a POST, the request comes from our own origin);
    401 without a valid session; 403 for a cross-origin POST that carries one."""
    if not Sessions.of(conn).valid(conn.cookies.get(COOKIE)):
        return 401
    if conn.scope["type"] == "http" and conn.scope["method"] not in ("GET", "HEAD", "OPTIONS"):
        return 200 if _same_origin(conn, required=True) else 403
    return 200


def feed_access(conn: HTTPConnection) -> bool:
    """The feed's handshake: the secret (header or `token` query parameter) or a same-origin session."""
    runtime: Runtime = conn.app.state.runtime
    if authorised(conn, runtime.settings.webhook_secret):
        return True
    return Sessions.of(conn).valid(conn.cookies.get(COOKIE)) and _same_origin(conn, required=False)


async def _login_secret(request: Request) -> str | None:
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BYTES:
                return None
    except ClientDisconnect:  # the browser went away mid-request: nothing to log in
        return None
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value = json.loads(body or b"null")
        except ValueError:
            return None
        secret = value.get("secret") if isinstance(value, dict) else None
    else:
        secret = parse_qs(body.decode("utf-8", "replace")).get("secret", [None])[0]
    return secret if isinstance(secret, str) else None


def _wants_json(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/json")


async def login(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    secret = await _login_secret(request)
    expected = runtime.settings.webhook_secret
    if not expected or secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        if _wants_json(request):
            raise HttpError.of(401, "secret", "wrong secret")
        return RedirectResponse("/?login=failed", 303)
    sessions = Sessions.of(request)
    sessions.drop(request.cookies.get(COOKIE))
    response: Response = JSONResponse({"authenticated": True}) if _wants_json(request) else RedirectResponse("/", 303)
    response.set_cookie(COOKIE, sessions.new(), max_age=int(sessions.ttl_s), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    Sessions.of(request).drop(request.cookies.get(COOKIE))
    response: Response = JSONResponse({"authenticated": False}) if _wants_json(request) else RedirectResponse("/", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


async def session(request: Request) -> Response:
    return JSONResponse({"authenticated": Sessions.of(request).valid(request.cookies.get(COOKIE))})


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


def routes() -> list[BaseRoute]:
    return [
        Route("/", page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/session", session, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
