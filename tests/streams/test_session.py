from __future__ import annotations

import datetime as dt

import msgspec
from tests.streams.streams_helpers import MONDAY, ist

from streams import SegmentHours, SessionClock, default_calendar
from streams.session import ist_day

SATURDAY = dt.date(2025, 1, 4)


def test_equity_continuous_session_boundaries():
    sessions = SessionClock(default_calendar())
    assert not sessions.is_open("NSE", ist(9, 14, 59))
    assert sessions.is_open("NSE", ist(9, 15))
    assert sessions.is_open("NFO", ist(15, 29, 59))
    assert not sessions.is_open("NSE", ist(15, 30))


def test_mcx_runs_into_the_evening():
    sessions = SessionClock(default_calendar())
    assert sessions.is_open("MCX", ist(9, 0))
    assert sessions.is_open("MCX", ist(23, 29, 59))
    assert not sessions.is_open("MCX", ist(23, 30))


def test_weekends_and_holidays_are_closed():
    sessions = SessionClock(default_calendar(nse_holidays=frozenset({MONDAY})))
    assert not sessions.is_open("NSE", ist(11, day=SATURDAY))
    assert not sessions.is_open("NSE", ist(11))
    assert sessions.is_open("MCX", ist(11))
    assert sessions.square_off_ms("NSE", 20094) is None  # 2025-01-06 is IST day 20094


def test_the_window_cache_follows_the_day():
    sessions = SessionClock(default_calendar(nse_holidays=frozenset({MONDAY})))
    tuesday = MONDAY + dt.timedelta(days=1)
    assert not sessions.is_open("NSE", ist(11))
    assert sessions.is_open("NSE", ist(11, day=tuesday))
    assert not sessions.is_open("NSE", ist(11))


def test_square_off_and_entry_cutoff_times():
    sessions = SessionClock(default_calendar())
    assert sessions.square_off_ms("NSE", 20094) == ist(15, 15)
    assert sessions.square_off_ms("MCX", 20094) == ist(23, 25)
    assert sessions.entries_open("NSE", ist(14, 59, 59))
    assert not sessions.entries_open("NSE", ist(15, 0))
    assert not sessions.entries_open("NSE", ist(9, 14))
    assert not sessions.entries_open("BOGUS", ist(11))


def test_unknown_exchange_and_times_before_the_epoch_are_closed():
    sessions = SessionClock(default_calendar())
    assert not sessions.knows("XYZ")
    assert not sessions.is_open("XYZ", ist(11))
    assert not sessions.is_open("NSE", -(1 << 62))


def test_a_calendar_may_trade_on_weekends():
    from streams import Calendar, SegmentHours

    saturday = MONDAY + dt.timedelta(days=5)
    all_day = SegmentHours(dt.time(0, 0), dt.time(23, 59, 59, 999000))
    round_the_clock = SessionClock(Calendar({"NSE": all_day}, weekends=True))
    assert round_the_clock.is_open("NSE", ist(3, day=saturday))
    assert round_the_clock.entries_open("NSE", ist(23, 30, day=saturday))
    assert not SessionClock(Calendar({"NSE": all_day})).is_open("NSE", ist(3, day=saturday))


SUNDAY = MONDAY - dt.timedelta(days=1)
MUHURAT = SegmentHours(dt.time(18, 0), dt.time(19, 0), square_off=dt.time(18, 45), entry_cutoff=dt.time(18, 30))


def _with_session(day: dt.date, holidays: frozenset[dt.date] = frozenset()) -> SessionClock:
    calendar = msgspec.structs.replace(default_calendar(nse_holidays=holidays), sessions={"NSE": {day: MUHURAT}})
    return SessionClock(calendar)


def test_a_special_session_on_a_sunday_keeps_its_own_hours():
    sessions = _with_session(SUNDAY)
    assert not sessions.is_open("NSE", ist(17, 59, 59, day=SUNDAY))
    assert sessions.is_open("NSE", ist(18, 0, day=SUNDAY))
    assert sessions.is_open("NSE", ist(18, 59, 59, day=SUNDAY))
    assert not sessions.is_open("NSE", ist(19, 0, day=SUNDAY))
    assert not sessions.is_open("NSE", ist(11, day=SUNDAY))  # the regular hours do not apply that day
    assert sessions.square_off_ms("NSE", ist_day(ist(18, day=SUNDAY))) == ist(18, 45, day=SUNDAY)
    assert sessions.entries_open("NSE", ist(18, 29, 59, day=SUNDAY))
    assert not sessions.entries_open("NSE", ist(18, 30, day=SUNDAY))
    assert not sessions.is_open("NFO", ist(18, 10, day=SUNDAY))  # only the exchanges it is given for
    assert sessions.is_open("NSE", ist(11)) and sessions.square_off_ms("NSE", ist_day(ist(11))) == ist(15, 15)


def test_a_special_session_on_a_weekday_holiday_replaces_the_closed_day():
    sessions = _with_session(MONDAY, holidays=frozenset({MONDAY}))
    assert not sessions.is_open("NSE", ist(11))
    assert sessions.is_open("NSE", ist(18, 10))
    assert sessions.square_off_ms("NSE", ist_day(ist(11))) == ist(18, 45)


def test_cds_does_not_take_the_nse_holidays():
    sessions = SessionClock(default_calendar(nse_holidays=frozenset({MONDAY})))
    assert not sessions.is_open("BFO", ist(11))
    assert sessions.is_open("CDS", ist(11))


def test_a_calendar_covers_the_years_it_lists():
    calendar = msgspec.structs.replace(default_calendar(), years={"NSE": frozenset({2026})})
    sessions = SessionClock(calendar)
    assert sessions.covers("NSE", 2026)
    assert not sessions.covers("NSE", 2027)
    assert not sessions.covers("MCX", 2026)
