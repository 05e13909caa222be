"""Per-token book of armed levels: what a tick on one basis instrument can cross.

Every armed trade has at most one key on each side of its token's book:

    low side   crossed when ltp <= key   long stop | short target / short trail trigger
    high side  crossed when ltp >= key   short stop | long target / long trail trigger

Each side is a list kept sorted so that the keys a falling (rising) price crosses first sit at the
end: crossing pops from the end, O(1) per crossed trade, and a tick touches only crossed trades.
The book caches the nearest key of each side in `low` and `high`, so once the engine has found the
book, the no-cross path of a tick is two integer comparisons: `ltp <= book.low or ltp >= book.high`.

A trailing trade's key is the lowest (highest) price at which its stop would ratchet or its
trailing would start, so a token full of trailing trades costs nothing until one of them moves.

`watch` forces every tick of the token onto the slow path (used for open P&L under a loss limit).
"""
from __future__ import annotations

from bisect import bisect_left, insort

from .types import Tick

__all__ = ["NO_HIGH", "NO_LOW", "TokenBook"]

NO_LOW = -(1 << 62)  # below any price: nothing on the low side
NO_HIGH = 1 << 62  # above any price: nothing on the high side


class TokenBook:
    __slots__ = ("exchange", "high", "highs", "last", "last_ts", "low", "lows", "token", "watch")

    def __init__(self, exchange: str, token: str) -> None:
        self.exchange = exchange
        self.token = token
        self.low = NO_LOW
        self.high = NO_HIGH
        self.lows: list[tuple[int, int]] = []  # (key, trade_id) ascending
        self.highs: list[tuple[int, int]] = []  # (-key, trade_id) ascending
        self.last: Tick | None = None
        self.last_ts = -1  # the newest exchange time stamp met (ms)
        self.watch = False

    def __len__(self) -> int:
        return len(self.lows) + len(self.highs)

    def add_low(self, key: int, trade_id: int) -> None:
        insort(self.lows, (key, trade_id))
        self._refresh()

    def add_high(self, key: int, trade_id: int) -> None:
        insort(self.highs, (-key, trade_id))
        self._refresh()

    def remove_low(self, key: int, trade_id: int) -> None:
        _remove(self.lows, (key, trade_id))
        self._refresh()

    def remove_high(self, key: int, trade_id: int) -> None:
        _remove(self.highs, (-key, trade_id))
        self._refresh()

    def set_watch(self, watch: bool) -> None:
        self.watch = watch
        self._refresh()

    def take_crossed(self, ltp: int) -> list[int]:
        """Pop the ids of the trades whose key `ltp` reaches, low side first, each id once."""
        crossed: list[int] = []
        lows, highs = self.lows, self.highs
        while lows and lows[-1][0] >= ltp:
            crossed.append(lows.pop()[1])
        while highs and highs[-1][0] >= -ltp:
            crossed.append(highs.pop()[1])
        self._refresh()
        return crossed

    def _refresh(self) -> None:
        if self.watch:
            self.low, self.high = NO_HIGH, NO_LOW
            return
        self.low = self.lows[-1][0] if self.lows else NO_LOW
        self.high = -self.highs[-1][0] if self.highs else NO_HIGH


def _remove(keys: list[tuple[int, int]], entry: tuple[int, int]) -> None:
    at = bisect_left(keys, entry)
    if at == len(keys) or keys[at] != entry:
        raise KeyError(entry)
    del keys[at]
