"""Segment sessions in IST: continuous session, square-off time, entry cutoff, holidays as data.

IST has no daylight saving, so times are plain integer arithmetic on epoch milliseconds: an IST day
number is `(epoch_ms + 5h30m) // 1 day`. Weekends are closed; holidays and special sessions come from
settings, per exchange code (the REST codes the ticks carry: NSE, NFO, BSE, BFO, MCX, CDS ...). A
special session (Muhurat trading) has its own open, close, square-off and entry cutoff and replaces
the day's regular hours, even on a weekend or a holiday. `years` records which years an exchange's
holiday list is known for; the clock itself does not need it (the service warns about a missing year).

Defaults (trading-semantics §4; the ones the spec leaves open are marked *):
    NSE, BSE, NFO, BFO   09:15-15:30, square-off 15:15, entries until 15:00
    MCX                  09:00-23:30, square-off 23:25, entries until 23:00 *
    CDS                  09:00-17:00, square-off 16:45 *, entries until 16:30 *
"""
from __future__ import annotations

import datetime as dt

import msgspec

__all__ = ["Calendar", "SegmentHours", "SessionClock", "default_calendar", "ist_day", "ms_of_day"]

IST_OFFSET_MS = 19_800_000
DAY_MS = 86_400_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


class SegmentHours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    opens: dt.time
    closes: dt.time
    square_off: dt.time | None = None
    entry_cutoff: dt.time | None = None


class Calendar(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    hours: dict[str, SegmentHours]
    holidays: dict[str, frozenset[dt.date]] = {}
    weekends: bool = False  # trade on Saturdays and Sundays too (a paper market around the clock)
    sessions: dict[str, dict[dt.date, SegmentHours]] = {}  # special sessions, per exchange and date
    years: dict[str, frozenset[int]] = {}  # the years each exchange's holiday list covers


_EQUITY = SegmentHours(dt.time(9, 15), dt.time(15, 30), dt.time(15, 15), dt.time(15, 0))
_MCX = SegmentHours(dt.time(9, 0), dt.time(23, 30), dt.time(23, 25), dt.time(23, 0))
_CDS = SegmentHours(dt.time(9, 0), dt.time(17, 0), dt.time(16, 45), dt.time(16, 30))


def default_calendar(
    nse_holidays: frozenset[dt.date] = frozenset(), mcx_holidays: frozenset[dt.date] = frozenset()
) -> Calendar:
    """Regular hours of every segment; NSE's holidays apply to NSE, BSE, NFO and BFO (not CDS)."""
    equity = ("NSE", "BSE", "NFO", "BFO")
    hours = {code: _EQUITY for code in equity} | {"MCX": _MCX, "CDS": _CDS}
    holidays = {code: nse_holidays for code in equity} | {"MCX": mcx_holidays}
    return Calendar(hours, holidays)


def ist_day(epoch_ms: int) -> int:
    return (epoch_ms + IST_OFFSET_MS) // DAY_MS


def ms_of_day(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def _day_start_ms(day: int) -> int:
    return day * DAY_MS - IST_OFFSET_MS


class SessionClock:
    """Answers "is this segment open at t?" and "when is square-off today?" for a calendar.

    `is_open` is on the crossing path, so it keeps the day window of the last answer per exchange
    and only recomputes when a time stamp falls on another IST day.
    """

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._hours = {code: _compile(h) for code, h in calendar.hours.items()}
        self._special = {code: {d.toordinal() - _EPOCH_ORDINAL: _compile(h) for d, h in by_date.items()}
                         for code, by_date in calendar.sessions.items() if code in self._hours}
        self._windows: dict[str, tuple[int, int, int, int]] = {}

    def knows(self, exchange: str) -> bool:
        return exchange in self._hours

    @property
    def exchanges(self) -> tuple[str, ...]:
        return tuple(self._hours)

    def covers(self, exchange: str, year: int) -> bool:
        """Is the exchange's holiday list known for that year (listed in the calendar's years)?"""
        return year in self.calendar.years.get(exchange, ())

    def trading_day(self, exchange: str, day: int) -> bool:
        return self._hours_on(exchange, day) is not None

    def _hours_on(self, exchange: str, day: int) -> _Compiled | None:
        """The day's hours: its special session, else the regular hours on a weekday that is no holiday."""
        special = self._special.get(exchange)
        if special and day in special:
            return special[day]
        hours = self._hours.get(exchange)
        if hours is None or day < 0 or (not self.calendar.weekends and (day + 3) % 7 >= 5):  # 1970-01-01 was a Thursday
            return None
        holidays = self.calendar.holidays.get(exchange)
        if holidays and dt.date.fromordinal(day + _EPOCH_ORDINAL) in holidays:
            return None
        return hours

    def is_open(self, exchange: str, epoch_ms: int) -> bool:
        window = self._windows.get(exchange)
        if window is None or not window[0] <= epoch_ms < window[1]:
            window = self._window(exchange, ist_day(epoch_ms))
            self._windows[exchange] = window
        return window[2] <= epoch_ms < window[3]

    def _window(self, exchange: str, day: int) -> tuple[int, int, int, int]:
        start = _day_start_ms(day)
        hours = self._hours_on(exchange, day)
        if hours is None:
            return (start, start + DAY_MS, 0, 0)
        return (start, start + DAY_MS, start + hours[0], start + hours[1])

    def square_off_ms(self, exchange: str, day: int) -> int | None:
        """Epoch ms of the square-off on that IST day, None on a closed day or without one."""
        hours = self._hours_on(exchange, day)
        if hours is None or hours[2] is None:
            return None
        return _day_start_ms(day) + hours[2]

    def entry_window(self, exchange: str, epoch_ms: int) -> str | None:
        """The IST day's entry window as `HH:MM-HH:MM` (from the open to the entry cutoff or the close),
        or None when the exchange does not trade that day."""
        hours = self._hours_on(exchange, ist_day(epoch_ms))
        if hours is None:
            return None
        ends = hours[1] if hours[3] is None else min(hours[1], hours[3])
        return f"{_clock_text(hours[0])}-{_clock_text(ends)}"

    def entries_open(self, exchange: str, epoch_ms: int) -> bool:
        """New entries are taken inside the session until the entry cutoff."""
        day = ist_day(epoch_ms)
        hours = self._hours_on(exchange, day)
        if hours is None:
            return False
        t = epoch_ms - _day_start_ms(day)
        ends = hours[1] if hours[3] is None else min(hours[1], hours[3])
        return hours[0] <= t < ends


def _clock_text(ms_of_the_day: int) -> str:
    minutes = ms_of_the_day // 60_000
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_Compiled = tuple[int, int, int | None, int | None]  # opens, closes, square-off, entry cutoff: ms of the day


def _compile(hours: SegmentHours) -> _Compiled:
    square_off = None if hours.square_off is None else ms_of_day(hours.square_off)
    cutoff = None if hours.entry_cutoff is None else ms_of_day(hours.entry_cutoff)
    return (ms_of_day(hours.opens), ms_of_day(hours.closes), square_off, cutoff)
