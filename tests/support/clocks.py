"""A wall clock moved to a chosen IST moment, for running the real service at a market hour."""
from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


def next_trading_weekday(start: dt.date) -> dt.date:
    """The first day from `start` that is neither a weekend nor a holiday of the shipped NSE calendar."""
    from service.market_calendar import load_market_calendar

    holidays = load_market_calendar().calendar.holidays.get("NSE", frozenset())
    day = start
    while day.weekday() >= 5 or day in holidays:
        day += dt.timedelta(days=1)
    return day


class ShiftedClock:
    """Wall time moved to a chosen IST moment (by default on a trading weekday a week ahead); `jump_to`
    moves it again on the same day."""

    def __init__(self, hour: int, minute: int, second: int = 0, day: dt.date | None = None) -> None:
        self.day = day or next_trading_weekday(dt.datetime.now(IST).date() + dt.timedelta(days=7))
        self.offset = 0.0
        self.jump_to(hour, minute, second)

    def jump_to(self, hour: int, minute: int, second: int = 0) -> None:
        target = dt.datetime.combine(self.day, dt.time(hour, minute, second), IST).timestamp()
        self.offset = target - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset
