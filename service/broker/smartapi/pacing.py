"""Pacing within SmartAPI's rate limits, with exits ahead of entries.

Orders (place, modify, cancel) share SmartAPI's 20/s, 500/min and 1000/h, and each exchange segment
is held to `orders_per_second_per_segment` (10/s: the exchanges' threshold for unregistered algos).
They wait in one queue ordered by priority, so an exit never waits behind an entry, and the last
`EXIT_RESERVE` orders of the hourly budget are kept for exits. An entry still queued after its
time-to-live expires with `EntryExpired` instead of trading late. An exit is never refused for rate:
it waits its turn.

Other routes have their own per-second limits (order book and positions 1/s, LTP 10/s, …), GTT rules
included: a GTT rule is not an order, so it spends none of the order budget and waits in its route's
window without priorities.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from service.broker.errors import EntryExpired
from service.broker.types import Priority

__all__ = ["OrderPacer", "RoutePacer", "Window", "ROUTE_LIMITS", "EXIT_RESERVE"]

EXIT_RESERVE = 100  # orders of the hourly budget only exits may use

# route -> (per second, per minute, per hour)
ROUTE_LIMITS: dict[str, tuple[int | None, int | None, int | None]] = {
    "loginByPassword": (1, None, None),
    "generateTokens": (1, None, 1000),
    "getProfile": (3, None, 1000),
    "logout": (1, None, None),
    "getRMS": (2, None, None),
    "getOrderBook": (1, None, None),
    "getTradeBook": (1, None, None),
    "getPosition": (1, None, None),
    "getHolding": (1, None, None),
    "getLtpData": (10, 500, 5000),
    "quote": (10, 500, 5000),
    "details": (10, 500, 5000),
    "searchScrip": (1, None, None),
    "getCandleData": (3, 500, 5000),
    "marginBatch": (10, 500, 5000),
    "gttCreateRule": (10, 500, 5000),
    "gttModifyRule": (10, 500, 5000),
    "gttCancelRule": (10, 500, 5000),
    "gttDetails": (10, 500, 5000),
    "gttLists": (10, 500, 5000),
}
ORDER_LIMITS = (20, 500, 1000)
PERIODS = (1.0, 60.0, 3600.0)


class Window:
    """A sliding-window counter: at most `limit` events in any `period` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.times: deque[float] = deque()

    def wait(self, now: float, limit: int | None = None) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        limit = self.limit if limit is None else limit
        while self.times and now - self.times[0] >= self.period:
            self.times.popleft()
        if len(self.times) < limit:
            return 0.0
        if limit <= 0:
            return self.period
        return self.times[len(self.times) - limit] + self.period - now

    def record(self, now: float) -> None:
        self.times.append(now)


def _windows(limits: tuple[int | None, ...]) -> list[Window]:
    return [Window(limit, period) for limit, period in zip(limits, PERIODS) if limit is not None]


class RoutePacer:
    """Per-route limits for everything but orders: callers simply wait their turn."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows = {route: _windows(limits) for route, limits in ROUTE_LIMITS.items()}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, route: str) -> None:
        windows = self._windows.get(route)
        if not windows:
            return
        lock = self._locks.setdefault(route, asyncio.Lock())
        async with lock:
            while (delay := max(w.wait(self.clock()) for w in windows)) > 0:
                await asyncio.sleep(delay)
            now = self.clock()
            for window in windows:
                window.record(now)


@dataclass(order=True)
class _Waiter:
    priority: int
    sequence: int
    segment: str = field(compare=False)
    queued_at: float = field(compare=False)
    expires_at: float | None = field(compare=False)
    future: asyncio.Future = field(compare=False)


class OrderPacer:
    """One priority queue for every order request; a dispatcher lets them out within the limits."""

    def __init__(self, per_segment_per_s: int = 10, clock: Callable[[], float] = time.monotonic,
                 limits: tuple[int, int, int] = ORDER_LIMITS, exit_reserve: int = EXIT_RESERVE) -> None:
        self.clock = clock
        self.per_segment_per_s = per_segment_per_s
        self._global = _windows(limits)
        self._hour = self._global[-1]
        self._entry_hour_limit = max(0, limits[-1] - exit_reserve)
        self._segments: dict[str, Window] = {}
        self._queue: list[_Waiter] = []
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None

    @property
    def queued(self) -> int:
        return sum(1 for waiter in self._queue if not waiter.future.done())

    async def acquire(self, segment: str, priority: Priority, ttl_s: float | None = None) -> None:
        """Wait for a slot. Entries (`ttl_s` given) raise EntryExpired when they wait too long."""
        now = self.clock()
        if self._may_go_now(segment, int(priority), now):  # nobody to overtake: no trip through the dispatcher
            for window in (*self._global, self._segment(segment)):
                window.record(now)
            return
        future = asyncio.get_running_loop().create_future()
        expires_at = now + ttl_s if ttl_s is not None and priority != Priority.EXIT else None
        heapq.heappush(self._queue, _Waiter(int(priority), next(self._sequence), segment, now, expires_at, future))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="order-pacer")
        self._wakeup.set()
        try:
            await future
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except asyncio.CancelledError:
                pass

    async def _dispatch(self) -> None:
        while self._queue:
            now = self.clock()
            self._drop_finished(now)
            if not self._queue:
                return
            ready = self._first_ready(now)
            if ready is not None:
                self._queue.remove(ready)
                heapq.heapify(self._queue)
                for window in (*self._global, self._segment(ready.segment)):
                    window.record(now)
                ready.future.set_result(None)
                continue
            delay = min(self._delay(w, now) for w in self._queue)
            deadlines = [w.expires_at - now for w in self._queue if w.expires_at is not None]
            self._wakeup.clear()
            try:  # a newly queued exit may overtake: wake up for it
                async with asyncio.timeout(max(0.0, min([delay, *deadlines]))):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _drop_finished(self, now: float) -> None:
        kept = []
        for waiter in self._queue:
            if waiter.future.done():  # cancelled by its caller
                continue
            if waiter.expires_at is not None and now >= waiter.expires_at:
                waiter.future.set_exception(EntryExpired(now - waiter.queued_at))
                continue
            kept.append(waiter)
        if len(kept) != len(self._queue):
            self._queue[:] = kept
            heapq.heapify(self._queue)

    def _first_ready(self, now: float) -> _Waiter | None:
        """The best waiter that may go now. A waiter blocked only by its own segment's limit does not
        hold back others on other segments; one blocked by a shared limit holds back everyone after it."""
        for waiter in sorted(self._queue):
            shared = max(self._shared_delay(waiter.priority, now), 0.0)
            if shared > 0:
                return None
            if self._segment(waiter.segment).wait(now) <= 0:
                return waiter
        return None

    def _may_go_now(self, segment: str, priority: int, now: float) -> bool:
        if any(w.priority <= priority and not w.future.done() for w in self._queue):
            return False
        return self._shared_delay(priority, now) <= 0 and self._segment(segment).wait(now) <= 0

    def _segment(self, segment: str) -> Window:
        window = self._segments.get(segment)
        if window is None:
            window = self._segments[segment] = Window(self.per_segment_per_s, 1.0)
        return window

    def _shared_delay(self, priority: int, now: float) -> float:
        delays = [w.wait(now) for w in self._global[:-1]]
        hour_limit = self._hour.limit if priority == Priority.EXIT else self._entry_hour_limit
        delays.append(self._hour.wait(now, hour_limit))
        return max(delays)

    def _delay(self, waiter: _Waiter, now: float) -> float:
        return max(self._shared_delay(waiter.priority, now), self._segment(waiter.segment).wait(now))
