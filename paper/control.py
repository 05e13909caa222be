"""The control API under /paper/v1: move prices, script paths, inject faults, hold routes, expire
sessions, reset; take prices from outside (`paper.outside`); show the requests served.

For tests and demos only: every route answers 403 when the exchange runs with its control API off
(tickguard in live mode). Errors are `{"errors": [{"field", "reason"}]}` with status 422 (bad input),
404 (unknown instrument or path) or 403.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from paper.charges import set_rates
from paper.envelopes import json_object
from paper.faults import FAULT_KINDS, Fault

if TYPE_CHECKING:
    from paper.exchange import PaperExchange

__all__ = ["Invalid", "control_routes", "error_response", "guarded", "read_json"]

PREFIX = "/paper/v1"
MAX_OUTSIDE_BATCH = 10_000  # outside prices or instruments per request


class Invalid(Exception):
    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        self.field, self.reason, self.status = field, reason, status
        super().__init__(f"{field}: {reason}")


def error_response(exc: Invalid) -> Response:
    return JSONResponse({"errors": [{"field": exc.field, "reason": exc.reason}]}, exc.status)


async def read_json(request: Request) -> dict[str, Any]:
    try:
        return json_object(await request.body())
    except ValueError as exc:
        raise Invalid("body", str(exc)) from None


def _price(value: Any, field: str, tick_paise: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise Invalid(field, "expected a price in rupees > 0")
    paise = round(value * 100)
    if paise % tick_paise:
        raise Invalid(field, f"{value} is not a multiple of the tick size {tick_paise / 100:.2f}")
    return paise


def _instrument(ex: PaperExchange, body: Any, prefix: str = ""):
    """The instrument a body (or query) names: its `token`, or its `symbol` — a trading symbol (`SBIN-EQ`,
    `NIFTY26DEC2624000CE`) or an equity's name (`SBIN`) — on `exchange` (NSE when not given)."""
    exchange = str(body.get("exchange") or "NSE").upper()
    token, symbol = str(body.get("token") or "").strip(), str(body.get("symbol") or "").strip().upper()
    if token:
        instrument = ex.universe.by_token(exchange, token)
        if instrument is None:
            raise Invalid(f"{prefix}token", f"no instrument {token} on {exchange}", 404)
        return instrument
    if not symbol:
        raise Invalid(f"{prefix}token", "give a token or a symbol")
    instrument = ex.universe.by_symbol(exchange, symbol)
    if instrument is None and exchange in ("NSE", "BSE"):
        instrument = ex.universe.by_symbol(exchange, f"{symbol}-EQ")
    if instrument is None:
        raise Invalid(f"{prefix}symbol", f"no instrument {symbol} on {exchange}", 404)
    return instrument


def _int(body: dict[str, Any], name: str, default: int, minimum: int = 0) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Invalid(name, f"expected an integer >= {minimum}")
    return value


def guarded(ex: PaperExchange, handler: Callable[[Request, dict[str, Any]], Awaitable[Response]]):
    """A control route: 403 unless the control API is on; the JSON body read; `Invalid` answered."""

    async def serve(request: Request) -> Response:
        if not ex.config.control_api:
            return error_response(Invalid("mode", "the paper control API is off while tickguard runs live", 403))
        try:
            return await handler(request, await read_json(request))
        except Invalid as exc:
            return error_response(exc)

    serve.__name__ = handler.__name__
    return serve


