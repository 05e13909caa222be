"""The smart-order-update socket (SmartWebSocketOrderUpdate): AB00 on connect, then ABxx per change.

Every order state change the fill engine reports goes, as one JSON text frame, to every connection
of that order's client code: `{"user-id", "status-code": "200", "order-status": "ABxx",
"error-message": "", "orderData": <the order-book row>}`. The frame is serialised once per change
and shared by the client's connections.

While updates are paused (feed control) changes are dropped, not queued: during a real outage of
this socket nothing is replayed, and a client must reconcile from the order book. A change the engine
marks `push_after_s` (the `cancel_loses` fault's fill) is pushed that much later, after changes made
since: the exchange's report of a fill overtaken by the reply to a cancel.
"""
from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from paper.auth import Session, TokenError
from paper.stream import Connection, refuse

if TYPE_CHECKING:
    from paper.exchange import PaperExchange
    from paper.orders import OrderEvent

__all__ = ["OrderUpdates", "ORDER_STATUS_CODES", "CONNECTED"]

CONNECTED = "AB00"
ORDER_STATUS_CODES: dict[str, str] = {
    "open": "AB01",
    "cancelled": "AB02",
    "rejected": "AB03",
    "modified": "AB04",
    "complete": "AB05",
    "after market order req received": "AB06",
    "cancelled after market order": "AB07",
    "modify after market order req received": "AB08",
    "open pending": "AB09",
    "validation pending": "AB09",  # seen in the wild; both are "not at the exchange yet"
    "put order req received": "AB09",
    "trigger pending": "AB10",
    "modify pending": "AB11",
}
_NUMBER_FIELDS = ("price", "triggerprice", "squareoff", "stoploss", "trailingstoploss", "strikeprice", "averageprice")
_QUANTITY_FIELDS = ("quantity", "disclosedquantity", "lotsize", "cancelsize", "filledshares", "unfilledshares")
_TEXT_FIELDS = (
    "variety", "ordertype", "ordertag", "producttype", "duration", "tradingsymbol", "transactiontype", "exchange",
    "symboltoken", "instrumenttype", "optiontype", "expirydate", "orderid", "text", "status", "orderstatus",
    "updatetime", "exchtime", "exchorderupdatetime", "fillid", "filltime", "parentorderid", "uniqueorderid",
    "exchangeorderid",
)
EMPTY_ORDER: dict[str, Any] = {
    **{name: "" for name in _TEXT_FIELDS}, **{name: 0 for name in _NUMBER_FIELDS}, **{name: "0" for name in _QUANTITY_FIELDS},
}


def update_json(clientcode: str, order_status: str, order_data: dict[str, Any]) -> str:
    return json.dumps({
        "user-id": clientcode, "status-code": "200", "order-status": order_status, "error-message": "",
        "orderData": order_data,
    })


class OrderUpdates:
    """Order-update connections by client code, and the push of every order event to them."""

    def __init__(self, exchange: PaperExchange, *, max_connections: int = 3, queue_limit: int = 4096) -> None:
        self.exchange = exchange
        self.max_connections = max_connections
        self.queue_limit = queue_limit
        self.paused = False
        self.dropped = 0  # updates lost while paused
        self.connections: dict[str, list[Connection]] = {}
        exchange.order_listeners.append(self.on_order_event)

    def on_order_event(self, event: OrderEvent) -> None:
        if event.push_after_s > 0:
            try:
                asyncio.get_running_loop().call_later(event.push_after_s, self._push, event)
                return
            except RuntimeError:  # no loop (the engine driven directly): nothing to overtake
                pass
        self._push(event)

    def _push(self, event: OrderEvent) -> None:
        connections = self.connections.get(event.clientcode.upper())
        if not connections:
            return
        if self.paused:
            self.dropped += 1
            return
        code = ORDER_STATUS_CODES.get(event.status, "AB01")
        message = {"type": "websocket.send", "text": update_json(event.clientcode, code, event.row)}
        for connection in connections:
            connection.push(message)

    async def serve(self, websocket: WebSocket) -> None:
        try:
            session = self._authenticate(websocket)
        except TokenError as exc:
            status = 403 if exc.errorcode == "AG8002" else 401
            await refuse(websocket, status, exc.message)
            return
        code = session.clientcode.upper()
        if len(self.connections.get(code, ())) >= self.max_connections:
            await refuse(websocket, 429, "Connection limit exceeded")
            return
        connection = Connection(websocket, session.clientcode, self.queue_limit)
        siblings = self.connections.setdefault(code, [])
        siblings.append(connection)
        try:
            await websocket.accept()
            connection.push({"type": "websocket.send", "text": update_json(session.clientcode, CONNECTED, EMPTY_ORDER)})
            await connection.run(lambda *_: None)  # nothing but heartbeats is read here
        finally:
            siblings.remove(connection)
            if not siblings:
                self.connections.pop(code, None)

    def _authenticate(self, websocket: WebSocket) -> Session:
        """`Authorization: [Bearer ]<jwt>`; the SDK adds x-api-key and x-client-code, the docs do not."""
        headers = websocket.headers
        sessions = self.exchange.sessions
        session = sessions.authenticate(headers.get("authorization"), headers.get("x-api-key"), require_key=False)
        clientcode = headers.get("x-client-code")
        if clientcode and clientcode.upper() != session.clientcode.upper():
            raise TokenError("AG8001", "Invalid Client Code")
        return session

    def all_connections(self) -> list[Connection]:
        return [c for siblings in self.connections.values() for c in siblings]
