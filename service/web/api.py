"""The read API and the operator's controls: `/trades`, `/trades/{id}`, `/trades/{id}/close`,
`/halt`, `/healthz`, `/metrics`, `/openapi.json`.

Every route but `/healthz` needs an operator (service/web/auth.py): an API token or the dashboard's
session cookie (from our own origin on a POST; see `dashboard.py`). A `viewer` reads; changing anything
(close, halt, flatten) takes a `trader`, and the operator's name is recorded with it. `/metrics` also
takes METRICS_TOKEN. The webhook secret opens none of these.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.alerts.fields import WHOLE, Words, blank
from service.trades import TradeEvent, TradeRecord, TradeState
from service.web.auth import metrics_token_ok, operator_of
from service.web.bodies import limited_body, read_json
from service.web.dashboard import same_origin
from service.web.errors import HttpError, not_signed_in
from service.web.queries import ID_MAX, LIMIT_MAX, before_of, day_of, limit_of, page
from service.web.views import order_view, trade_view

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["LIMIT_MAX", "STATES", "TRADE_ID_MAX", "close_trade", "get_trade", "halt", "healthz", "list_trades",
           "metrics", "no_such_trade", "secured", "trade_id_of"]

Handler = Callable[[Request, "Runtime"], Awaitable[Response]]


def secured(handler: Handler, *, metrics_token: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """`handler` for operators: any role may read; a POST takes a trader (`request.state.operator`)."""
    async def serve(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        if metrics_token and metrics_token_ok(request, runtime.settings.metrics_token):
            return await handler(request, runtime)
        operator, how = await operator_of(request)
        if operator is None:
            raise not_signed_in()
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if how == "session" and not same_origin(request, required=True):
                raise HttpError.of(403, "origin", "cross-origin request refused")
            if not operator.may_act:
                raise HttpError.of(403, "role", f"operator {operator.name} is a viewer: "
                                                "viewers watch, only traders close, halt or flatten")
        request.state.operator = operator
        return await handler(request, runtime)

    serve.__name__ = handler.__name__
    return serve


async def _note(runtime: Runtime, trade_id: int, kind: str, **data: object) -> None:
    """A trade event of the operator's (history only: it changes no field of the trade)."""
    await runtime.store.record(trade_id, TradeEvent(kind=kind, at_ms=runtime.now_ms(), data=data))


STATES = Words(tuple(TradeState), upper=True)
TRADE_ID_MAX = ID_MAX  # SQLite's INTEGER: an id beyond it names no trade and cannot be looked up


async def list_trades(request: Request, runtime: Runtime) -> Response:
    """Newest first, a page at a time: `next` is the `before` of the next page (null after the last)."""
    query = request.query_params
    states = None
    if "state" in query:
        words = [STATES.read(item) for item in query["state"].split(",") if not blank(item)]
        if None in words:
            raise HttpError.of(422, "state", f"expected some of {', '.join(TradeState)}")
        states = [TradeState(word) for word in words if word]
    limit = limit_of(query)
    rows = await runtime.store.trade_page(states=states, strategy=query.get("strategy"), account=query.get("account"),
                                          day=day_of(query), before=before_of(query), limit=limit + 1)
    trades, after = page(rows, limit)
    return JSONResponse({"trades": [_view(request, runtime, t) for t in trades], "next": after})


def _view(request: Request, runtime: Runtime, trade: TradeRecord) -> dict:
    hub = request.app.state.feed  # the feed's FeedHub: its prices and history
    return trade_view(trade, runtime.trader.stops.view(trade), hub.ltp(trade), runtime.charging)


def trade_id_of(request: Request) -> int:
    """The path's trade id; a 422 for one that is not a whole number from 0 to 2^63 - 1."""
    text = request.path_params["trade_id"]
    if re.fullmatch("[0-9]{1,19}", text) is None or int(text) > TRADE_ID_MAX:
        raise HttpError.of(422, "trade_id", f"expected a whole number from 0 to {TRADE_ID_MAX}")
    return int(text)


