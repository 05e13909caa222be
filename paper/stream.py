"""The smart-stream socket (SmartWebSocketV2): handshake auth, subscriptions and the tick fan-out.

Hot path: the price book calls `MarketFeed.on_quotes` on the event-loop thread with every batch of
changed quotes. Each changed (token, mode) with subscribers is encoded once, wrapped once in an ASGI
send message, and that same message is appended to every subscribed connection's outbox. Each
connection has one writer task draining its outbox, so a slow client only fills its own outbox.

Overflow: an outbox holds at most `queue_limit` frames. A connection that falls that far behind is
closed with 1008 "Send queue overflow: client too slow" (pending frames are discarded); if even the
close frame cannot be written within `CLOSE_GRACE_S` the socket is dropped without it.
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.websockets import WebSocket

from paper.auth import TokenError
from paper.packets import DEPTH, ENCODERS, EXCHANGE_CODES, EXCHANGE_TYPES, MODES
from paper.stamps import Stamps

if TYPE_CHECKING:
    from paper.exchange import PaperExchange
    from paper.quotes import Quote

__all__ = ["Connection", "MarketFeed", "refuse", "text_message", "E1001", "E1002"]

E1001 = ("E1001", "Invalid Request Payload")
E1002 = ("E1002", "Invalid Request. Subscription Limit Exceeded")
CONNECTION_LIMIT = ("E1002", "Invalid Request. Connection Limit Exceeded")
OVERFLOW = (1008, "Send queue overflow: client too slow")
CLOSE_GRACE_S = 2.0
Pair = tuple[str, str, int]  # exchange, token, mode
TextHandler = Callable[["Connection", "str | None"], None]  # a text frame other than "ping"; None for binary


def text_message(text: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": text}


class Connection:
    """One accepted socket: a bounded outbox of ASGI messages and the writer task that drains it."""

    __slots__ = ("websocket", "clientcode", "limit", "pairs", "closing", "overflowed", "stamps", "_outbox", "_wake",
                 "_writer")

    def __init__(self, websocket: WebSocket, clientcode: str, limit: int, stamps: Stamps | None = None) -> None:
        self.websocket = websocket
        self.stamps = stamps  # market frames carry their quote's (exchange, token, ltp) to be stamped once sent
        self.clientcode = clientcode
        self.limit = limit
        self.pairs: set[Pair] = set()  # market subscriptions
        self.closing = False
        self.overflowed = False
        self._outbox: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None

    @property
    def queued(self) -> int:
        return len(self._outbox)

    @property
    def peer(self) -> str:
        """The client's address (its socket's bound source address), as the control API shows it."""
        client = self.websocket.client
        return client.host if client is not None else ""

    def push(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        if len(self._outbox) >= self.limit:
            self.overflowed = True
            self.close(*OVERFLOW)
            return
        self._outbox.append(message)
        self._wake.set()

    def close(self, code: int = 1000, reason: str = "", *, discard: bool = True) -> None:
        """Send a close frame (after what is queued, unless discarded); drop the socket if it cannot be written soon."""
        if self.closing:
            return
        self.closing = True
        if discard:
            self._outbox.clear()
        self._outbox.append({"type": "websocket.close", "code": code, "reason": reason})
        self._wake.set()
        if self._writer is not None:
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, self._writer.cancel)

    def abort(self) -> None:
        """End the connection without a close frame, as a network drop does."""
        self.closing = True
        self._outbox.clear()
        if self._writer is not None:
            self._writer.cancel()

    async def run(self, on_text: TextHandler) -> None:
        """Serve until the client leaves, the writer has sent a close, or the connection is aborted."""
        writer = self._writer = asyncio.create_task(self._write(), name=f"paper-ws-writer-{self.clientcode}")
        reader = asyncio.create_task(_read(self, on_text), name=f"paper-ws-reader-{self.clientcode}")
        try:
            await asyncio.wait((writer, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, reader):
                task.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)

    async def _write(self) -> None:
        outbox, wake, send, stamps = self._outbox, self._wake, self.websocket.send, self.stamps
        while True:
            if not outbox:
                wake.clear()
                await wake.wait()
                continue
            message = outbox.popleft()
            if stamps is not None and (quote := message.get("quote")) is not None:
                message["quote"] = None  # the frame is shared by every subscriber: stamped at its first send
                stamps.tick_sent(*quote)  # before `send`: it writes to the socket at once, then may wait to drain
            await send(message)
            if message["type"] == "websocket.close":
                return


async def _read(connection: Connection, on_text: TextHandler) -> None:
    receive = connection.websocket.receive
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "ping":
            connection.push(text_message("pong"))
        else:
            on_text(connection, text)  # None for a binary frame


async def refuse(websocket: WebSocket, status: int, error_message: str) -> None:
    """Refuse the handshake with an HTTP status and SmartAPI's `x-error-message` header."""
    await websocket.send_denial_response(
        Response(error_message, status_code=status, headers={"x-error-message": error_message}, media_type="text/plain")
    )


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidRequest(Exception):
    def __init__(self, error: tuple[str, str]) -> None:
        self.error = error
        super().__init__(error[1])


