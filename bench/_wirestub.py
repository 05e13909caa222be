"""A minimal SmartAPI wire stub: what tickguard needs to start and guard, and nothing else.

`python -m bench._wirestub --port N --config stub.json`. One asyncio server on one port, as the paper
exchange lays its routes out (REST under the root, `/smart-stream` and `/smart-order-update` beside it):

- REST: the login (any credentials), getProfile, getRMS, getPosition (the config's net positions),
  getOrderBook and getTradeBook (empty), the instrument master (the config's instruments), and
  placeOrder, which stamps its arrival and answers a fixed success body — no matching, no fills.
  modifyOrder and cancelOrder answer success too; any other route is refused (AB1004) and logged.
- `/smart-stream`: LTP frames only, every one encoded at start-up or when the plan is posted, never while
  measuring. A subscription is answered with one frame per known token at its config price (as an
  exchange sends the current price on subscription; only the config's `primed` tokens when it names
  some). Background price paths, once switched on, are written at a fixed rate from pre-built blobs,
  each connection its own subscribed tokens'; the rate may be changed (or set to 0) at any time. With
  `"stamp": true` in the config, background frames carry the wall clock's ms as they are written.
- `/smart-order-update`: AB00 on connect; after each placeOrder's reply, one `complete` update of that
  order (so the exit fills and the trade closes, as at a broker), built then, off the measured path.

Control (`/stub/...`): `POST plan` ({"frames": [[exchange, token, ltp_paise, sequence], ...]}: the
crossing frames, encoded there and then), `POST cross/<i>` (writes frame i to the sockets subscribed to
its token and answers the nanosecond stamp taken right after the write), `POST background` ({"rate": n}),
`GET orders` ({"orders": {tag: arrival_ns}}), `GET wait?tags=a,b&timeout=s` (the same for those
tags, answered once all have arrived: no polling while an exit travels), `GET written` (background
frames written so far, and when; `all`: every tick frame written to a stream socket; `sockets`: the
instruments each stream connection subscribed), `GET requests` (requests by path).

The HTTP handling is a hand-written HTTP/1.1 reader on asyncio streams (keep-alive, Content-Length
bodies, which is all aiohttp and httpx send here) and the WebSocket framing is done by hand, as in
`bench._blaster`: no framework between the socket and the stamps, so the stub's own time in a
tick→exit sample is a `transport.write` on one side and a `readuntil` on the other. Both stamps are
`time.perf_counter_ns()` (CLOCK_MONOTONIC) in this one process. Not uvicorn with a bare ASGI callable:
its parser, its ASGI scope and its task per request would sit between the request's arrival and the
earliest point a handler could stamp it. Not the `websockets` server: the stub only needs the handshake
and pre-built frames written as they are, which three lines do; parsing the client's few frames (its
subscriptions and pings) by hand keeps one event loop and one reader for both protocols on one port.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bench._wsframes import accept_upgrade, read_frame
from paper.packets import EXCHANGE_CODES, LTP, LTP_PACKET

SECURE = "/rest/secure/angelbroking"
MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
CLIENTCODE = "P0001"
CHUNK_S = 0.002  # the background writer's period
TS, TS_AT = struct.Struct("<q"), 2 + 35  # a LTP frame's exchange time stamp: after the frame head, mode .. sequence
Key = tuple[int, str]  # (exchangeType, token)


def ltp_frame(exchange: str, token: str, ltp: int, sequence: int, ts_ms: int) -> bytes:
    """One unmasked binary WebSocket frame carrying a 51-byte LTP packet."""
    packet = LTP_PACKET.pack(LTP, EXCHANGE_CODES[exchange], token.encode(), sequence, ts_ms, ltp)
    return b"\x82" + bytes([len(packet)]) + packet


def text_frame(text: str) -> bytes:
    data = text.encode()
    if len(data) < 126:
        return bytes([0x81, len(data)]) + data
    if len(data) < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", len(data)) + data
    return bytes([0x81, 127]) + struct.pack("!Q", len(data)) + data


def envelope(data: Any) -> bytes:
    return json.dumps({"status": True, "message": "SUCCESS", "errorcode": "", "data": data}).encode()


def response(body: bytes, status: str = "200 OK") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)


class Stub:
    def __init__(self, config: dict[str, Any]) -> None:
        now_ms = int(time.time() * 1000)
        self.instruments = config["instruments"]
        primed = set(config.get("primed") or [t for _e, t, _s, _p in self.instruments])  # default: every one
        self.first: dict[Key, bytes] = {(EXCHANGE_CODES[e], t): ltp_frame(e, t, price, 0, now_ms)
                                         for e, t, _symbol, price in self.instruments if t in primed}
        # background: frames interleaved path by path, kept per token so a connection gets its own
        self.paths: dict[Key, list[bytes]] = {
            (EXCHANGE_CODES[e], t): [ltp_frame(e, t, ltp, n, now_ms) for n, ltp in enumerate(points, 1)]
            for e, t, points in config.get("background", [])}
        master = [{"token": t, "symbol": s, "name": s.removesuffix("-EQ"), "expiry": "", "strike": "-1.000000",
                   "lotsize": "1", "instrumenttype": "", "exch_seg": e, "tick_size": "5.000000"}
                  for e, t, s, _p in self.instruments]
        self.master = response(json.dumps(master).encode())
        rows = [{"exchange": e, "symboltoken": t, "tradingsymbol": s, "producttype": "INTRADAY", "netqty": str(net),
                 "buyqty": str(max(net, 0)), "sellqty": str(max(-net, 0)), "ltp": "0", "realised": "0",
                 "unrealised": "0"} for e, t, s, net in config.get("positions", [])]
        self.positions = response(envelope(rows or None))
        self.login = response(envelope({"jwtToken": "stub-jwt", "refreshToken": "stub-refresh",
                                        "feedToken": "stub-feed"}))
        self.profile = response(envelope({"clientcode": CLIENTCODE, "name": "wire stub", "email": "", "mobileno": "",
                                          "exchanges": ["nse_cm", "nse_fo"], "products": ["MIS", "NRML", "CNC"],
                                          "lastlogintime": "", "brokerid": "B2C"}))
        self.rms = response(envelope({"net": "1000000000.00", "availablecash": "1000000000.00",
                                      "utiliseddebits": "0", "m2mrealized": "0", "m2munrealized": "0"}))
        self.empty = response(envelope(None))
        self.streams: dict[asyncio.StreamWriter, set[Key]] = {}
        self.updates: set[asyncio.StreamWriter] = set()
        self.plan: list[tuple[Key, bytes]] = []
        self.orders: dict[str, int] = {}
        self.requests: dict[str, int] = {}  # by path, every request and upgrade
        self.arrival = asyncio.Event()  # set (and replaced) on every placeOrder
        self.order_ids = count(1)
        self.rate = 0
        self.stamp = bool(config.get("stamp"))
        self.written = 0  # background frames
        self.tick_frames = 0  # every tick frame written to a smart-stream socket (first prices, crossings, background)
        self.writers: set[asyncio.Task] = set()

    # HTTP --------------------------------------------------------------------------------------------
    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.perf_counter_ns()
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                path = target.split("?", 1)[0]
                self.requests[path] = self.requests.get(path, 0) + 1
                if headers.get("upgrade", "").lower() == "websocket":
                    await self.websocket(path, headers, reader, writer)
                    return
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if path == f"{SECURE}/order/v1/placeOrder":
                    self.place(body, arrived, writer)
                elif path == "/stub/wait":
                    writer.write(await self.wait(target.partition("?")[2]))
                else:
                    writer.write(self.answer(method, path, body))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def answer(self, method: str, path: str, body: bytes) -> bytes:
        if path.startswith("/stub/"):
            return self.control(method, path.removeprefix("/stub/"), body)
        fixed = {"/rest/auth/angelbroking/user/v1/loginByPassword": self.login,
                 "/rest/auth/angelbroking/jwt/v1/generateTokens": self.login,
                 f"{SECURE}/user/v1/getProfile": self.profile, f"{SECURE}/user/v1/getRMS": self.rms,
                 f"{SECURE}/order/v1/getPosition": self.positions, f"{SECURE}/order/v1/getOrderBook": self.empty,
                 f"{SECURE}/order/v1/getTradeBook": self.empty, MASTER_PATH: self.master}
        if path in fixed:
            return fixed[path]
        if path in (f"{SECURE}/order/v1/modifyOrder", f"{SECURE}/order/v1/cancelOrder"):
            order_id = json.loads(body or b"{}").get("orderid", "")
            return response(envelope({"orderid": order_id, "uniqueorderid": f"u{order_id}"}))
        print(f"refused {method} {path}", file=sys.stderr, flush=True)
        return response(json.dumps({"status": False, "message": "not served by the wire stub",
                                    "errorcode": "AB1004", "data": None}).encode())

    def place(self, body: bytes, arrived: int, writer: asyncio.StreamWriter) -> None:
        """placeOrder: the arrival stamp (the request's head read), a fixed success, then its fill."""
        order = json.loads(body)
        tag = str(order.get("ordertag") or "")
        self.orders.setdefault(tag, arrived)
        self.arrival.set()
        self.arrival = asyncio.Event()
        number = next(self.order_ids)
        writer.write(response(envelope({"script": order.get("tradingsymbol", ""), "orderid": f"S{number}",
                                        "uniqueorderid": f"u{number}"})))
        if self.updates:
            frame = text_frame(fill_update(order, number))
            for socket in self.updates:
                socket.write(frame)

    async def wait(self, query: str) -> bytes:
        """`/stub/wait?tags=a,b&timeout=s`: once placeOrder has brought every tag, their arrival stamps."""
        params = {name: values[-1] for name, values in parse_qs(query).items()}
        tags = [tag for tag in params.get("tags", "").split(",") if tag]
        deadline = time.monotonic() + float(params.get("timeout") or 10)
        while not all(tag in self.orders for tag in tags):
            try:
                await asyncio.wait_for(self.arrival.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                missing = [tag for tag in tags if tag not in self.orders]
                return response(json.dumps({"missing": missing}).encode(), "504 Gateway Timeout")
        return response(json.dumps({"orders": {tag: self.orders[tag] for tag in tags}}).encode())

    def control(self, method: str, what: str, body: bytes) -> bytes:
        if what == "health":
            return response(b'{"ok": true}')
        if what == "orders":
            return response(json.dumps({"orders": self.orders}).encode())
        if what == "requests":
            return response(json.dumps({"paths": self.requests}).encode())
        if what == "written":
            return response(json.dumps({"frames": self.written, "ns": time.perf_counter_ns(), "all": self.tick_frames,
                                        "sockets": [len(keys) for keys in self.streams.values()]}).encode())
        if what == "plan" and method == "POST":
            self.plan = [((EXCHANGE_CODES[e], t), ltp_frame(e, t, ltp, seq, ts)) for e, t, ltp, seq, ts
                         in json.loads(body)["frames"]]
            return response(json.dumps({"frames": len(self.plan)}).encode())
        if what.startswith("cross/") and method == "POST":
            key, frame = self.plan[int(what.removeprefix("cross/"))]
            sockets = [socket for socket, keys in self.streams.items() if key in keys]
            for socket in sockets:
                socket.write(frame)
            written = time.perf_counter_ns()
            self.tick_frames += len(sockets)
            return response(json.dumps({"written_ns": written, "sockets": len(sockets)}).encode())
        if what == "background" and method == "POST":
            self.rate = int(json.loads(body)["rate"])
            return response(json.dumps({"rate": self.rate, "sockets": len(self.streams)}).encode())
        return response(b'{"error": "unknown control route"}', "404 Not Found")

    # WebSockets --------------------------------------------------------------------------------------
    async def websocket(self, path: str, headers: dict[str, str], reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        accept_upgrade(writer, headers.get("sec-websocket-key", "").encode())
        if path == "/smart-stream":
            self.streams[writer] = set()
            task = asyncio.create_task(self.background(writer))
            self.writers.add(task)
            try:
                await self.frames(reader, writer, self.subscribe)
            finally:
                task.cancel()
                self.writers.discard(task)
                del self.streams[writer]
        elif path == "/smart-order-update":
            writer.write(text_frame(json.dumps({"user-id": CLIENTCODE, "status-code": "200", "order-status": "AB00",
                                                "error-message": "", "orderData": {}})))
            self.updates.add(writer)
            try:
                await self.frames(reader, writer, lambda _writer, _text: None)
            finally:
                self.updates.discard(writer)

    async def frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_text) -> None:
        """Client frames until close: pings answered (protocol and text), other text to `on_text`."""
        while True:
            opcode, data = await read_frame(reader)
            if opcode == 0x9:
                writer.write(bytes([0x8A, len(data)]) + data)
            elif opcode == 0x8:
                writer.write(b"\x88\x02\x03\xe8")
                return
            elif opcode == 0x1 and data == b"ping":
                writer.write(b"\x81\x04pong")
            elif opcode == 0x1:
                on_text(writer, data.decode())

    def subscribe(self, writer: asyncio.StreamWriter, text: str) -> None:
        request = json.loads(text)
        keys = {(int(entry["exchangeType"]), str(token)) for entry in request["params"]["tokenList"]
                for token in entry["tokens"]}
        if request["action"] == 1:
            new = keys - self.streams[writer]
            self.streams[writer] |= keys
            first = [self.first[key] for key in new if key in self.first]
            writer.write(b"".join(first))
            self.tick_frames += len(first)
        else:
            self.streams[writer] -= keys

    async def background(self, writer: asyncio.StreamWriter) -> None:
        """Once a rate is set: this connection's subscribed paths, interleaved, at its share of the rate
        (the connections' shares add up to it), following the rate as it is changed (0: paused). With
        `stamp`, each chunk's frames carry the wall clock's ms as their exchange time stamp when written
        (an instrument's stamps never go back); otherwise the stamps they were encoded with."""
        while not self.rate or not any(key in self.streams[writer] for key in self.paths):
            await asyncio.sleep(0.05)
        mine = [frames for key, frames in self.paths.items() if key in self.streams[writer]]
        share = len(mine) / len(self.paths)
        blob = b"".join(b"".join(step) for step in zip(*mine))
        size = len(mine[0][0])
        frames = len(blob) // size
        loop = asyncio.get_running_loop()
        last, credit, at = loop.time(), 0.0, 0
        while True:
            await asyncio.sleep(CHUNK_S)
            now = loop.time()
            credit = min(credit + (now - last) * self.rate * share, frames)  # a stalled reader's debt: one blob at most
            last = now
            due = int(credit)
            if due <= 0:
                continue
            credit -= due
            end = at + due
            chunk = blob[at * size:end * size] if end <= frames else blob[at * size:] + blob[:(end - frames) * size]
            if self.stamp:
                chunk = bytearray(chunk)
                ts = TS.pack(int(time.time() * 1000))
                for offset in range(TS_AT, len(chunk), size):
                    chunk[offset:offset + 8] = ts
            writer.write(chunk)
            at = end % frames
            self.written += due
            self.tick_frames += due
            await writer.drain()


def fill_update(order: dict[str, Any], number: int) -> str:
    """The order-update socket's `complete` of a placed order, filled whole at its price."""
    row = {"variety": order.get("variety", "NORMAL"), "ordertype": order.get("ordertype", "LIMIT"),
           "ordertag": order.get("ordertag", ""), "producttype": order.get("producttype", "INTRADAY"),
           "duration": "DAY", "tradingsymbol": order.get("tradingsymbol", ""),
           "transactiontype": order.get("transactiontype", "SELL"), "exchange": order.get("exchange", "NSE"),
           "symboltoken": order.get("symboltoken", ""), "orderid": f"S{number}", "uniqueorderid": f"u{number}",
           "status": "complete", "orderstatus": "complete", "price": order.get("price", 0),
           "averageprice": order.get("price", 0), "quantity": str(order.get("quantity", "0")),
           "filledshares": str(order.get("quantity", "0")), "unfilledshares": "0", "text": ""}
    return json.dumps({"user-id": CLIENTCODE, "status-code": "200", "order-status": "AB05", "error-message": "",
                       "orderData": row})


async def main(port: int, config: dict[str, Any]) -> None:
    stub = Stub(config)
    server = await asyncio.start_server(stub.connection, "127.0.0.1", port)
    print(f"ready {time.time():.3f}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, json.loads(args.config.read_text())))
