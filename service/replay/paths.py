"""Price paths for the report's charts: a trade's window of a recorded path, thinned for drawing.

Only the chart is thinned, never what the engine saw. `thin` keeps, in each of `max_points // 2`
equal slices of the window, the slice's lowest and highest price in time order, plus the first and
last point: a spike, a gap and the extremes a stop was measured against stay on the chart.
"""
from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence

__all__ = ["ist_text", "thin", "window"]

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def window(ms: Sequence[int], ltp: Sequence[int], start_ms: int, end_ms: int) -> tuple[list[int], list[int]]:
    """The points with start_ms <= time <= end_ms (the times are in order)."""
    lo = bisect.bisect_left(ms, start_ms)
    hi = bisect.bisect_right(ms, end_ms)
    return list(ms[lo:hi]), list(ltp[lo:hi])


def thin(ms: Sequence[int], ltp: Sequence[int], max_points: int = 1500) -> tuple[list[int], list[int]]:
    """At most about `max_points` points of a path: each slice's low and high, in time order."""
    count = len(ms)
    if count <= max_points:
        return list(ms), list(ltp)
    slices = max(1, (max_points - 2) // 2)
    keep = {0, count - 1}
    for n in range(slices):
        lo, hi = n * count // slices, (n + 1) * count // slices
        if lo >= hi:
            continue
        part = range(lo, hi)
        keep.add(min(part, key=ltp.__getitem__))
        keep.add(max(part, key=ltp.__getitem__))
    chosen = sorted(keep)
    return [ms[i] for i in chosen], [ltp[i] for i in chosen]


def ist_text(epoch_ms: int) -> str:
    """An instant as IST wall time, to the millisecond, as the charts' time axis takes it."""
    return dt.datetime.fromtimestamp(epoch_ms / 1000, IST).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
