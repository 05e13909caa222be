"""A login's whole smart-stream feed: up to three sockets, shown to the service as one `TickStream`.

SmartAPI allows 3 smart-stream connections per client code and 1000 (token, mode) pairs on each, so
one login can watch up to 3 000 instruments. `LoginFeed` spreads them over `SmartStream`s — each one
socket with its own reconnects, stall watchdog and REST prices while it is down — and merges them:

- **Sockets open only when the instruments need them.** Socket 1 opens at start (the feed's health is
  known before the first trade, and a first instrument's ticks wait on no handshake); another opens
  only when every open socket holds 1000 instruments: 10 instruments take one connection, 1 500 two.
  Other tools may be using the login's other connections.
- **Sticky.** An instrument lives on one socket while it is subscribed; a mode change keeps it there.
  A new one goes to the open socket with the most room (the lowest number on a tie). Past
  `sockets` x 1000 instruments a subscription is refused whole, before anything is sent.
- **A socket left with no instrument stays open.** Closing it would give its connection back to
  whatever else uses the login, and the next instruments that need it would then find the handshake
  refused and be served by REST only; an idle socket costs a heartbeat. It takes the next new
  instruments first (it has the most room).
- **One tick observable, no extra hop.** Every socket emits into the same `LoopSubject`: a tick costs
  one parse and one `on_next`, as on one socket. An instrument's frames come on its one socket, in order.
- **Per socket: health and REST.** A socket that drops or stalls serves REST prices for its own
  instruments until its frames flow again; the others tick on. Its events come out with its number
  (`StreamEvent.socket`, the detail prefixed "socket 2: "); `degraded` is true while any socket is.
  `expect_ticks` reaches every socket, opened now or later, and each asks it for its own exchanges.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable

from reactivex import Observable
from reactivex.subject import Subject

from service.broker.port import ExpectTicks
from service.broker.smartapi.config import SmartApiConfig
from service.broker.smartapi.data import LoopSubject, LtpFallback, SmartStream
from service.broker.smartapi.parsing import LTP
from service.broker.smartapi.reconnect import Backoff, Credentials, Renew, StreamEvent
from service.broker.smartapi.subscriptions import (
    MAX_PAIRS,
    MAX_SOCKETS,
    Pair,
    SubscriptionRefused,
    requested_pairs,
)
from streams import Tick

__all__ = ["LoginFeed"]


class LoginFeed:
    """`TickStream` on up to `config.stream_sockets` smart-stream sockets of one login."""

    def __init__(self, config: SmartApiConfig, credentials: Credentials, ltp_fallback: LtpFallback, *,
                 renew: Renew | None = None, backoff: Callable[[], Backoff] = Backoff, fallback_every_s: float = 1.0,
                 text_ping_s: float = 30.0, protocol_ping_s: float = 10.0) -> None:
        if isinstance(config.stream_sockets, bool) or config.stream_sockets not in range(1, MAX_SOCKETS + 1):
            raise ValueError(f"stream_sockets must be 1 to {MAX_SOCKETS} (SmartAPI's smart-stream connections "
                             f"per client code), got {config.stream_sockets!r}")
        self.config = config
        self.limit = config.stream_sockets
        self.capacity = self.limit * MAX_PAIRS
        self._ticks: LoopSubject[Tick] = LoopSubject()
        self._events: Subject[StreamEvent] = Subject()
        self._new_socket = functools.partial(SmartStream, config, credentials, ltp_fallback, renew=renew,
                                             fallback_every_s=fallback_every_s, text_ping_s=text_ping_s,
                                             protocol_ping_s=protocol_ping_s, ticks=self._ticks)
        self._backoff = backoff  # a fresh one per socket: each backs off from its own failures
        self._sockets: list[SmartStream] = []
        self._running = False
        self._expect: ExpectTicks = lambda exchanges: True

    @property
    def ticks(self) -> Observable[Tick]:
        return self._ticks

    @property
    def events(self) -> Observable[StreamEvent]:
        return self._events

    @property
    def sockets(self) -> tuple[SmartStream, ...]:
        """The sockets opened so far, socket 1 first."""
        return tuple(self._sockets)

    @property
    def degraded(self) -> bool:
        """True while any socket is degraded (its instruments priced by REST meanwhile)."""
        return any(socket.degraded for socket in self._sockets)

    @property
    def degraded_sockets(self) -> list[int]:
        return [number for number, socket in enumerate(self._sockets, start=1) if socket.degraded]

    @property
    def malformed_frames(self) -> int:
        return sum(socket.malformed_frames for socket in self._sockets)

    @property
    def subscriptions(self) -> dict[Pair, int]:
        """Every socket's instruments -> mode."""
        merged: dict[Pair, int] = {}
        for socket in self._sockets:
            merged.update(socket.subscriptions)
        return merged

    @property
    def held(self) -> int:
        return sum(socket.held for socket in self._sockets)

    @property
    def expect_ticks(self) -> ExpectTicks:
        return self._expect

    @expect_ticks.setter
    def expect_ticks(self, judge: ExpectTicks) -> None:
        self._expect = judge
        for socket in self._sockets:
            socket.expect_ticks = judge

    def socket_of(self, pair: Pair) -> int | None:
        """The number of the socket holding (exchange, token), None when it is not subscribed."""
        index = self._index_of((pair[0], str(pair[1])))
        return None if index is None else index + 1

    # Subscriptions -----------------------------------------------------------------------------------
    def subscribe(self, instruments: Iterable[Pair], mode: int = LTP) -> None:
        """Ticks for (exchange, token) pairs in `mode`; see the module's docstring for where each goes.
        Refused whole (SubscriptionRefused), before anything is sent, past `capacity` instruments."""
        wanted = requested_pairs(instruments, mode)
        homes = {pair: self._index_of(pair) for pair in wanted}
        new = [pair for pair, index in homes.items() if index is None]
        total = self.held + len(new)
        if total > self.capacity:
            raise SubscriptionRefused(
                f"{total} instruments would pass SmartAPI's {self.capacity} subscriptions per login "
                f"({self.limit} smart-stream socket{'s' if self.limit > 1 else ''} of {MAX_PAIRS})", requested=total)
        rooms = [MAX_PAIRS - socket.held for socket in self._sockets]
        for pair in new:
            if not rooms or max(rooms) == 0:
                rooms.append(MAX_PAIRS)  # every open socket is full: the next one
            index = rooms.index(max(rooms))
            rooms[index] -= 1
            homes[pair] = index
        while len(self._sockets) < len(rooms):
            self._open()
        by_socket: dict[int, list[Pair]] = {}
        for pair, index in homes.items():
            by_socket.setdefault(index, []).append(pair)
        for index, pairs in sorted(by_socket.items()):
            self._sockets[index].subscribe(pairs, mode)

    def unsubscribe(self, instruments: Iterable[Pair]) -> None:
        by_socket: dict[int, list[Pair]] = {}
        for exchange, token in instruments:
            pair = (exchange, str(token))
            index = self._index_of(pair)
            if index is not None:
                by_socket.setdefault(index, []).append(pair)
        for index, pairs in sorted(by_socket.items()):
            self._sockets[index].unsubscribe(pairs)

    def _index_of(self, pair: Pair) -> int | None:
        for index, socket in enumerate(self._sockets):
            if socket.holds(pair):
                return index
        return None

    # Life --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._running = True
        if not self._sockets:
            self._open()
        for socket in self._sockets:
            socket.launch()

    async def stop(self) -> None:
        """Every socket closed; what each holds is kept for the next `start`."""
        self._running = False
        await asyncio.gather(*(socket.stop() for socket in self._sockets))

    def _open(self) -> None:
        number = len(self._sockets) + 1
        socket = self._new_socket(backoff=self._backoff())
        socket.expect_ticks = self._expect
        socket.events.subscribe(functools.partial(self._relay, number))
        self._sockets.append(socket)
        if self._running:
            socket.launch()

    def _relay(self, number: int, event: StreamEvent) -> None:
        detail = f"socket {number}: {event.detail}" if event.detail else f"socket {number}"
        self._events.on_next(StreamEvent(event.kind, detail, socket=number))