def no_such_trade() -> HttpError:
    return HttpError.of(404, "trade_id", "no such trade")


async def get_trade(request: Request, runtime: Runtime) -> Response:
    trade_id = trade_id_of(request)
    trade = await runtime.store.trade(trade_id)
    if trade is None:
        raise no_such_trade()
    orders = [order_view(o) for o in await runtime.store.orders(trade_id)]
    return JSONResponse({"trade": _view(request, runtime, trade), "orders": orders,
                         "events": await runtime.store.events(trade_id)})


async def close_trade(request: Request, runtime: Runtime) -> Response:
    trade_id = trade_id_of(request)
    raw = await limited_body(request)
    body = read_json(raw) if raw.strip() else {}
    if not isinstance(body, dict) or set(body) - {"quantity"}:
        raise HttpError.of(422, "body", 'expected nothing or {"quantity": n}')
    quantity = None
    if body.get("quantity") is not None:
        number, reason = WHOLE.read(body["quantity"])
        if number is None:
            raise HttpError.of(422, "quantity", reason)
        quantity = int(number)
    trade = await runtime.store.trade(trade_id)
    if trade is None:
        raise no_such_trade()
    if trade.state not in (TradeState.PENDING_ENTRY, TradeState.OPEN, TradeState.UNPROTECTED):
        doing = "already closing" if trade.state is TradeState.EXITING else "nothing to close"
        raise HttpError.of(409, "close", f"{doing}: the trade is {trade.state}")
    trader = runtime.trader
    operator = request.state.operator.name
    if quantity is not None and quantity < trade.open_quantity:  # a part: the rest stays guarded
        lot = trade.spec.lot_size or 1
        if trade.state is not TradeState.OPEN:
            raise HttpError.of(409, "close", f"a part is closed only of an OPEN trade: the trade is {trade.state}")
        if quantity % lot:
            raise HttpError.of(422, "quantity", f"not a multiple of the lot size {lot}")
        await _note(runtime, trade_id, "close_requested", operator=operator, quantity=quantity)
        trader.spawn(trader.reduce(trade_id, quantity, "MANUAL"), f"reduce-{trade_id}")
        return JSONResponse({"trade_id": trade_id, "closing": False, "reducing": quantity}, 202)
    if quantity is not None and quantity > trade.open_quantity:
        raise HttpError.of(422, "quantity", f"more than the {trade.open_quantity} open")
    await _note(runtime, trade_id, "close_requested", operator=operator, quantity=trade.open_quantity)
    await trader.close(trade_id)
    return JSONResponse({"trade_id": trade_id, "closing": True}, 202)


async def halt(request: Request, runtime: Runtime) -> Response:
    if request.method == "GET":
        return JSONResponse(await runtime.halts.view())
    body = read_json(await limited_body(request))
    if not isinstance(body, dict) or set(body) - {"halted", "flatten", "reason"} or not isinstance(body.get("halted"), bool) \
            or not isinstance(body.get("flatten", False), bool):
        raise HttpError.of(422, "halted", 'expected {"halted": true|false, "flatten"?: bool, "reason"?: text}')
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise HttpError.of(422, "reason", "expected text of at most 200 characters")
    closing = await runtime.operator.set_halt(body["halted"], body.get("flatten", False), reason.strip(),
                                              operator=request.state.operator.name)
    return JSONResponse({"halted": runtime.halted, "closing": closing})


async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    readiness = runtime.readiness  # not ready: 503 with the reason (the broker not reached yet, a failed start)
    body = {"status": "ok" if readiness.ready else readiness.state, "ready": readiness.ready,
            "mode": runtime.settings.tickguard_mode, "halted": runtime.halted, "warnings": runtime.calendar_watch.warnings()}
    if not readiness.ready:
        body["reason"] = readiness.reason
    return JSONResponse(body, 200 if readiness.ready else 503)


async def metrics(request: Request, runtime: Runtime) -> Response:
    open_trades, unprotected = await runtime.store.open_counts()
    runtime.metrics.set_trades(open_trades - unprotected, unprotected)
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type)
