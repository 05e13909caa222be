"""tickguard's Starlette app: the webhook, the read API, the operator's controls, health and metrics.

Every route but `/healthz` needs the webhook secret (an `X-Webhook-Secret` header, a `token` query
parameter, or — on `/opentrade` only — a `token` body field).
"""
from __future__ import annotations

import contextlib
import re
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from service import dashboard
from service.allowlist import AllowList, parse_networks
from service.chartink import chartink, load_chartink_scans
from service.desk import Desk, trade_view
from service.feed import FeedHub, trades_feed
from service.fields import WHOLE, Words, blank
from service.settings import Settings
from service.trades import TradeState
from service.webhook import MAX_BODY_BYTES, authorised, opentrade, read_body, read_json

__all__ = ["create_app"]


def _unauthorised() -> JSONResponse:
    return JSONResponse({"errors": [{"field": "token", "reason": "missing or wrong webhook secret"}]}, 401)


def secured(handler):
    async def serve(request: Request) -> Response:
        desk: Desk = request.app.state.desk
        if not authorised(request, desk.settings.webhook_secret):
            # The dashboard's session cookie, from our own origin on a POST (see service/dashboard.py).
            status = dashboard.session_status(request)
            if status == 401:
                return _unauthorised()
            if status == 403:
                return JSONResponse({"errors": [{"field": "origin", "reason": "cross-origin request refused"}]}, 403)
        return await handler(request, desk)

    serve.__name__ = handler.__name__
    return serve


STATES = Words(tuple(TradeState), upper=True)
LIMIT_MAX = 1000


async def list_trades(request: Request, desk: Desk) -> Response:
    query = request.query_params
    states = None
    if "state" in query:
        words = [STATES.read(item) for item in query["state"].split(",") if not blank(item)]
        if None in words:
            return JSONResponse({"errors": [{"field": "state", "reason": f"expected some of {', '.join(TradeState)}"}]}, 422)
        states = [TradeState(word) for word in words if word]
    limit = query.get("limit", "200")
    if re.fullmatch("[0-9]{1,20}", limit) is None or not 0 < int(limit) <= LIMIT_MAX:
        return JSONResponse({"errors": [{"field": "limit", "reason": f"expected 1-{LIMIT_MAX}"}]}, 422)
    trades = await desk.store.trades(states=states, strategy=query.get("strategy"), account=query.get("account"),
                                     limit=int(limit))
    return JSONResponse({"trades": [trade_view(t) for t in trades]})


TRADE_ID_MAX = 2**63 - 1  # SQLite's INTEGER: an id beyond it names no trade and cannot be looked up


def _trade_id(request: Request) -> int | Response:
    """The path's trade id, or the 422 for one that is not a whole number from 0 to 2^63 - 1."""
    text = request.path_params["trade_id"]
    if re.fullmatch("[0-9]{1,19}", text) is None or int(text) > TRADE_ID_MAX:
        return JSONResponse({"errors": [{"field": "trade_id", "reason": f"expected a whole number from 0 to {TRADE_ID_MAX}"}]},
                            422)
    return int(text)


async def get_trade(request: Request, desk: Desk) -> Response:
    trade_id = _trade_id(request)
    if isinstance(trade_id, Response):
        return trade_id
    trade = await desk.store.trade(trade_id)
    if trade is None:
        return JSONResponse({"errors": [{"field": "trade_id", "reason": "no such trade"}]}, 404)
    orders = [_order_view(o) for o in await desk.store.orders(trade_id)]
    return JSONResponse({"trade": trade_view(trade), "orders": orders, "events": await desk.store.events(trade_id)})


def _order_view(order: Any) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(order)


async def _body(request: Request) -> bytes | Response:
    """An operator route's body, or the 400 (the client hung up) or 413 (over MAX_BODY_BYTES) for it."""
    try:
        raw = await read_body(request)
    except ClientDisconnect:
        return JSONResponse({"errors": [{"field": "body", "reason": "the client disconnected before the body ended"}]}, 400)
    if raw is None:
        return JSONResponse({"errors": [{"field": "body", "reason": f"larger than {MAX_BODY_BYTES} bytes"}]}, 413)
    return raw


