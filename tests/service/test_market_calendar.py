"""The market calendar: the shipped NSE list, HOLIDAYS_FILE on top, its problems, the missing-year warning."""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from service.errors import SettingsError
from service.market_calendar import CalendarWatch, MarketCalendar, load_market_calendar
from service.settings import load_settings
from streams import SessionClock
from streams.session import ist_day

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
EQUITY = ["NSE", "NFO", "BSE", "BFO"]
MUHURAT = {"date": "2026-11-08", "name": "Muhurat trading", "opens": "18:00", "closes": "19:00",
           "square_off": "18:45", "entry_cutoff": "18:30"}


def at(day: dt.date, hour: int = 11, minute: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), IST).timestamp() * 1000)


@pytest.fixture
def holidays_file(tmp_path: Path):
    def write(document: object) -> str:
        path = tmp_path / "holidays.json"
        path.write_text(json.dumps(document))
        return str(path)

    return write


def test_the_shipped_nse_list_closes_nse_nfo_bse_bfo_and_not_mcx_or_cds():
    market = load_market_calendar()
    sessions = SessionClock(market.calendar)
    republic_day = dt.date(2026, 1, 26)
    for code in EQUITY:
        assert not sessions.is_open(code, at(republic_day)), code
        assert sessions.covers(code, 2026) and not sessions.covers(code, 2027)
    assert sessions.is_open("MCX", at(republic_day)) and sessions.is_open("CDS", at(republic_day))
    assert not sessions.covers("MCX", 2026) and not sessions.covers("CDS", 2026)
    assert sessions.is_open("NSE", at(dt.date(2026, 1, 27)))
    assert len(market.calendar.holidays["NSE"] - {d for d in market.calendar.holidays["NSE"] if d.weekday() >= 5}) == 16
    assert any("NSE" in source and "2026" in source for source in market.sources)
    # Muhurat trading is announced, its times are not: the Sunday stays closed until they are given
    assert market.to_announce["NSE"] == {dt.date(2026, 11, 8): market.to_announce["NSE"][dt.date(2026, 11, 8)]}
    assert not sessions.is_open("NSE", at(dt.date(2026, 11, 8), 18, 15))


def test_a_users_session_is_added_to_the_shipped_list(holidays_file):
    path = holidays_file({"calendars": [{"exchanges": EQUITY, "sessions": [MUHURAT]}]})
    market = load_market_calendar(path)
    sessions = SessionClock(market.calendar)
    sunday = dt.date(2026, 11, 8)
    assert sessions.is_open("NFO", at(sunday, 18, 15)) and not sessions.is_open("NFO", at(sunday, 19, 0))
    assert sessions.square_off_ms("BSE", ist_day(at(sunday))) == at(sunday, 18, 45)
    assert sessions.entries_open("NSE", at(sunday, 18, 29)) and not sessions.entries_open("NSE", at(sunday, 18, 30))
    assert not sessions.is_open("NSE", at(dt.date(2026, 1, 26)))  # the shipped holidays stay
    assert not market.to_announce["NSE"]
    assert not sessions.is_open("MCX", at(sunday, 18, 15))


def test_a_session_without_an_entry_cutoff_takes_entries_until_its_square_off(holidays_file):
    session = {k: v for k, v in MUHURAT.items() if k != "entry_cutoff"}
    market = load_market_calendar(holidays_file({"calendars": [{"exchanges": ["NSE"], "sessions": [session]}]}))
    sessions = SessionClock(market.calendar)
    sunday = dt.date(2026, 11, 8)
    assert sessions.entries_open("NSE", at(sunday, 18, 44)) and not sessions.entries_open("NSE", at(sunday, 18, 45))


def test_a_users_holidays_and_years_add_up_and_shipped_false_drops_the_shipped_list(holidays_file):
    extra = {"exchanges": ["MCX"], "years": [2026], "holidays": ["2026-01-26", {"date": "2026-03-03", "name": "Holi"}]}
    market = load_market_calendar(holidays_file({"calendars": [extra]}))
    sessions = SessionClock(market.calendar)
    assert not sessions.is_open("MCX", at(dt.date(2026, 3, 3))) and not sessions.is_open("NSE", at(dt.date(2026, 3, 3)))
    assert sessions.covers("MCX", 2026) and sessions.covers("NSE", 2026)
    alone = SessionClock(load_market_calendar(holidays_file({"shipped": False, "calendars": [extra]})).calendar)
    assert alone.is_open("NSE", at(dt.date(2026, 3, 3))) and not alone.covers("NSE", 2026)
    assert not alone.is_open("MCX", at(dt.date(2026, 3, 3)))