class MarketFeed:
    """Every smart-stream connection, who subscribed to what, and the fan-out of ticks to them."""

    def __init__(self, exchange: PaperExchange, *, max_connections: int = 3, max_pairs: int = 1000,
                 max_depth_tokens: int = 50, queue_limit: int = 65_536) -> None:
        self.exchange = exchange
        self.max_connections = max_connections
        self.max_pairs = max_pairs
        self.max_depth_tokens = max_depth_tokens
        self.queue_limit = queue_limit
        self.stalled = False
        self.connections: dict[str, list[Connection]] = {}  # by upper-case client code
        self._subscribers: dict[tuple[str, str], dict[int, set[Connection]]] = {}
        exchange.quote_listeners.append(self.on_quotes)

    # The hot path ------------------------------------------------------------------------------------
    def on_quotes(self, quotes: list[Quote]) -> None:
        subscribers = self._subscribers
        if self.stalled or not subscribers:
            return
        for quote in quotes:
            by_mode = subscribers.get((quote.exchange, quote.token))
            if by_mode is None:
                continue
            code = EXCHANGE_CODES[quote.exchange]
            for mode, connections in by_mode.items():
                message = {"type": "websocket.send", "bytes": ENCODERS[mode](code, quote),
                           "quote": (quote.exchange, quote.token, quote.ltp)}
                for connection in connections:
                    connection.push(message)

    # Connections --------------------------------------------------------------------------------------
    async def serve(self, websocket: WebSocket) -> None:
        try:
            clientcode = self._authenticate(websocket)
        except Refused as exc:
            await refuse(websocket, 401, f"Invalid Header - {exc.reason}")
            return
        await websocket.accept()
        connection = Connection(websocket, clientcode, self.queue_limit, self.exchange.stamps)
        siblings = self.connections.setdefault(clientcode.upper(), [])
        if len(siblings) >= self.max_connections:
            connection.push(text_message(self._error_json(None, CONNECTION_LIMIT)))
            connection.close(1008, "Connection limit exceeded", discard=False)
            await connection.run(lambda *_: None)
            return
        siblings.append(connection)
        try:
            await connection.run(self.handle_request)
        finally:
            self._forget(connection)

    def _authenticate(self, websocket: WebSocket) -> str:
        """The client code behind the handshake: the four headers, or the browser's query parameters."""
        query, headers = websocket.query_params, websocket.headers
        browser = bool({"clientCode", "feedToken", "apiKey"} & set(query))  # this form carries no JWT
        if browser:
            clientcode, feed_token, api_key = query.get("clientCode"), query.get("feedToken"), query.get("apiKey")
        else:
            clientcode, feed_token, api_key = headers.get("x-client-code"), headers.get("x-feed-token"), headers.get("x-api-key")
        sessions = self.exchange.sessions
        login = sessions.by_code.get(str(clientcode or "").upper())
        if login is None:
            raise Refused("Invalid Client Code")
        if not api_key or api_key != login.api_key:
            raise Refused("Invalid API Key")
        if not browser:
            try:
                session = sessions.authenticate(headers.get("authorization"), api_key)
            except TokenError:
                raise Refused("Invalid Auth token") from None
            if session.clientcode.upper() != login.clientcode.upper():
                raise Refused("Invalid Auth token")
        try:
            sessions.authenticate_feed(login.clientcode, feed_token or "", api_key)
        except TokenError:
            raise Refused("Invalid Feed Token") from None
        return login.clientcode

    def _forget(self, connection: Connection) -> None:
        siblings = self.connections.get(connection.clientcode.upper(), [])
        if connection in siblings:
            siblings.remove(connection)
        if not siblings:
            self.connections.pop(connection.clientcode.upper(), None)
        self._unsubscribe(connection, set(connection.pairs))

    def all_connections(self) -> list[Connection]:
        return [c for siblings in self.connections.values() for c in siblings]

    # Requests -----------------------------------------------------------------------------------------
    def handle_request(self, connection: Connection, text: str | None) -> None:
        correlation = None
        try:
            request = json.loads(text) if text is not None else None
            if isinstance(request, dict):
                correlation = request.get("correlationID")
            action, mode, pairs = self._parse(request)
            if action == 1:
                self._subscribe(connection, mode, pairs)
            else:
                self._unsubscribe(connection, {(exchange, token, mode) for exchange, token in pairs})
        except ValueError:
            connection.push(text_message(self._error_json(correlation, E1001)))
        except InvalidRequest as exc:
            connection.push(text_message(self._error_json(correlation, exc.error)))

    @staticmethod
    def _error_json(correlation: Any, error: tuple[str, str]) -> str:
        echo = correlation if isinstance(correlation, str) else ""
        return json.dumps({"correlationID": echo, "errorCode": error[0], "errorMessage": error[1]})

    @staticmethod
    def _parse(request: Any) -> tuple[int, int, list[tuple[str, str]]]:
        if not isinstance(request, dict):
            raise InvalidRequest(E1001)
        correlation = request.get("correlationID")
        action, params = request.get("action"), request.get("params")
        if correlation is not None and (not isinstance(correlation, str) or len(correlation) > 10):
            raise InvalidRequest(E1001)
        if type(action) is not int or action not in (0, 1) or not isinstance(params, dict):
            raise InvalidRequest(E1001)
        mode, token_list = params.get("mode"), params.get("tokenList")
        if type(mode) is not int or mode not in MODES or not isinstance(token_list, list) or not token_list:
            raise InvalidRequest(E1001)
        pairs: list[tuple[str, str]] = []
        for entry in token_list:
            if not isinstance(entry, dict):
                raise InvalidRequest(E1001)
            code, tokens = entry.get("exchangeType"), entry.get("tokens")
            if type(code) is not int or code not in EXCHANGE_TYPES or not isinstance(tokens, list):
                raise InvalidRequest(E1001)
            if mode == DEPTH and code != 1 and action == 1:  # 20-level depth is NSE cash only
                raise InvalidRequest(E1001)
            for token in tokens:
                if type(token) not in (str, int) or not str(token).strip() or len(str(token)) > 24:
                    raise InvalidRequest(E1001)
                pairs.append((EXCHANGE_TYPES[code], str(token).strip()))
        return action, mode, pairs

    def _subscribe(self, connection: Connection, mode: int, pairs: list[tuple[str, str]]) -> None:
        new = {(exchange, token, mode) for exchange, token in pairs} - connection.pairs
        if len(connection.pairs) + len(new) > self.max_pairs:
            raise InvalidRequest(E1002)
        if mode == DEPTH and sum(1 for p in connection.pairs if p[2] == DEPTH) + len(new) > self.max_depth_tokens:
            raise InvalidRequest(E1002)
        connection.pairs |= new
        book, universe = self.exchange.prices, self.exchange.universe
        encode = ENCODERS[mode]
        for exchange, token, _ in sorted(new):
            self._subscribers.setdefault((exchange, token), {}).setdefault(mode, set()).add(connection)
            # The current state right away; an unknown token is held but never ticks, as on the real feed.
            if not self.stalled and universe.by_token(exchange, token) is not None:
                quote = book.quote(exchange, token)  # activates a contract so it keeps ticking
                connection.push({"type": "websocket.send", "bytes": encode(EXCHANGE_CODES[exchange], quote)})

    def reactivate(self) -> None:
        """After the exchange's reset: every subscribed contract ticks again in the new price book."""
        book = self.exchange.prices
        for connection in self.all_connections():
            for exchange, token, _mode in connection.pairs:
                try:
                    book.quote(exchange, token)
                except KeyError:
                    pass

    def _unsubscribe(self, connection: Connection, pairs: set[Pair]) -> None:
        for exchange, token, mode in pairs & connection.pairs:
            by_mode = self._subscribers.get((exchange, token), {})
            connections = by_mode.get(mode)
            if connections is not None:
                connections.discard(connection)
                if not connections:
                    del by_mode[mode]
            if not by_mode:
                self._subscribers.pop((exchange, token), None)
        connection.pairs -= pairs

    # Faults -------------------------------------------------------------------------------------------
    def subscribers_of(self, exchange: str, token: str, mode: int) -> list[Connection]:
        return list(self._subscribers.get((exchange, token), {}).get(mode, ()))

    def holders_of(self, exchange: str, token: str) -> list[Connection]:
        """The connections subscribed to an instrument, in any mode."""
        return list({c: None for held in self._subscribers.get((exchange, token), {}).values() for c in held})

    def state(self) -> list[dict[str, Any]]:
        return [
            {"clientcode": c.clientcode, "peer": c.peer, "subscriptions": len(c.pairs), "queued": c.queued,
             "closing": c.closing}
            for c in self.all_connections()
        ]
