"""The smart-stream tick stream (SmartWebSocketV2) on `websockets`, as the port's `TickStream`.

    LoopSubject    the ticks' Subject, without its per-value locks (everything runs on the loop thread)
    SmartStream    one socket: its subscriptions (kept across reconnects), the frame reader, the stall
                   watchdog and the REST LTP served while the socket is down or silent

The socket is a `frames.TickConnection`: its tick frames are cut from the bytes as they arrive and
handed to the stream one call each, never queued.

A login's instruments past one socket's 1000 are spread over up to three `SmartStream`s by
`feeds.LoginFeed`, which hands every one of them the same `LoopSubject` to emit into.

The socket is kept up by `reconnect.Reconnector` (backoff, handshake headers, credentials asked
again after a 401); every subscription is sent again on every new connection.

Per frame: one parse, one `on_next`, a counter for the watchdog — no logging, no allocation beyond
the `Tick`, no task switch: a socket read's frames become ticks inside the connection's
`data_received`, one after another, before the loop runs anything else (TCP holds the rest back
meanwhile). Ticks and events are emitted on the event-loop thread. `subscribe`/`unsubscribe` must be
called from that thread too.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from reactivex import Observable
from reactivex.internal import DisposedException
from reactivex.subject import Subject
from websockets.asyncio.client import ClientConnection

from service.broker.port import ExpectTicks
from service.broker.smartapi.config import SmartApiConfig
from service.broker.smartapi.frames import TickConnection, ignore_frame
from service.broker.smartapi.parsing import LTP, MODE_NAMES, MalformedPacket, parse_tick
from service.broker.smartapi.reconnect import Backoff, Credentials, Reconnector, Renew, StreamEvent, stop_tasks
from service.broker.smartapi.subscriptions import (
    MAX_PAIRS,
    SUBSCRIBE_BATCH,
    Pair,
    SubscriptionRefused,
    requested_pairs,
    subscription_requests,
)
from streams import Tick

__all__ = [
    "MAX_PAIRS",
    "SUBSCRIBE_BATCH",
    "LoopSubject",
    "SmartStream",
    "SubscriptionRefused",
    "subscription_requests",
]

log = logging.getLogger(__name__)

LtpFallback = Callable[[list[Pair]], Awaitable[list[Tick]]]
T = TypeVar("T")


class LoopSubject(Subject[T]):
    """A `Subject` for values emitted on the event-loop thread, subscribed to from it as well.

    `Subject.on_next` takes its lock twice per value (about a microsecond, more than the engine
    spends on a tick that crosses nothing); on one thread there is nothing to lock against. Errors,
    completion and disposal are the Subject's own."""

    def on_next(self, value: T) -> None:
        if self.is_disposed:
            raise DisposedException()
        if not self.is_stopped:
            for observer in self.observers[:]:  # a copy: an observer may unsubscribe while it is called
                observer.on_next(value)