def test_a_malformed_holidays_file_names_the_file_the_exchange_and_the_field_all_at_once(holidays_file):
    path = holidays_file({"calendars": [
        {"exchanges": ["NSE", "NSX"], "years": ["2026"], "holidays": ["2026-02-30", "2026-03-03"]},
        {"exchanges": ["MCX"], "sessions": [{**MUHURAT, "square_off": "19:15"}, {"date": "2026-11-09", "opens": "18:00"},
                                            {"date": "2026-11-10", "opens": "6pm", "closes": "19:00", "square_off": "18:45"}]},
    ]})
    with pytest.raises(SettingsError) as raised:
        load_settings({"HOLIDAYS_FILE": path}, env_file="/nonexistent.env")
    reasons = [reason for name, reason in raised.value.problems if name == "HOLIDAYS_FILE"]
    assert all(reason.startswith(f"{path}: ") for reason in reasons)
    expected = [
        "calendars[0] (NSE, NSX): exchanges: unknown exchange 'NSX'",
        "calendars[0] (NSE, NSX): years: expected a list of years like [2026], got ['2026']",
        "calendars[0] (NSE, NSX): holidays[0]: date: '2026-02-30' is not a calendar date",
        "calendars[1] (MCX): sessions[0] 2026-11-08: square_off 19:15 is not inside the session 18:00-19:00",
        "calendars[1] (MCX): sessions[1] 2026-11-09: closes, square_off: required with the other times",
        "calendars[1] (MCX): sessions[2] 2026-11-10: opens: expected an IST time HH:MM, got '6pm'",
    ]
    for part in expected:
        assert any(part in reason for reason in reasons), (part, reasons)
    assert len(reasons) == len(expected)


def test_an_unreadable_holidays_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="HOLIDAYS_FILE"):
        load_settings({"HOLIDAYS_FILE": str(tmp_path / "missing.json")}, env_file="/nonexistent.env")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(SettingsError, match=r'expected a JSON object \{"calendars"'):
        load_settings({"HOLIDAYS_FILE": str(tmp_path / "list.json")}, env_file="/nonexistent.env")


def test_two_sessions_on_one_date_are_refused(holidays_file):
    path = holidays_file({"calendars": [{"exchanges": ["NSE"], "sessions": [MUHURAT, MUHURAT]}]})
    with pytest.raises(SettingsError, match=r"sessions\[1\] 2026-11-08: a second session on 2026-11-08"):
        load_market_calendar(path)
    path = holidays_file({"calendars": [{"exchanges": ["NSE", "NFO"], "sessions": [MUHURAT]},
                                        {"exchanges": ["NFO"], "sessions": [MUHURAT]}]})
    with pytest.raises(SettingsError, match=r"calendars\[1\] \(NFO\): sessions: NFO has another session on 2026-11-08"):
        load_market_calendar(path)


def test_a_year_without_a_calendar_is_a_warning_until_it_is_listed(holidays_file):
    market = load_market_calendar()
    (warning,) = market.warnings(EQUITY + ["MCX"], at(dt.date(2027, 1, 4)))
    assert warning["kind"] == "calendar_year" and warning["year"] == 2027
    assert warning["exchanges"] == ["BFO", "BSE", "MCX", "NFO", "NSE"]
    assert "HOLIDAYS_FILE" in warning["reason"]
    assert [w["exchanges"] for w in market.warnings(EQUITY + ["MCX"], at(dt.date(2026, 12, 4)))] == [["MCX"]]
    listed = load_market_calendar(holidays_file({"calendars": [{"exchanges": EQUITY, "years": [2027]}]}))
    assert listed.warnings(EQUITY, at(dt.date(2027, 1, 4))) == []


def test_a_special_session_whose_times_are_unknown_is_a_warning_in_the_week_before_it():
    market = load_market_calendar()
    assert market.warnings(["NSE"], at(dt.date(2026, 10, 31))) == []
    (warning,) = market.warnings(["NSE", "NFO"], at(dt.date(2026, 11, 2)))
    assert warning["kind"] == "session_times" and warning["date"] == "2026-11-08"
    assert warning["exchanges"] == ["NFO", "NSE"] and "Muhurat" in warning["name"]
    assert market.warnings(["NSE"], at(dt.date(2026, 11, 9))) == []


def test_the_watch_logs_each_exchange_once_and_an_exchange_when_a_trade_brings_it_in(caplog):
    caplog.set_level(logging.WARNING, logger="tickguard.calendar")
    subscribed: set[str] = set()
    watch = CalendarWatch(load_market_calendar(), lambda: subscribed, lambda: at(dt.date(2026, 12, 4)))
    watch.start()
    assert watch.warnings() == [] and not caplog.records  # the shipped list covers 2026; MCX is not in use
    subscribed.add("MCX")
    (warning,) = watch.warnings()
    assert warning["exchanges"] == ["MCX"] and warning["year"] == 2026
    watch.check()
    watch.check()
    assert [(r.getMessage().split(":")[0], r.exchanges) for r in caplog.records] == [
        ("no holiday calendar for 2026", ["MCX"])]


def test_always_open_hours_need_no_calendar_and_warn_about_none():
    watch = CalendarWatch(None, lambda: {"NSE", "MCX"}, lambda: at(dt.date(2031, 1, 6)))
    assert watch.warnings() == []
    assert isinstance(load_market_calendar(), MarketCalendar)