def control_routes(ex: PaperExchange) -> list[Route]:
    async def ticks(request: Request, body: dict[str, Any]) -> Response:
        """Set prices at once: one `{"exchange","token","ltp"}` or `{"ticks": [...]}`."""
        items = body.get("ticks", [body])
        if not isinstance(items, list) or not items:
            raise Invalid("ticks", "expected a non-empty list")
        checked = []
        for n, item in enumerate(items):
            prefix = f"ticks[{n}]." if "ticks" in body else ""
            if not isinstance(item, dict):
                raise Invalid(f"ticks[{n}]", "expected an object")
            instrument = _instrument(ex, item, prefix)
            checked.append((instrument, _price(item.get("ltp"), f"{prefix}ltp", instrument.tick_paise)))
        changed = 0
        for instrument, ltp in checked:
            changed += len(ex.prices.set_ltp(instrument.exchange, instrument.token, ltp))
        return JSONResponse({"applied": len(checked), "quotes_changed": changed})

    async def start_path(request: Request, body: dict[str, Any]) -> Response:
        """Play `points` (rupees) at `rate` a second (or one every `interval_ms`); a jump is a gap."""
        instrument = _instrument(ex, body)
        points = body.get("points")
        if not isinstance(points, list) or not points:
            raise Invalid("points", "expected a non-empty list of prices")
        prices = [_price(p, f"points[{n}]", instrument.tick_paise) for n, p in enumerate(points)]
        if "rate" in body:
            rate = body["rate"]
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 200_000:
                raise Invalid("rate", "expected points per second, 0 < rate <= 200000")
        else:
            rate = 1000 / _int(body, "interval_ms", 100, minimum=1)
        repeat = _int(body, "repeat", 1, minimum=1)
        path = ex.paths.start(instrument.exchange, instrument.token, prices, float(rate), repeat)
        return JSONResponse({"path_id": path.path_id, "points": len(prices) * repeat, "rate": rate}, 201)

    async def list_paths(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse({"running": ex.paths.running()})

    async def stop_path(request: Request, body: dict[str, Any]) -> Response:
        if not ex.paths.stop(request.path_params["path_id"]):
            raise Invalid("path_id", "no such running path", 404)
        return JSONResponse({"stopped": request.path_params["path_id"]})

    async def add_fault(request: Request, body: dict[str, Any]) -> Response:
        """`{"kind": reject|partial|open|cancel_loses|timeout|error5xx, "count": N, ...}` for the next N orders."""
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise Invalid("kind", f"expected one of {', '.join(FAULT_KINDS)}")
        try:
            fault = Fault.from_json(body)
        except (TypeError, ValueError) as exc:
            raise Invalid("fault", str(exc)) from None
        ex.engine.faults.add(fault)
        return JSONResponse({"queued": ex.engine.faults.pending()}, 201)

    async def clear_faults(request: Request, body: dict[str, Any]) -> Response:
        ex.engine.faults.clear()
        return JSONResponse({"queued": []})

    async def hold_route(request: Request, body: dict[str, Any]) -> Response:
        """`{"route": "searchScrip"}`: leave that route's requests unanswered until released."""
        unknown = sorted(set(body) - {"route"})
        if unknown:
            raise Invalid(unknown[0], "unknown field; expected only route")
        try:
            ex.holds.hold(str(body.get("route", "")))
        except ValueError as exc:
            raise Invalid("route", str(exc)) from None
        return JSONResponse({"held": ex.holds.held()}, 201)

    async def release_routes(request: Request, body: dict[str, Any]) -> Response:
        """Release one held route (`{"route": ...}`) or, with no body, every one."""
        route = body.get("route")
        if route is not None and not isinstance(route, str):
            raise Invalid("route", "expected a route name")
        return JSONResponse({"released": ex.holds.release(route), "held": ex.holds.held()})

    async def expire_sessions(request: Request, body: dict[str, Any]) -> Response:
        """Every access token issued so far answers AG8002 (refresh tokens keep working)."""
        clientcode = body.get("clientcode")
        ex.sessions.expire_access(str(clientcode) if clientcode else None)
        return JSONResponse({"expired": clientcode or "all"})

    async def square_off(request: Request, body: dict[str, Any]) -> Response:
        """The broker's own intraday square-off, as its RMS does near the close: every INTRADAY position
        (of `clientcode`, on `exchange`, of `token`, where given) closed by an untagged MARKET order."""
        unknown = sorted(set(body) - {"clientcode", "exchange", "token"})
        if unknown:
            raise Invalid(unknown[0], "unknown field; expected clientcode, exchange, token")
        codes = [login.clientcode for login in ex.config.logins]
        if body.get("clientcode") is not None:
            if body["clientcode"] not in codes:
                raise Invalid("clientcode", "no such login", 404)
            codes = [body["clientcode"]]
        exchange, token = str(body.get("exchange") or "").upper(), str(body.get("token") or "")
        placed = []
        for code in codes:
            for row in ex.engine.positions(code):
                net = int(row["netqty"])
                if row["producttype"] != "INTRADAY" or net == 0 or exchange not in ("", row["exchange"]) \
                        or token not in ("", row["symboltoken"]):
                    continue
                order = ex.engine.place(code, {
                    "variety": "NORMAL", "tradingsymbol": row["tradingsymbol"], "symboltoken": row["symboltoken"],
                    "exchange": row["exchange"], "transactiontype": "SELL" if net > 0 else "BUY", "ordertype": "MARKET",
                    "producttype": "INTRADAY", "duration": "DAY", "quantity": str(abs(net))})
                placed.append({"clientcode": code, "orderid": order.orderid, "exchange": order.exchange,
                               "token": order.symboltoken, "quantity": order.quantity, "status": order.status})
        return JSONResponse({"orders": placed})

    async def reset(request: Request, body: dict[str, Any]) -> Response:
        ex.paths.stop_all()
        ex.holds.release()
        ex.reset()
        return JSONResponse({"reset": True})

    async def state(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse({
            "instruments": len(ex.universe),
            "simulator": ex.config.tick_ms > 0,
            "paths": ex.paths.running(),
            "faults": ex.engine.faults.pending(),
            "holds": ex.holds.held(),
            "store_error": repr(ex.store.error) if ex.store.error else None,
            "gtt_error": repr(ex.gtt.placement_error) if ex.gtt.placement_error else None,
        })

    async def prices(request: Request, body: dict[str, Any]) -> Response:
        """The current price of an instrument named by `symbol` or `token` (and `exchange`) in the query."""
        instrument = _instrument(ex, request.query_params)
        return JSONResponse({"exchange": instrument.exchange, "token": instrument.token,
                             "tradingsymbol": instrument.symbol,
                             "ltp": ex.prices.ltp(instrument.exchange, instrument.token) / 100})

    async def served(request: Request, body: dict[str, Any]) -> Response:
        """Every request this exchange was sent since it started — REST, sockets, control — by path, counted."""
        return JSONResponse({"paths": dict(sorted(ex.served.items()))})

    async def stamps(request: Request, body: dict[str, Any]) -> Response:
        """Exchange-side stamps (paper.stamps): a token's sent ticks and/or a tag's arrival."""
        query = request.query_params
        reply: dict[str, Any] = {}
        if "token" in query:
            reply["ticks"] = ex.stamps.ticks(query.get("exchange", "NSE"), query["token"])
            reply["played"] = ex.stamps.played(query.get("exchange", "NSE"), query["token"])
        if "tag" in query:
            reply["order"] = ex.stamps.order(query["tag"])
        if not reply:
            raise Invalid("token", "give token (with exchange) and/or tag")
        return JSONResponse(reply)

    return [
        *_outside_routes(ex),
        Route(f"{PREFIX}/requests", guarded(ex, served), methods=["GET"]),
        Route(f"{PREFIX}/ticks", guarded(ex, ticks), methods=["POST"]),
        Route(f"{PREFIX}/paths", guarded(ex, start_path), methods=["POST"]),
        Route(f"{PREFIX}/paths", guarded(ex, list_paths), methods=["GET"]),
        Route(f"{PREFIX}/paths/{{path_id}}", guarded(ex, stop_path), methods=["DELETE"]),
        Route(f"{PREFIX}/faults", guarded(ex, add_fault), methods=["POST"]),
        Route(f"{PREFIX}/faults", guarded(ex, clear_faults), methods=["DELETE"]),
        Route(f"{PREFIX}/holds", guarded(ex, hold_route), methods=["POST"]),
        Route(f"{PREFIX}/holds", guarded(ex, release_routes), methods=["DELETE"]),
        Route(f"{PREFIX}/sessions/expire", guarded(ex, expire_sessions), methods=["POST"]),
        Route(f"{PREFIX}/square_off", guarded(ex, square_off), methods=["POST"]),
        Route(f"{PREFIX}/reset", guarded(ex, reset), methods=["POST"]),
        Route(f"{PREFIX}/state", guarded(ex, state), methods=["GET"]),
        Route(f"{PREFIX}/stamps", guarded(ex, stamps), methods=["GET"]),
        Route(f"{PREFIX}/prices", guarded(ex, prices), methods=["GET"]),
        Route(f"{PREFIX}/charges", guarded(ex, set_rates(ex)), methods=["PUT"]),
    ]


def _listed(body: dict[str, Any], name: str) -> list[Any]:
    items = body.get(name)
    if not isinstance(items, list) or not items or len(items) > MAX_OUTSIDE_BATCH:
        raise Invalid(name, f"expected a list of 1 to {MAX_OUTSIDE_BATCH} entries")
    return items


def _outside_routes(ex: PaperExchange) -> list[Route]:
    """Prices from outside (`paper.outside`): instruments to watch, and their prices as they happen."""

    async def watch(request: Request, body: dict[str, Any]) -> Response:
        """`{"instruments": [{"exchange", "token"}, ...]}`: priced from outside from now on."""
        pairs = []
        for n, item in enumerate(_listed(body, "instruments")):
            if not isinstance(item, dict) or not item.get("exchange") or not item.get("token"):
                raise Invalid(f"instruments[{n}]", "expected an object with exchange and token")
            pairs.append((str(item["exchange"]), str(item["token"])))
        unknown = ex.outside.watch(pairs)
        return JSONResponse({"watched": len(pairs) - len(unknown), "unknown": [f"{e}:{t}" for e, t in unknown]})

    async def ticks(request: Request, body: dict[str, Any]) -> Response:
        """`{"ticks": [[exchange, token, ltp_paise], ...]}` in the order they happened."""
        rows = []
        for n, item in enumerate(_listed(body, "ticks")):
            if not isinstance(item, list) or len(item) != 3:
                raise Invalid(f"ticks[{n}]", "expected [exchange, token, ltp_paise]")
            rows.append((item[0], item[1], item[2]))
        applied = ex.outside.apply(rows)
        return JSONResponse({"applied": applied, "skipped": len(rows) - applied})

    async def renew(request: Request, body: dict[str, Any]) -> Response:
        """A new feed session: every instrument priced from outside waits for a fresh price."""
        return JSONResponse({"awaiting": ex.outside.renew()})

    async def state(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(ex.outside.state())

    return [
        Route(f"{PREFIX}/outside/renew", guarded(ex, renew), methods=["POST"]),
        Route(f"{PREFIX}/outside/watch", guarded(ex, watch), methods=["POST"]),
        Route(f"{PREFIX}/outside/ticks", guarded(ex, ticks), methods=["POST"]),
        Route(f"{PREFIX}/outside", guarded(ex, state), methods=["GET"]),
    ]
