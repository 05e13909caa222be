"""Scripted price paths, played out over time at a chosen rate.

A path is a list of prices for one instrument, played at `rate` points per second. High rates (tens
of thousands a second) are played in batches: each wake-up applies the points due by then, so the rate
holds on average without one timer per point. A wake-up applies at most `BATCH` points and then yields:
a path faster than this process can play falls behind its rate instead of freezing the exchange (no
frame sent, no request answered) until it has caught up.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PathPlayer", "Path"]

SetPrice = Callable[[str, str, int], object]
BATCH = 500


@dataclass
class Path:
    path_id: str
    exchange: str
    token: str
    prices: list[int]
    rate: float  # points per second
    repeat: int = 1  # play the list this many times
    played: int = 0


class PathPlayer:
    def __init__(self, set_price: SetPrice, clock: Callable[[], float] = time.monotonic) -> None:
        self.set_price = set_price
        self.clock = clock
        self._tasks: dict[str, asyncio.Task] = {}
        self._paths: dict[str, Path] = {}
        self._ids = itertools.count(1)

    def start(self, exchange: str, token: str, prices: list[int], rate: float, repeat: int = 1) -> Path:
        path = Path(str(next(self._ids)), exchange, token, prices, rate, repeat)
        self._paths[path.path_id] = path
        self._tasks[path.path_id] = asyncio.create_task(self._play(path), name=f"paper-path-{path.path_id}")
        return path

    def stop(self, path_id: str) -> bool:
        task = self._tasks.pop(path_id, None)
        self._paths.pop(path_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    def stop_all(self) -> None:
        for path_id in list(self._tasks):
            self.stop(path_id)

    def running(self) -> list[dict]:
        return [
            {"path_id": p.path_id, "exchange": p.exchange, "token": p.token, "played": p.played,
             "total": len(p.prices) * p.repeat, "rate": p.rate}
            for p in self._paths.values()
        ]

    async def _play(self, path: Path) -> None:
        total = len(path.prices) * path.repeat
        started = self.clock()
        try:
            while path.played < total:
                due = min(total, int((self.clock() - started) * path.rate) + 1, path.played + BATCH)
                while path.played < due:
                    self.set_price(path.exchange, path.token, path.prices[path.played % len(path.prices)])
                    path.played += 1
                if path.played < total:
                    next_at = started + path.played / path.rate
                    await asyncio.sleep(max(0.0, next_at - self.clock()) if path.rate < 1000 else 0.001)
        finally:
            self._tasks.pop(path.path_id, None)
            self._paths.pop(path.path_id, None)
