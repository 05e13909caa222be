"""Recent prices per instrument for the desk's price line (`GET /trades/{id}/prices`).

Kept off the tick path: the feed's 10 Hz price sampler hands each open trade's basis instrument and
its latest price to `PriceHistory.sample`, which keeps a point when the price moved and at most one
per `min_gap_ms` per instrument. Memory is bounded twice: each instrument holds its last `points`
points in a fixed ring of integers, and only the `instruments` most recently sampled are kept.
"""
from __future__ import annotations

import collections
from array import array

__all__ = ["INSTRUMENTS", "MIN_GAP_MS", "POINTS", "PriceHistory", "PriceRing"]

POINTS = 2000
MIN_GAP_MS = 250  # at most 4 points a second
INSTRUMENTS = 500  # 500 × 2000 points × 16 bytes: at most 16 MB


class PriceRing:
    """The last `size` (at_ms, price) points of one instrument, oldest overwritten first."""

    __slots__ = ("_at", "_price", "_next", "_count")

    def __init__(self, size: int) -> None:
        self._at = array("q", bytes(8 * size))
        self._price = array("q", bytes(8 * size))
        self._next = 0
        self._count = 0

    def add(self, at_ms: int, price: int) -> None:
        self._at[self._next] = at_ms
        self._price[self._next] = price
        self._next = (self._next + 1) % len(self._at)
        self._count = min(self._count + 1, len(self._at))

    def last(self) -> tuple[int, int] | None:
        if not self._count:
            return None
        i = self._next - 1
        return self._at[i], self._price[i]

    def points(self, since_ms: int | None = None) -> list[list[int]]:
        """The points oldest first, those after `since_ms` only when given."""
        size = len(self._at)
        start = (self._next - self._count) % size
        out = []
        for k in range(self._count):
            i = (start + k) % size
            if since_ms is None or self._at[i] > since_ms:
                out.append([self._at[i], self._price[i]])
        return out


class PriceHistory:
    def __init__(self, *, points: int = POINTS, min_gap_ms: int = MIN_GAP_MS, instruments: int = INSTRUMENTS) -> None:
        self.size = points
        self.min_gap_ms = min_gap_ms
        self.limit = instruments
        self._rings: collections.OrderedDict[tuple[str, str], PriceRing] = collections.OrderedDict()

    def sample(self, exchange: str, token: str, at_ms: int, price: int) -> None:
        """Keep `price` at `at_ms` if it moved since the last point and the last is `min_gap_ms` old."""
        key = (exchange, token)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = PriceRing(self.size)
            while len(self._rings) > self.limit:
                self._rings.popitem(last=False)
        else:
            self._rings.move_to_end(key)
        last = ring.last()
        if last is not None and (last[1] == price or at_ms - last[0] < self.min_gap_ms):
            return
        ring.add(at_ms, price)

    def points(self, exchange: str, token: str, since_ms: int | None = None) -> list[list[int]]:
        ring = self._rings.get((exchange, token))
        return ring.points(since_ms) if ring is not None else []