async def close_trade(request: Request, desk: Desk) -> Response:
    trade_id = _trade_id(request)
    if isinstance(trade_id, Response):
        return trade_id
    raw = await _body(request)
    if isinstance(raw, Response):
        return raw
    body = read_json(raw) if raw.strip() else {}
    if not isinstance(body, dict) or set(body) - {"quantity"}:
        return JSONResponse({"errors": [{"field": "body", "reason": 'expected nothing or {"quantity": n}'}]}, 422)
    quantity = None
    if body.get("quantity") is not None:
        number, reason = WHOLE.read(body["quantity"])
        if number is None:
            return JSONResponse({"errors": [{"field": "quantity", "reason": reason}]}, 422)
        quantity = int(number)
    trade = await desk.store.trade(trade_id)
    if trade is None:
        return JSONResponse({"errors": [{"field": "trade_id", "reason": "no such trade"}]}, 404)
    if trade.state not in (TradeState.PENDING_ENTRY, TradeState.OPEN, TradeState.UNPROTECTED):
        return JSONResponse({"errors": [{"field": "trade_id", "reason": f"the trade is {trade.state}"}]}, 409)
    if quantity is not None and quantity < trade.open_quantity:  # a part: the rest stays guarded
        lot = int(trade.spec.get("lot_size") or 1)
        if trade.state is not TradeState.OPEN:
            return JSONResponse({"errors": [{"field": "quantity", "reason": f"a part is closed only of an OPEN trade; "
                                                                           f"the trade is {trade.state}"}]}, 409)
        if quantity % lot:
            return JSONResponse({"errors": [{"field": "quantity", "reason": f"not a multiple of the lot size {lot}"}]},
                                422)
        desk.trader.spawn(desk.trader.reduce(trade_id, quantity, "MANUAL"), f"reduce-{trade_id}")
        return JSONResponse({"trade_id": trade_id, "closing": False, "reducing": quantity}, 202)
    if quantity is not None and quantity > trade.open_quantity:
        return JSONResponse({"errors": [{"field": "quantity", "reason": f"more than the {trade.open_quantity} open"}]},
                            422)
    await desk.trader.close(trade_id)
    return JSONResponse({"trade_id": trade_id, "closing": True}, 202)


async def halt(request: Request, desk: Desk) -> Response:
    if request.method == "GET":
        return JSONResponse(await desk.halts.view(desk.halted))
    raw = await _body(request)
    if isinstance(raw, Response):
        return raw
    body = read_json(raw)
    if not isinstance(body, dict) or set(body) - {"halted", "flatten", "reason"} or not isinstance(body.get("halted"), bool) \
            or not isinstance(body.get("flatten", False), bool):
        return JSONResponse({"errors": [{"field": "halted", "reason": 'expected {"halted": true|false, "flatten"?: bool, '
                                                                      '"reason"?: text}'}]}, 422)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        return JSONResponse({"errors": [{"field": "reason", "reason": "expected text of at most 200 characters"}]}, 422)
    closing = await desk.set_halt(body["halted"], body.get("flatten", False), reason.strip())
    return JSONResponse({"halted": desk.halted, "closing": closing})


async def healthz(request: Request) -> Response:
    desk: Desk = request.app.state.desk
    return JSONResponse({"status": "ok", "mode": desk.settings.tickguard_mode, "halted": desk.halted,
                         "warnings": desk.calendar_watch.warnings()})


async def metrics(request: Request, desk: Desk) -> Response:
    open_trades, unprotected = await desk.store.open_counts()
    desk.metrics.set_trades(open_trades - unprotected, unprotected)
    body, content_type = desk.metrics.render()
    return Response(body, media_type=content_type)


async def openapi(request: Request, desk: Desk) -> Response:
    from service.openapi import SPEC

    return JSONResponse(SPEC)


def create_app(settings: Settings, desk: Desk | None = None) -> Starlette:
    desk = desk or Desk(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            await desk.start()
        except BaseException:
            await desk.stop()  # close what had opened before the failure
            raise
        feed = app.state.feed = FeedHub(desk)
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()
            await desk.stop()

    routes = [
        Route("/opentrade", opentrade, methods=["POST"]),
        Route("/chartink", chartink, methods=["POST"]),
        Route("/trades", secured(list_trades), methods=["GET"]),
        Route("/trades/{trade_id}", secured(get_trade), methods=["GET"]),
        Route("/trades/{trade_id}/close", secured(close_trade), methods=["POST"]),
        Route("/halt", secured(halt), methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", secured(metrics), methods=["GET"]),
        Route("/openapi.json", secured(openapi), methods=["GET"]),
        WebSocketRoute("/ws/trades", trades_feed),
        *dashboard.routes(),
    ]
    allowlist = Middleware(AllowList, networks=parse_networks(settings.webhook_allowlist),
                           trusted_proxies=parse_networks(settings.trusted_proxies, "TRUSTED_PROXIES"))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[allowlist])
    app.state.chartink_scans = load_chartink_scans(settings.chartink_scans)  # a bad file fails at start
    app.state.desk = desk
    return app
