"""Clocks for tests: a wall clock moved to a chosen IST moment, for running the real service at a market
hour; an event loop on virtual time, for code that only waits on timers."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["IST", "ShiftedClock", "VirtualTimeLoop", "next_trading_weekday", "on_virtual_time", "weekday_ahead"]

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


class _SkippingSelector:
    """The loop's selector, except that a wait with nothing ready moves the loop's clock instead of
    sleeping (I/O already ready is still read; a wait with no timer due blocks as before)."""

    def __init__(self, selector, loop: "VirtualTimeLoop") -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None):
        ready = self._selector.select(0)
        if ready or timeout is None:
            return ready or self._selector.select(None)
        self._loop.advance(timeout)
        return ready

    def __getattr__(self, name: str):
        return getattr(self._selector, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: whenever every task waits on a timer, the clock jumps to the next
    one. Code under test that takes a clock is given `loop.time`; `asyncio.sleep`, `wait_for` timeouts
    and `call_later` then cost no real time, and their order and spacing are exactly as on a real clock."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._selector = _SkippingSelector(self._selector, self)

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


def on_virtual_time(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """A coroutine test run to completion on a fresh `VirtualTimeLoop`."""

    def run() -> None:
        loop = VirtualTimeLoop()
        try:
            loop.run_until_complete(test())
        finally:
            loop.close()

    run.__name__, run.__qualname__, run.__doc__, run.__module__ = (
        test.__name__, test.__qualname__, test.__doc__, test.__module__)
    return run
