"""The broker's symbol search off the alert path: one worker, a bounded queue, one search per symbol.

SmartAPI allows searchScrip about once a second, so an alert that waited for it could wait many
seconds behind other searches (TradingView gives up after 3 s). The book therefore answers an alert
from the local index at once and asks `BackgroundSearches.request` to search in the background:

- deduplicated: a symbol already queued or being searched is not queued again;
- remembered: a symbol the broker did not find is not searched again for `MISS_HOLD_S`;
- bounded: at most `MAX_WAITING` symbols queued or in flight; beyond that a request is refused
  (said so in the alert's reply, logged) rather than piled up;
- one at a time, each search cut off after `SEARCH_TIMEOUT_S`; a failure is logged, never raised;
- no task while idle: the worker starts with the first request and ends when the queue is empty,
  and `close()` cancels it at once (shutdown never waits on the broker).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import Enum

__all__ = ["BackgroundSearches", "Requested", "MAX_WAITING", "MISS_HOLD_S", "SEARCH_TIMEOUT_S"]

log = logging.getLogger("tickguard.symbols")

MAX_WAITING = 32
MISS_HOLD_S = 300.0
SEARCH_TIMEOUT_S = 30.0

# Search one symbol: True found (and kept by the caller), False the broker does not list it; raises on failure.
Run = Callable[[str, str], Awaitable[bool]]


class Requested(Enum):
    STARTED = "started"  # queued now
    RUNNING = "running"  # already queued or being searched
    MISSED = "missed"  # the broker did not find it a short while ago
    FULL = "full"  # too many searches waiting: not searched
    STOPPED = "stopped"  # closed: the service is stopping


class BackgroundSearches:
    def __init__(self, run: Run, *, limit: int = MAX_WAITING, miss_hold_s: float = MISS_HOLD_S,
                 timeout_s: float = SEARCH_TIMEOUT_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._run = run
        self.limit = limit
        self.miss_hold_s = miss_hold_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._queue: deque[tuple[str, str]] = deque()  # (key, ticker), oldest first
        self._wanted: set[str] = set()  # keys queued or being searched
        self._missed: dict[str, float] = {}  # key -> when the broker last did not find it
        self._worker: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self.searched = 0  # searches finished (found, missed or failed), for tests and logs

    def __len__(self) -> int:
        return len(self._wanted)

    def request(self, key: str, ticker: str) -> Requested:
        """Ask for `ticker` (cache key `key`) to be searched; never waits."""
        if self._closed:
            return Requested.STOPPED
        if key in self._wanted:
            return Requested.RUNNING
        now = self._clock()
        missed_at = self._missed.get(key)
        if missed_at is not None and now - missed_at < self.miss_hold_s:
            return Requested.MISSED
        if len(self._wanted) >= self.limit:
            log.warning("symbol search of %s not started: %d searches already waiting", ticker, len(self._wanted))
            return Requested.FULL
        self._missed.pop(key, None)
        self._wanted.add(key)
        self._queue.append((key, ticker))
        self._idle.clear()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="symbol-search")
        return Requested.STARTED

    def missed_ago(self, key: str) -> float | None:
        missed_at = self._missed.get(key)
        return None if missed_at is None else self._clock() - missed_at

    async def idle(self) -> None:
        """Wait until every requested search has finished."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop searching now: the search in flight is cancelled, the queue dropped."""
        worker, self._worker = self._worker, None
        self._closed = True
        self._queue.clear()
        self._wanted.clear()
        self._idle.set()
        if worker is not None and not worker.done():
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _work(self) -> None:
        while self._queue:
            key, ticker = self._queue.popleft()
            try:
                async with asyncio.timeout(self.timeout_s):
                    found = await self._run(key, ticker)
            except TimeoutError:
                log.warning("symbol search of %s failed: no answer in %g s", ticker, self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - off the alert path: logged, the next alert tries again
                log.warning("symbol search of %s failed: %s", ticker, exc or exc.__class__.__name__)
            else:
                if not found:
                    self._forget_old_misses()
                    self._missed[key] = self._clock()
            finally:
                self._wanted.discard(key)
                self.searched += 1
        self._idle.set()

    def _forget_old_misses(self) -> None:
        now = self._clock()
        for key in [k for k, at in self._missed.items() if now - at >= self.miss_hold_s]:
            del self._missed[key]
