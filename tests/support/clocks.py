"""A wall clock moved to a chosen IST moment, for running the real service at a market hour."""
from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

__all__ = ["IST", "ShiftedClock", "next_trading_weekday", "weekday_ahead"]

IST = ZoneInfo("Asia/Kolkata")


def _nse_holidays() -> frozenset[dt.date]:
    from service.market_calendar import load_market_calendar

    return load_market_calendar().calendar.holidays.get("NSE", frozenset())


def next_trading_weekday(start: dt.date) -> dt.date:
    """The first day from `start` that is neither a weekend nor a holiday of the shipped NSE calendar."""
    holidays = _nse_holidays()
    day = start
    while day.weekday() >= 5 or day in holidays:
        day += dt.timedelta(days=1)
    return day


def weekday_ahead(days: int = 7) -> dt.date:
    """A trading day at least `days` ahead whose next day is a trading weekday too."""
    holidays = _nse_holidays()
    day = dt.datetime.now(IST).date() + dt.timedelta(days=days)
    while day.weekday() >= 4 or day in holidays or day + dt.timedelta(days=1) in holidays:
        day += dt.timedelta(days=1)
    return day


class ShiftedClock:
    """Wall time moved to a chosen IST moment (by default on a trading weekday a week ahead), running on
    from there; `jump_to` moves it again, on the same day or `days` later."""

    def __init__(self, hour: int, minute: int = 0, second: int = 0, day: dt.date | None = None) -> None:
        self.day = day or next_trading_weekday(dt.datetime.now(IST).date() + dt.timedelta(days=7))
        self.offset = 0.0
        self.jump_to(hour, minute, second)

    def jump_to(self, hour: int, minute: int = 0, second: int = 0, *, days: int = 0) -> None:
        self.day += dt.timedelta(days=days)
        target = dt.datetime.combine(self.day, dt.time(hour, minute, second), IST).timestamp()
        self.offset = target - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset
