"""The dashboard: its page, and the operator's session that lets a browser use the feed and the controls.

`POST /login` takes an operator's name and password (JSON `{"name", "password"}` or form fields),
checked against OPERATORS_FILE (service/operators), and sets `tickguard_session`: a random id whose
hash the store keeps (so a restart keeps everyone signed in), `HttpOnly`, `SameSite=Strict`,
`Path=/`, `Secure` when the request came over https, for `SESSION_TTL_S`. Failed logins are braked
per client address (`auth.LoginBrake`: 429 with `Retry-After`). `POST /logout` ends the session in
the store. `GET /session` says who is signed in, with which role.

A request authenticated by the cookie alone must come from our own page: on a POST, and on the feed's
WebSocket handshake, an `Origin` (or, lacking it, a `Referer`) naming another host:port than `Host` is
refused with 403, and a POST naming neither is refused too. SameSite=Strict already keeps the cookie
off cross-site requests; the origin check also covers a sibling site on the same registrable domain.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service.operators import Operator, OperatorBook, SessionStore
from service.web.auth import COOKIE, LoginBrake, operator_of
from service.web.errors import HttpError

__all__ = ["COOKIE", "feed_access", "routes", "same_origin"]

MAX_LOGIN_BYTES = 4096
STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def same_origin(conn: HTTPConnection, *, required: bool) -> bool:
    source = conn.headers.get("origin") or conn.headers.get("referer")
    if not source or source == "null":
        return not required
    return urlsplit(source).netloc.lower() == conn.headers.get("host", "").lower()


async def feed_access(conn: HTTPConnection) -> Operator | None:
    """The feed's handshake: an operator's API token (header or `token` query parameter), or a
    same-origin session."""
    operator, how = await operator_of(conn, query_token=True)
    if how == "session" and not same_origin(conn, required=False):
        return None
    return operator


async def _login_form(request: Request) -> dict[str, Any] | None:
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BYTES:
                return None
    except ClientDisconnect:  # the browser went away mid-request: nothing to log in
        return None
    if _wants_json(request):
        try:
            value = json.loads(body or b"null")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}


def _wants_json(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/json")


def _address(request: Request) -> str:
    resolve = getattr(request.app.state, "client_address", None)
    address = resolve(request.scope) if resolve else None
    return str(address) if address is not None else (request.client.host if request.client else "")


async def login(request: Request) -> Response:
    brake: LoginBrake = request.app.state.login_brake
    address = _address(request)
    wait_s = brake.wait_s(address)
    if wait_s > 0:
        raise HttpError(429, [{"field": "login", "reason": f"too many failed logins from {address}: "
                                                         f"try again in {int(wait_s) + 1} s"}],
                        headers={"Retry-After": str(int(wait_s) + 1)})
    form = await _login_form(request)
    name, password = (form or {}).get("name"), (form or {}).get("password")
    book: OperatorBook = request.app.state.operators
    operator = book.check_password(name, password) if isinstance(name, str) and isinstance(password, str) else None
    if operator is None:
        brake.failed(address)
        if _wants_json(request):
            raise HttpError.of(401, "password", "unknown operator or wrong password")
        return RedirectResponse("/?login=failed", 303)
    brake.succeeded(address)
    sessions: SessionStore = request.app.state.sessions
    await sessions.drop(request.cookies.get(COOKIE))
    view = {"authenticated": True, "operator": operator.name, "role": operator.role}
    response: Response = JSONResponse(view) if _wants_json(request) else RedirectResponse("/", 303)
    response.set_cookie(COOKIE, await sessions.new(operator.name), max_age=int(sessions.ttl_s), path="/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    await request.app.state.sessions.drop(request.cookies.get(COOKIE))
    response: Response = JSONResponse({"authenticated": False}) if _wants_json(request) else RedirectResponse("/", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


async def session(request: Request) -> Response:
    operator, _ = await operator_of(request)
    return JSONResponse({"authenticated": operator is not None, "operator": operator.name if operator else None,
                         "role": operator.role if operator else None})


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
