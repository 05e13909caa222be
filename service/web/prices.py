"""Recent prices per instrument for the desk's price line (`GET /trades/{id}/prices`).

Kept off the tick path: the feed's history sampler, ten times a second, hands each instrument open
trades watch (once, however many trades watch it, and only when a tick came since its price was last
taken) and its latest price to `PriceHistory.sample`, which keeps a point when
the price moved and at most one per `min_gap_ms` per instrument; a price that did not move costs a
look-up and a comparison. Memory is bounded twice: each instrument holds its last `points` points in
a ring of integers that grows as points come (an instrument that never moves holds none), and only
the `instruments` that moved most recently are kept (3 000: what a login's three smart-stream sockets
carry; fewer would have the sampler make and drop rings all day on a full feed).
"""
from __future__ import annotations

import collections
from array import array

__all__ = ["INSTRUMENTS", "MIN_GAP_MS", "POINTS", "PriceHistory", "PriceRing"]

POINTS = 2000
MIN_GAP_MS = 250  # at most 4 points a second
INSTRUMENTS = 3000  # 3 000 × 2 000 points × 16 bytes: at most 96 MB, only for instruments that moved that much


class PriceRing:
    """The last `size` (at_ms, price) points of one instrument, oldest overwritten first; its arrays grow
    with the points until they hold `size`."""

    __slots__ = ("_at", "_price", "_next", "_size")

    def __init__(self, size: int) -> None:
        self._at = array("q")
        self._price = array("q")
        self._next = 0  # where the next point goes once the ring is full
        self._size = size

    def add(self, at_ms: int, price: int) -> None:
        if len(self._at) < self._size:
            self._at.append(at_ms)
            self._price.append(price)
            self._next = len(self._at) % self._size
            return
        self._at[self._next] = at_ms
        self._price[self._next] = price
        self._next = (self._next + 1) % self._size

    def last(self) -> tuple[int, int] | None:
        if not self._at:
            return None
        i = self._next - 1  # -1: the ring just wrapped, its newest point is the last slot
        return self._at[i], self._price[i]

    def points(self, since_ms: int | None = None) -> list[list[int]]:
        """The points oldest first, those after `since_ms` only when given."""
        count = len(self._at)
        start = self._next if count == self._size else 0
        out = []
        for k in range(count):
            i = (start + k) % count
            if since_ms is None or self._at[i] > since_ms:
                out.append([self._at[i], self._price[i]])
        return out


class PriceHistory:
    def __init__(self, *, points: int = POINTS, min_gap_ms: int = MIN_GAP_MS, instruments: int = INSTRUMENTS) -> None:
        self.size = points
        self.min_gap_ms = min_gap_ms
        self.limit = instruments
        self._rings: collections.OrderedDict[tuple[str, str], PriceRing] = collections.OrderedDict()

    def sample(self, exchange: str, token: str, at_ms: int, price: int) -> bool:
        """Keep `price` at `at_ms` if it moved since the last point and the last is `min_gap_ms` old.
        False when the price moved but is held back by the gap (it is worth offering again)."""
        key = (exchange, token)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = PriceRing(self.size)
            while len(self._rings) > self.limit:
                self._rings.popitem(last=False)
        else:
            last = ring.last()
            if last is not None and last[1] == price:
                return True  # nothing to keep: not even its place in the eviction order moves
            if last is not None and at_ms - last[0] < self.min_gap_ms:
                return False
            self._rings.move_to_end(key)
        ring.add(at_ms, price)
        return True

    def points(self, exchange: str, token: str, since_ms: int | None = None) -> list[list[int]]:
        ring = self._rings.get((exchange, token))
        return ring.points(since_ms) if ring is not None else []
