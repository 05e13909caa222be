"""Candles: one-minute OHLCV rows per instrument, kept for a retention window and aggregated on request.

Intraday intervals are aligned to the 09:15 IST session open and ONE_DAY to the IST day, as SmartAPI's are.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from datetime import datetime

from paper.pricing import IST

__all__ = ["Candles", "CandleRow", "CANDLE_INTERVALS", "ist_day"]

CandleRow = tuple[str, str, int, int, int, int, int, int]  # exchange, token, minute epoch s, o, h, l, c, volume

CANDLE_INTERVALS: dict[str, int] = {
    "ONE_MINUTE": 1, "THREE_MINUTE": 3, "FIVE_MINUTE": 5, "TEN_MINUTE": 10, "FIFTEEN_MINUTE": 15,
    "THIRTY_MINUTE": 30, "ONE_HOUR": 60, "ONE_DAY": 1440,
}
_IST_OFFSET_S = 19800
_SESSION_OPEN_S = (9 * 60 + 15) * 60  # intraday candles are aligned to 09:15 IST, as SmartAPI's are


def ist_day(epoch_s: float) -> int:
    """The IST calendar day of an epoch time, as days since 1970-01-01."""
    return int((epoch_s + _IST_OFFSET_S) // 86400)


class Candles:
    """One-minute OHLCV rows per instrument, sorted by minute, with a cursor of what was already persisted."""

    def __init__(self, retention_s: float) -> None:
        self.rows: dict[tuple[str, str], list[list[int]]] = {}
        self.drained: dict[tuple[str, str], int] = {}
        self.retention_s = retention_s
        self.pruned_at = -math.inf

    def record(self, key: tuple[str, str], minute: int, price: int, qty: int) -> None:
        rows = self.rows.setdefault(key, [])
        if not rows or rows[-1][0] < minute:
            rows.append([minute, price, price, price, price, qty])
            return
        at = bisect.bisect_left(rows, minute, key=lambda row: row[0])
        if at < len(rows) and rows[at][0] == minute:
            row = rows[at]
            row[2], row[3], row[4], row[5] = max(row[2], price), min(row[3], price), price, row[5] + qty
        else:  # the clock stepped back into a minute nobody traded in
            rows.insert(at, [minute, price, price, price, price, qty])

    def drain(self, now: float) -> list[CandleRow]:
        current = int(now // 60) * 60
        closed: list[CandleRow] = []
        for key, rows in self.rows.items():
            at = self.drained.get(key, 0)
            while at < len(rows) and rows[at][0] < current:
                closed.append((key[0], key[1], *rows[at]))  # type: ignore[arg-type]
                at += 1
            self.drained[key] = at
        if now - self.pruned_at >= 3600:
            self.prune(now - self.retention_s)
        return closed

    def prune(self, before: float) -> None:
        self.pruned_at = before + self.retention_s
        for key, rows in self.rows.items():
            cut = bisect.bisect_left(rows, before, key=lambda row: row[0])
            cut = min(cut, self.drained.get(key, 0))  # never forget a candle before it was persisted
            if cut:
                del rows[:cut]
                self.drained[key] -= cut

    def load(self, rows: Iterable[Iterable[int | str]]) -> None:
        loaded: dict[tuple[str, str], dict[int, list[int]]] = {}
        for exchange, token, minute, o, h, lo, c, v in rows:
            loaded.setdefault((str(exchange).upper(), str(token)), {})[int(minute)] = [
                int(minute), int(o), int(h), int(lo), int(c), int(v)
            ]
        for key, by_minute in loaded.items():
            existing = self.rows.get(key, [])
            pending = {row[0] for row in existing[self.drained.get(key, 0):]}
            by_minute.update({row[0]: row for row in existing})  # what this process saw wins
            merged = sorted(by_minute.values())
            self.rows[key] = merged
            self.drained[key] = next((i for i, row in enumerate(merged) if row[0] in pending), len(merged))

    def query(self, key: tuple[str, str], minutes: int, start: float, end: float) -> list[list]:
        rows = self.rows.get(key, [])
        width = minutes * 60
        if minutes == 1440:
            first, last = ist_day(start), ist_day(end)
            lo = (first * 86400 - _IST_OFFSET_S)
            hi = (last + 1) * 86400 - _IST_OFFSET_S - 1
        else:
            lo, hi = start - width, end + width
        buckets: dict[int, list[int]] = {}
        for row in rows[bisect.bisect_left(rows, lo, key=lambda r: r[0]):bisect.bisect_right(rows, hi, key=lambda r: r[0])]:
            bucket = self.bucket(row[0], minutes)
            if minutes != 1440 and not start <= bucket <= end:
                continue
            agg = buckets.get(bucket)
            if agg is None:
                buckets[bucket] = [row[1], row[2], row[3], row[4], row[5]]
            else:
                agg[1], agg[2], agg[3], agg[4] = max(agg[1], row[2]), min(agg[2], row[3]), row[4], agg[4] + row[5]
        return [
            [datetime.fromtimestamp(b, IST).isoformat(), o / 100, h / 100, lo_ / 100, c / 100, v]
            for b, (o, h, lo_, c, v) in buckets.items()
        ]

    @staticmethod
    def bucket(minute: int, minutes: int) -> int:
        day_start = ist_day(minute) * 86400 - _IST_OFFSET_S
        if minutes == 1440:
            return day_start
        anchor = day_start + _SESSION_OPEN_S
        return anchor + (minute - anchor) // (minutes * 60) * minutes * 60
