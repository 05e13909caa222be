"""The paper exchange's two WebSockets and their fault controls under /paper/v1/feed.

    /smart-stream                 market data (paper.stream)
    /smart-order-update           order updates (paper.order_updates)
    GET  /paper/v1/feed           connections (client code, peer address), subscriptions, queued frames,
                                  stall and pause state
    POST /paper/v1/feed/stall     stop sending market frames; sockets stay open, heartbeats answered
    POST /paper/v1/feed/resume    send again from the next price change (nothing missed is replayed)
    POST /paper/v1/feed/drop      end sockets: {"socket": market|orders|all, "how": close|abort,
                                  "code": 1001, "reason": "..."}; abort ends TCP without a close frame;
                                  with "exchange" and "token", only the market sockets subscribed to
                                  that instrument (one of a client's several connections)
    POST /paper/v1/feed/garbage   {"kind": truncated, "exchange", "token", "mode", "length"} a real
                                  packet cut short, to that pair's subscribers; {"kind": binary, "hex"}
                                  or {"kind": text, "text"} to every socket of {"socket": market|orders}
    POST /paper/v1/feed/orders/pause, /resume   order updates are dropped while paused

Control routes answer 403 when the exchange runs with its control API off; errors are
`{"errors": [{"field", "reason"}]}` as in paper.control.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from paper.control import Invalid
from paper.control import guarded as control_guarded
from paper.order_updates import OrderUpdates
from paper.packets import ENCODERS, EXCHANGE_CODES, MODES, PACKET_SIZES
from paper.stream import Connection, MarketFeed, text_message

if TYPE_CHECKING:
    from paper.exchange import PaperExchange

__all__ = ["socket_routes", "hubs_of"]

PREFIX = "/paper/v1/feed"
DEFAULT_GARBAGE = bytes([9, 1]) + b"\xff" * 49  # an LTP-sized frame in a mode that does not exist


def hubs_of(exchange: PaperExchange) -> tuple[MarketFeed, OrderUpdates]:
    """The market feed and order-update hub serving `exchange`."""
    return exchange.sockets


def socket_routes(exchange: PaperExchange) -> list[BaseRoute]:
    feed = MarketFeed(exchange)
    updates = OrderUpdates(exchange)
    exchange.sockets = (feed, updates)
    exchange.reset_hooks.append(feed.reactivate)

    def guarded(handler):
        async def call(request: Request, body: dict[str, Any]) -> Response:
            return await handler(body)

        call.__name__ = handler.__name__
        return control_guarded(exchange, call)

    def sockets(which: Any) -> list[Connection]:
        if which not in ("market", "orders", "all"):
            raise Invalid("socket", "expected market, orders or all")
        market = feed.all_connections() if which in ("market", "all") else []
        return market + (updates.all_connections() if which in ("orders", "all") else [])

    async def state(body: dict[str, Any]) -> Response:
        return JSONResponse({
            "stalled": feed.stalled,
            "order_updates_paused": updates.paused,
            "order_updates_dropped": updates.dropped,
            "market": feed.state(),
            "orders": [{"clientcode": c.clientcode, "peer": c.peer, "queued": c.queued} for c in updates.all_connections()],
        })

    async def stall(body: dict[str, Any]) -> Response:
        feed.stalled = True
        return JSONResponse({"stalled": True})

    async def resume(body: dict[str, Any]) -> Response:
        feed.stalled = False
        return JSONResponse({"stalled": False})

    async def drop(body: dict[str, Any]) -> Response:
        if "token" in body:
            if body.get("socket", "market") != "market":
                raise Invalid("socket", "an instrument's subscribers are market sockets: expected market")
            token = body["token"]
            if type(token) not in (str, int) or not str(token).strip():
                raise Invalid("token", "expected the instrument's token")
            targets = feed.holders_of(str(body.get("exchange", "NSE")).upper(), str(token).strip())
        else:
            targets = sockets(body.get("socket", "all"))
        how, code, reason = body.get("how", "close"), body.get("code", 1001), body.get("reason", "Going away")
        if how not in ("close", "abort"):
            raise Invalid("how", "expected close or abort")
        if isinstance(code, bool) or not isinstance(code, int) or not (code == 1000 or 1001 <= code <= 1014 or 3000 <= code <= 4999) or code in (1004, 1005, 1006):
            raise Invalid("code", "expected a close code that may be sent: 1000-1003, 1007-1014 or 3000-4999")
        if not isinstance(reason, str) or len(reason.encode()) > 123:
            raise Invalid("reason", "expected text of at most 123 bytes")
        for connection in targets:
            if how == "abort":
                connection.abort()
            else:
                connection.close(code, reason)
        return JSONResponse({"dropped": len(targets), "how": how})

    async def garbage(body: dict[str, Any]) -> Response:
        kind = body.get("kind")
        if kind == "truncated":
            targets, frame = truncated(body)
            message: dict[str, Any] = {"type": "websocket.send", "bytes": frame}
        elif kind == "binary":
            targets = sockets(body.get("socket", "market"))
            try:
                frame = bytes.fromhex(body["hex"]) if "hex" in body else DEFAULT_GARBAGE
            except (TypeError, ValueError):
                raise Invalid("hex", "expected hexadecimal bytes") from None
            message = {"type": "websocket.send", "bytes": frame}
        elif kind == "text":
            targets = sockets(body.get("socket", "market"))
            text = body.get("text", '{"garbage": tru')
            if not isinstance(text, str):
                raise Invalid("text", "expected a string")
            message = text_message(text)
        else:
            raise Invalid("kind", "expected truncated, binary or text")
        for connection in targets:
            connection.push(message)
        return JSONResponse({"sent": len(targets), "bytes": len(message.get("bytes") or message.get("text", "").encode())})

    def truncated(body: dict[str, Any]) -> tuple[list[Connection], bytes]:
        name, token = str(body.get("exchange", "NSE")).upper(), str(body.get("token", "")).strip()
        instrument = exchange.universe.by_token(name, token)
        if instrument is None or name not in EXCHANGE_CODES:
            raise Invalid("token", f"no instrument {token!r} on {name}", 404)
        mode = body.get("mode", 1)
        if isinstance(mode, bool) or mode not in MODES:
            raise Invalid("mode", "expected 1 (LTP), 2 (QUOTE), 3 (SNAP_QUOTE) or 4 (DEPTH)")
        size = PACKET_SIZES[mode]
        length = body.get("length", size // 2)
        if isinstance(length, bool) or not isinstance(length, int) or not 0 < length < size:
            raise Invalid("length", f"expected 0 < length < {size}")
        packet = ENCODERS[mode](EXCHANGE_CODES[name], exchange.prices.quote(name, token))
        return feed.subscribers_of(instrument.exchange, instrument.token, mode), packet[:length]

    async def pause_orders(body: dict[str, Any]) -> Response:
        updates.paused = True
        return JSONResponse({"order_updates_paused": True})

    async def resume_orders(body: dict[str, Any]) -> Response:
        updates.paused = False
        return JSONResponse({"order_updates_paused": False, "dropped": updates.dropped})

    return [
        WebSocketRoute("/smart-stream", feed.serve),
        WebSocketRoute("/smart-order-update", updates.serve),
        Route(PREFIX, guarded(state), methods=["GET"]),
        Route(f"{PREFIX}/stall", guarded(stall), methods=["POST"]),
        Route(f"{PREFIX}/resume", guarded(resume), methods=["POST"]),
        Route(f"{PREFIX}/drop", guarded(drop), methods=["POST"]),
        Route(f"{PREFIX}/garbage", guarded(garbage), methods=["POST"]),
        Route(f"{PREFIX}/orders/pause", guarded(pause_orders), methods=["POST"]),
        Route(f"{PREFIX}/orders/resume", guarded(resume_orders), methods=["POST"]),
    ]
