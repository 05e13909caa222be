"""Stream health and the once-a-second sampler.

`StreamHealth` hears every change of a socket's health — smart-stream (`ticks`, up to three sockets,
each kept apart: the stream is up while every socket it opened is) and each login's order-update
socket (`orders`) — and puts it in the log and in `tickguard_stream_connected`. While
an order-update socket is down the fills it would have reported are unknown, so that login's
position book is forgotten (and refreshed once the socket is back and has caught up).

`Sampler` runs once a second, never per tick: tick counts and stream lag, the trade gauges, the
halt gauge, the calendar's warnings, the last tick's time (where a restart checks candles from), and
the cycle collector's upkeep.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from service.broker.port import StreamEvent
from service.gc_tuning import Heap
from service.guard import Guard
from service.market_calendar import CalendarWatch
from service.metrics import Metrics
from service.store import Store

__all__ = ["Sampler", "StreamHealth"]

log = logging.getLogger("tickguard.health")
UP_EVENTS = frozenset({"connected", "ready", "recovered"})
DOWN_EVENTS = frozenset({"disconnected", "stalled", "refused", "stopped"})


class StreamHealth:
    def __init__(self, metrics: Metrics, book: Callable[[str], Any]) -> None:
        self.metrics = metrics
        self.book = book  # a login's position book
        self._throttled: dict[tuple[str, str], float] = {}  # (stream, event kind) -> last logged
        self.ticks: tuple[bool, str] | None = None  # the market-data stream: (up, what it last said), None before a word
        self.tick_sockets: dict[int, tuple[bool, str]] = {}  # the same for each of its sockets (0: a stream of one)

    def order_stream_event(self, event: StreamEvent, login: str) -> None:
        """Fills the order-update stream would have reported are unknown while it is down: positions too."""
        book = self.book(login)
        if event.kind in ("disconnected", "stopped", "refused"):
            book.forget()
        elif event.kind == "ready":
            book.refresh_soon(1.5)  # after the catch-up poll of the order book
        self.stream_event("orders", event, login)

    def stream_event(self, stream: str, event: StreamEvent, login: str = "") -> None:
        """Every change of a socket's health in the log and in `tickguard_stream_connected`."""
        if stream == "ticks" and not login and event.kind in UP_EVENTS | DOWN_EVENTS:
            self._tick_socket(event)
            self.metrics.set_stream(stream, self.ticks is not None and self.ticks[0])
        elif event.kind in UP_EVENTS | DOWN_EVENTS and not login:
            self.metrics.set_stream(stream, event.kind in UP_EVENTS)
        if event.kind in UP_EVENTS:
            log.info("%s stream %s", stream, event.kind, extra={"detail": event.detail, "login": login or None})
        elif event.kind in DOWN_EVENTS:
            log.warning("%s stream %s", stream, event.kind, extra={"detail": event.detail, "login": login or None})
        elif event.kind in ("malformed", "fallback-failed"):  # can come many a second: a line per ten seconds
            now = time.monotonic()
            if now - self._throttled.get((stream, event.kind), float("-inf")) >= 10:
                self._throttled[(stream, event.kind)] = now
                log.warning("%s stream %s", stream, event.kind, extra={"detail": event.detail})
        elif event.kind in ("subscribed", "fallback-ltp", "polled"):  # routine: the order book's periodic check too
            log.debug("%s stream %s", stream, event.kind, extra={"detail": event.detail})
        else:
            log.warning("%s stream %s", stream, event.kind, extra={"detail": event.detail, "login": login or None})

    def _tick_socket(self, event: StreamEvent) -> None:
        """One socket's word; the stream is up while every socket is, else what the first one down said."""
        up = event.kind in UP_EVENTS
        self.tick_sockets[event.socket] = (up, event.kind if up else (
            f"{event.kind}: {event.detail}" if event.detail else event.kind))
        down = [said for _, (ok, said) in sorted(self.tick_sockets.items()) if not ok]
        self.ticks = (False, down[0]) if down else (True, event.kind)


class Sampler:
    def __init__(self, *, guard: Guard, store: Store, metrics: Metrics, calendar_watch: CalendarWatch, heap: Heap,
                 halted: Callable[[], bool], now_ms: Callable[[], int], every_s: float = 1.0) -> None:
        self.guard = guard
        self.store = store
        self.metrics = metrics
        self.calendar_watch = calendar_watch
        self.heap = heap
        self.halted = halted
        self.now_ms = now_ms
        self.every_s = every_s
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample(), name="metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _sample(self) -> None:
        """Once a second: tick counts, stream lag and trade gauges into the metrics (never per tick).
        A failing sample is logged and the next one taken: the gauges never freeze silently."""
        seen, older = self.guard.ticks_seen, self.guard.older_ticks
        while True:
            await asyncio.sleep(self.every_s)
            ticks, older_now = self.guard.ticks_seen, self.guard.older_ticks
            try:
                self.metrics.count_older_ticks(older_now - older)
                await self._one(ticks - seen)
            except Exception:
                log.exception("metrics sample failed")
            seen, older = ticks, older_now

    async def _one(self, new_ticks: int) -> None:
        now = self.now_ms()
        latest = self.guard.latest_tick_ms
        self.metrics.count_ticks(new_ticks, latest, now)
        if new_ticks and latest is not None:  # where a restart checks candles from
            await self.store.db.write(lambda db: Store.set_flag(db, "last_tick_ms", latest, now))
        open_trades, unprotected = await self.store.open_counts()
        self.metrics.set_trades(open_trades - unprotected, unprotected)
        self.metrics.set_halted(self.halted())
        self.calendar_watch.check()  # a new year, or a trade on an exchange without a calendar
        self.heap.maintain(guarding=bool(self.guard.records))