class SmartStream:
    """`TickStream` on SmartAPI's smart-stream: ticks as `Tick`s, REST LTP while the feed is down."""

    def __init__(self, config: SmartApiConfig, credentials: Credentials, ltp_fallback: LtpFallback, *,
                 renew: Renew | None = None, backoff: Backoff | None = None, fallback_every_s: float = 1.0,
                 text_ping_s: float = 30.0, protocol_ping_s: float = 10.0,
                 ticks: LoopSubject[Tick] | None = None) -> None:
        self.config = config
        self.fallback_every_s = fallback_every_s
        self.text_ping_s = text_ping_s
        self.malformed_frames = 0
        self._fallback = ltp_fallback
        self._ticks: LoopSubject[Tick] = LoopSubject() if ticks is None else ticks  # shared by a login's sockets
        self._events: Subject[StreamEvent] = Subject()
        self._modes: dict[Pair, int] = {}  # what we want, kept across reconnects
        self._outbox: asyncio.Queue[str] | None = None  # requests for the live connection, if any
        self._frames = 0  # binary frames received; the watchdog watches it move
        self._degraded = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._link = Reconnector(config.stream_url, credentials, self._report, renew=renew, backoff=backoff,
                                 open_timeout_s=config.timeout_s, ping_interval_s=protocol_ping_s,
                                 connection=TickConnection, source_address=config.source_address)
        # Whether silence is suspicious right now on the exchanges subscribed: outside their sessions a
        # quiet feed is a closed market, not a stall (the service sets this from its session calendar).
        self.expect_ticks: ExpectTicks = lambda exchanges: True

    @property
    def ticks(self) -> Observable[Tick]:
        return self._ticks

    @property
    def events(self) -> Observable[StreamEvent]:
        return self._events

    @property
    def degraded(self) -> bool:
        """True from a disconnect or stall until frames flow again (REST LTP is served meanwhile)."""
        return self._degraded.is_set()

    @property
    def subscriptions(self) -> dict[Pair, int]:
        return dict(self._modes)

    @property
    def held(self) -> int:
        """Instruments subscribed (each one (token, mode) pair of the connection's 1000)."""
        return len(self._modes)

    def holds(self, pair: Pair) -> bool:
        return pair in self._modes

    # Subscriptions -----------------------------------------------------------------------------------
    def subscribe(self, instruments: Iterable[Pair], mode: int = LTP) -> None:
        """Ticks for (exchange, token) pairs in `mode` (LTP, QUOTE or SNAP_QUOTE); an instrument
        subscribed again in another mode moves to it. Refused whole if it would pass 1000 instruments."""
        wanted = requested_pairs(instruments, mode)
        changed = {pair: m for pair, m in wanted.items() if self._modes.get(pair) != m}
        total = len(self._modes.keys() | changed.keys())
        if total > MAX_PAIRS:
            raise SubscriptionRefused(
                f"{total} instruments would pass SmartAPI's {MAX_PAIRS} subscriptions per session", requested=total)
        moved = {pair: self._modes[pair] for pair in changed if pair in self._modes}
        self._modes.update(changed)
        if changed and self._send(subscription_requests(0, moved) + subscription_requests(1, changed)):
            self._report("subscribed", f"{len(changed)} more in {MODE_NAMES[mode]}; {len(self._modes)} instruments")

    def unsubscribe(self, instruments: Iterable[Pair]) -> None:
        gone = {}
        for exchange, token in instruments:
            mode = self._modes.pop((exchange, str(token)), None)
            if mode is not None:
                gone[(exchange, str(token))] = mode
        self._send(subscription_requests(0, gone))

    def _send(self, requests: list[str]) -> bool:
        if self._outbox is None:
            return False  # the next connection subscribes to everything anyway
        for request in requests:
            self._outbox.put_nowait(request)
        return True

    # Life --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.launch()

    def launch(self) -> None:
        """What `start` does, for a caller on the loop's thread that cannot await: the socket's tasks begin."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._link.run(self._session, self._degrade), name="smart-stream"),
                asyncio.create_task(self._serve_fallback(), name="smart-stream-fallback"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks, "smart-stream")
        self._outbox = None
        self._degraded.clear()
        if tasks:
            self._report("stopped", "")

    def _report(self, kind: str, detail: str = "") -> None:
        try:
            self._events.on_next(StreamEvent(kind, detail))
        except Exception:  # an event observer's failure must not end the stream
            log.exception("smart-stream event observer failed on %s", kind)

    def _degrade(self) -> None:
        self._degraded.set()

    # One connection ------------------------------------------------------------------------------------
    async def _session(self, ws: ClientConnection) -> str:
        assert isinstance(ws, TickConnection), "the Reconnector is built with TickConnection"
        outbox = self._outbox = asyncio.Queue()
        for request in subscription_requests(1, self._modes):
            outbox.put_nowait(request)
        if self._modes:
            self._report("subscribed", f"{len(self._modes)} instruments")
        ws.on_binary = self._on_binary
        if self._degraded.is_set():
            # Within one connection the stream can only recover: the first binary frame ends the
            # degraded state before its tick goes out, so no REST price is emitted after it.
            def first(frame: bytes | bytearray) -> None:
                ws.on_binary = self._on_binary
                self._degraded.clear()
                self._report("recovered", "frames flow again")
                self._on_binary(frame)

            ws.on_binary = first
        tasks = [
            asyncio.create_task(self._read(ws)),
            asyncio.create_task(self._write(ws, outbox)),
            asyncio.create_task(self._watch()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ws.on_binary = ignore_frame
            if self._outbox is outbox:
                self._outbox = None
            await stop_tasks(tasks, "smart-stream connection")
        return done.pop().result()  # the watchdog's reason, or the reader's/writer's ConnectionClosed

    async def _read(self, ws: TickConnection) -> str:
        """Text messages until the connection ends (`recv` raises ConnectionClosed then); binary
        messages never queue for `recv`, the connection hands them to `_on_binary` as they arrive."""
        recv = ws.recv
        while True:
            self._on_text(await recv())

    def _on_binary(self, frame: bytes | bytearray) -> None:
        """One tick packet: the hot path (one parse, one `on_next`, a count for the watchdog)."""
        self._frames += 1
        try:
            tick = parse_tick(frame)
            if tick is not None:
                self._ticks.on_next(tick)
        except MalformedPacket as exc:
            self._malformed(f"{exc.reason} ({exc.size} B)")
        except Exception as exc:  # noqa: BLE001 - never into the connection's data_received
            self._report("subscriber-error", f"a tick observer raised {exc!r}")

    def _malformed(self, what: str) -> None:
        self.malformed_frames += 1
        self._report("malformed", f"{what}; {self.malformed_frames} so far")

    def _on_text(self, text: str) -> None:
        if text == "pong":
            return
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        if isinstance(reply, dict) and "errorCode" in reply:
            self._report("error", f"{reply.get('errorCode')} {reply.get('errorMessage', '')} "
                                  f"(request {reply.get('correlationID') or '-'})")
            return
        self._malformed(f"text frame {text[:80]!r}")

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[str]) -> str:
        """Requests as they come, and the documented text `ping` every `text_ping_s`."""
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.text_ping_s
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_ping - loop.time())):
                    request = await outbox.get()
            except TimeoutError:
                request, next_ping = "ping", loop.time() + self.text_ping_s
            await ws.send(request)

    async def _watch(self) -> str:
        """Returns (ending the connection) once no frame came for `stream_stall_s` while subscribed."""
        loop = asyncio.get_running_loop()
        stall_s = self.config.stream_stall_s
        seen, quiet_since = self._frames, loop.time()
        while True:
            await asyncio.sleep(max(0.01, stall_s / 10))
            now = loop.time()
            if self._frames != seen:
                seen, quiet_since = self._frames, now
            elif not self._modes or not self.expect_ticks({exchange for exchange, _ in self._modes}):
                quiet_since = now
            elif now - quiet_since >= stall_s:
                self._degraded.set()  # REST LTP from now, not only once the close handshake is done
                self._report("stalled", f"no frame for {now - quiet_since:.2f} s "
                                        f"with {len(self._modes)} instruments subscribed")
                return "stalled"

    # REST while degraded ---------------------------------------------------------------------------------
    async def _serve_fallback(self) -> None:
        while True:
            await self._degraded.wait()
            pairs = list(self._modes)
            if pairs:
                await self._fallback_once(pairs)
            await asyncio.sleep(self.fallback_every_s)

    async def _fallback_once(self, pairs: list[Pair]) -> None:
        try:
            ticks = await self._fallback(pairs)
        except Exception as exc:  # noqa: BLE001
            self._report("fallback-failed", f"REST LTP for {len(pairs)} instruments: {exc!r}")
            return
        if not self._degraded.is_set():
            return  # the feed came back while REST answered: its ticks are newer
        emit = self._ticks.on_next
        for tick in ticks:
            try:
                emit(tick)
            except Exception as exc:  # noqa: BLE001
                self._report("subscriber-error", f"a tick observer raised {exc!r}")
        self._report("fallback-ltp", f"{len(ticks)} of {len(pairs)} prices by REST")
