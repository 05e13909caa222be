"""The paper exchange's REST face: SmartAPI's routes, headers, envelopes and error dialects."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from paper import market
from paper.auth import LoginError, Session, TokenError
from paper.control import control_routes, guarded
from paper.envelopes import BadRequest, fail, json_object, ok, rate_limited, token_fail
from paper.errors import PaperError
from paper.exchange import PaperExchange
from paper.gtt_routes import GTT_ROUTES
from paper.charges import estimate_charges
from paper.margins import margin_batch
from paper.ratelimit import RateLimiter
from paper.sockets import socket_routes

__all__ = ["create_app", "MASTER_PATH"]

MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
SECURE = "/rest/secure/angelbroking"
Handler = Callable[[Request, PaperExchange, Session | None, dict[str, Any]], Awaitable[Response]]


def create_app(exchange: PaperExchange) -> Starlette:
    limiter = RateLimiter()

    def endpoint(name: str, handler: Handler, *, secure: bool = True) -> Callable[[Request], Awaitable[Response]]:
        stamped = name == "placeOrder"
        exchange.holds.known.add(name)

        async def serve(request: Request) -> Response:
            arrived = time.perf_counter_ns()
            api_key = request.headers.get("x-privatekey")
            if exchange.config.rate_limits and not limiter.allow(api_key or "", name):
                return rate_limited()
            try:
                session = (
                    exchange.sessions.authenticate(request.headers.get("authorization"), api_key) if secure else None
                )
                body = await _body(request)
                if session is not None:  # order routes from another address than the client's are refused
                    exchange.static_ips.check(name, session.clientcode, _peer(request), body)
                if stamped:
                    exchange.stamps.order_received(str(body.get("ordertag") or ""), arrived)
                if not await exchange.holds.passage(name, functools.partial(_client_gone, request)):
                    return Response(status_code=499)  # the client gave up on a held request: dropped
                return await handler(request, exchange, session, body)
            except TokenError as exc:
                return token_fail(exc.errorcode, exc.message)
            except (LoginError, PaperError) as exc:
                return fail(exc.errorcode, exc.message)
            except BadRequest as exc:
                return fail("AB2000", exc.message)

        serve.__name__ = name
        return serve

    routes = [
        Route("/rest/auth/angelbroking/user/v1/loginByPassword", endpoint("loginByPassword", login, secure=False), methods=["POST"]),
        Route("/rest/auth/angelbroking/jwt/v1/generateTokens", endpoint("generateTokens", generate_tokens, secure=False), methods=["POST"]),
        Route(f"{SECURE}/user/v1/getProfile", endpoint("getProfile", profile), methods=["GET"]),
        Route(f"{SECURE}/user/v1/logout", endpoint("logout", logout), methods=["POST"]),
        Route(f"{SECURE}/user/v1/getRMS", endpoint("getRMS", rms), methods=["GET"]),
        Route(f"{SECURE}/order/v1/placeOrder", endpoint("placeOrder", place_order), methods=["POST"]),
        Route(f"{SECURE}/order/v1/modifyOrder", endpoint("modifyOrder", modify_order), methods=["POST"]),
        Route(f"{SECURE}/order/v1/cancelOrder", endpoint("cancelOrder", cancel_order), methods=["POST"]),
        Route(f"{SECURE}/order/v1/getOrderBook", endpoint("getOrderBook", order_book), methods=["GET"]),
        Route(f"{SECURE}/order/v1/getTradeBook", endpoint("getTradeBook", trade_book), methods=["GET"]),
        Route(f"{SECURE}/order/v1/details/{{uniqueorderid}}", endpoint("details", order_details), methods=["GET"]),
        Route(f"{SECURE}/order/v1/getPosition", endpoint("getPosition", positions), methods=["GET"]),
        Route(f"{SECURE}/portfolio/v1/getHolding", endpoint("getHolding", holding), methods=["GET"]),
        Route(f"{SECURE}/portfolio/v1/getAllHolding", endpoint("getAllHolding", all_holding), methods=["GET"]),
        Route(f"{SECURE}/order/v1/getLtpData", endpoint("getLtpData", market.ltp_data), methods=["POST"]),
        Route(f"{SECURE}/market/v1/quote", endpoint("quote", market.quote), methods=["POST"]),
        Route(f"{SECURE}/market/v1/quote/", endpoint("quote", market.quote), methods=["POST"]),
        Route(f"{SECURE}/historical/v1/getCandleData", endpoint("getCandleData", market.candle_data), methods=["POST"]),
        Route(f"{SECURE}/order/v1/searchScrip", endpoint("searchScrip", market.search_scrip), methods=["POST"]),
        # The SDK names this route without a leading slash and urljoins it onto `root`: on a bare host:port root, this path.
        Route(f"{SECURE}/margin/v1/batch", endpoint("marginBatch", margin_batch), methods=["POST"]),
        Route(f"{SECURE}/brokerage/v1/estimateCharges", endpoint("estimateCharges", estimate_charges), methods=["POST"]),
        *(Route(path, endpoint(name, handler), methods=["POST"]) for path, name, handler in GTT_ROUTES),
        Route(MASTER_PATH, instrument_master, methods=["GET"]),
        *control_routes(exchange),
        Route("/paper/v1/sources", guarded(exchange, _sources(exchange)), methods=["GET"]),
        *socket_routes(exchange),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await exchange.start()
        try:
            yield
        finally:
            await exchange.stop()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Served, paths=exchange.served)])
    app.state.exchange = exchange
    return app


class Served:
    """Counts every request by its path — HTTP and WebSocket, routes this exchange serves or not — before
    anything else sees it (GET /paper/v1/requests)."""

    def __init__(self, app: Any, paths: Counter[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            self.paths[scope["path"]] += 1
        await self.app(scope, receive, send)


async def _body(request: Request) -> dict[str, Any]:
    if request.method != "POST":
        return {}  # GETs carry the SDK's JSON-in-query-string; nothing in it matters
    try:
        return json_object(await request.body())
    except ValueError as exc:
        raise BadRequest(f"Request body: {exc}") from None


def _sources(exchange: PaperExchange) -> Callable[[Request, dict[str, Any]], Awaitable[Response]]:
    """GET /paper/v1/sources: the registered static IPs, and the order requests seen with their peers."""

    async def sources(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse({"static_ips": exchange.static_ips.registered, "orders": exchange.static_ips.seen()})

    return sources


def _peer(request: Request) -> str:
    """The TCP peer's address: the source address the client's socket is bound to."""
    return request.client.host if request.client is not None else ""


async def _client_gone(request: Request) -> None:
    """Return once the client has gone away (call after the body is read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or str(value).strip() == "":
        raise BadRequest(f"{name} is required")
    return str(value).strip()


# Auth ------------------------------------------------------------------------------------------
async def login(request: Request, ex: PaperExchange, _: Session | None, body: dict[str, Any]) -> Response:
    tokens = ex.sessions.login(
        _text(body, "clientcode"), _text(body, "password"), _text(body, "totp"), request.headers.get("x-privatekey")
    )
    data = {"jwtToken": tokens.jwt_token, "refreshToken": tokens.refresh_token, "feedToken": tokens.feed_token}
    if "state" in body:
        data["state"] = body["state"]
    return ok(data)


async def generate_tokens(request: Request, ex: PaperExchange, _: Session | None, body: dict[str, Any]) -> Response:
    tokens = ex.sessions.refresh(_text(body, "refreshToken"))
    return ok({"jwtToken": tokens.jwt_token, "refreshToken": tokens.refresh_token, "feedToken": tokens.feed_token})


async def profile(request: Request, ex: PaperExchange, session: Session | None, _: dict[str, Any]) -> Response:
    assert session is not None
    login_entry = ex.sessions.by_code[session.clientcode.upper()]
    return ok({
        "clientcode": session.clientcode,
        "name": login_entry.name,
        "email": "",
        "mobileno": "",
        "exchanges": ["nse_cm", "nse_fo", "bse_cm", "bse_fo"],
        "products": ["MARGIN", "MIS", "NRML", "CNC", "CO", "BO"],
        "lastlogintime": "",
        "brokerid": "B2C",
    })


async def logout(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    ex.sessions.logout(session)
    ex.store.revoke(session.sid)
    return ok("")


# Orders ----------------------------------------------------------------------------------------
async def place_order(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    transport = ex.engine.faults.take_transport()
    if transport is not None and transport.kind == "error5xx" and not transport.placed:
        return fail("AB2001", "Internal Error, Please try after sometime", status_code=transport.status)
    order = ex.engine.accept(session.clientcode, body)
    if ex.outside.park(order):
        pass  # priced from outside and no price yet: it settles at the first one
    elif ex.config.fill_latency_ms > 0:
        asyncio.get_running_loop().call_later(ex.config.fill_latency_ms / 1000, ex.engine.settle, order.orderid)
    else:
        ex.engine.settle(order.orderid)
    if transport is not None and transport.listed_after_s:
        ex.engine.unlist(order.orderid, transport.listed_after_s)
    if transport is not None and transport.kind == "error5xx":
        return fail("AB2001", "Internal Error, Please try after sometime", status_code=transport.status)
    if transport is not None and transport.kind == "timeout":
        await asyncio.sleep(transport.seconds)
    return ok({"script": order.tradingsymbol, "orderid": order.orderid, "uniqueorderid": order.uniqueorderid})


async def modify_order(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    order = ex.engine.modify(session.clientcode, body)
    return ok({"orderid": order.orderid, "uniqueorderid": order.uniqueorderid})


async def cancel_order(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    order = ex.engine.cancel(session.clientcode, _text(body, "orderid"), _text(body, "variety"))
    return ok({"orderid": order.orderid, "uniqueorderid": order.uniqueorderid})


def _listing(read: Callable[[Any, str], list]) -> Handler:
    """A GET answering the session's rows — `data: null` when there are none, as the live API does."""

    async def handler(request: Request, ex: PaperExchange, session: Session | None, _: dict[str, Any]) -> Response:
        assert session is not None
        return ok(read(ex.engine, session.clientcode) or None)

    return handler


order_book = _listing(lambda engine, client: engine.order_book(client))
trade_book = _listing(lambda engine, client: engine.trade_book(client))
positions = _listing(lambda engine, client: engine.positions(client))
holding = _listing(lambda engine, client: engine.holdings(client))


async def order_details(request: Request, ex: PaperExchange, session: Session | None, _: dict[str, Any]) -> Response:
    assert session is not None
    row = ex.engine.order_details(session.clientcode, request.path_params["uniqueorderid"])
    if row is None:
        return fail("AB1007", "Order not found")
    return ok(row)


async def all_holding(request: Request, ex: PaperExchange, session: Session | None, _: dict[str, Any]) -> Response:
    assert session is not None
    rows = ex.engine.holdings(session.clientcode)
    value = sum(float(r["ltp"]) * int(r["quantity"]) for r in rows)
    invested = sum(float(r["averageprice"]) * int(r["quantity"]) for r in rows)
    pnl = value - invested
    return ok({
        "holdings": rows,
        "totalholding": {
            "totalholdingvalue": round(value, 2),
            "totalinvvalue": round(invested, 2),
            "totalprofitandloss": round(pnl, 2),
            "totalpnlpercentage": round(pnl / invested * 100, 2) if invested else 0,
        },
    })


async def rms(request: Request, ex: PaperExchange, session: Session | None, _: dict[str, Any]) -> Response:
    assert session is not None
    return ok(ex.engine.rms(session.clientcode))


async def instrument_master(request: Request) -> Response:
    exchange: PaperExchange = request.app.state.exchange
    return Response(exchange.universe.master_json(), media_type="application/json")

