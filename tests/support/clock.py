"""A wall clock moved to a chosen IST day and time, running on from there (for Desk(clock=...))."""
from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

__all__ = ["IST", "ShiftedClock", "weekday_ahead"]

IST = ZoneInfo("Asia/Kolkata")


def weekday_ahead(days: int = 7) -> dt.date:
    """A Monday to Thursday at least `days` ahead: the next day is a weekday too."""
    day = dt.datetime.now(IST).date() + dt.timedelta(days=days)
    while day.weekday() >= 4:
        day += dt.timedelta(days=1)
    return day


class ShiftedClock:
    def __init__(self, day: dt.date, hour: int, minute: int = 0, second: int = 0) -> None:
        self.day = day
        self.offset = 0.0
        self.jump_to(hour, minute, second)

    def jump_to(self, hour: int, minute: int = 0, second: int = 0, *, days: int = 0) -> None:
        """To `hour:minute:second` IST, `days` after the current day."""
        self.day += dt.timedelta(days=days)
        target = dt.datetime.combine(self.day, dt.time(hour, minute, second), IST).timestamp()
        self.offset = target - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset
