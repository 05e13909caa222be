"""The market calendar through the real app and a paper exchange: a holiday, a special session, a missing year."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import logging

import httpx

from tests.service.test_equity_flow import open_trade
from tests.support.clocks import ShiftedClock
from tests.support.waiting import wait_for

EQUITY = ["NSE", "NFO", "BSE", "BFO"]
STOP = {"type": "points", "value": 10}
_strategies = itertools.count()


def refused(service) -> str:
    """An entry alert's refusal reason (each with a strategy of its own, so none is a duplicate)."""
    reply = service.alert(quantity=1, stoploss=STOP, strategyname=f"late{next(_strategies)}")
    assert reply.status_code == 409, reply.text
    assert reply.json()["errors"][0]["field"] == "window", reply.text
    return reply.json()["errors"][0]["reason"]


def test_a_shipped_nse_holiday_takes_no_entries(service_factory):
    christmas = ShiftedClock(11, 0, day=dt.date(2026, 12, 25))  # a Friday
    service = service_factory(clock=christmas, MARKET_HOURS="exchange")
    assert refused(service) == "outside the entry window of NSE: it does not trade today"


def test_a_holiday_from_holidays_file_takes_no_entries(service_factory, tmp_path):
    day = dt.date(2026, 12, 24)  # a Thursday the shipped list leaves open
    path = tmp_path / "holidays.json"
    path.write_text(json.dumps({"calendars": [{"exchanges": ["NSE"], "holidays": [day.isoformat()]}]}))
    service = service_factory(clock=ShiftedClock(11, 0, day=day), MARKET_HOURS="exchange", HOLIDAYS_FILE=str(path))
    assert refused(service) == "outside the entry window of NSE: it does not trade today"


def test_a_muhurat_session_added_by_holidays_file_trades_on_a_sunday_and_squares_off_at_its_own_time(
        service_factory, tmp_path):
    muhurat = {"date": "2026-11-08", "name": "Muhurat trading", "opens": "18:00", "closes": "19:00",
               "square_off": "18:45", "entry_cutoff": "18:30"}
    path = tmp_path / "holidays.json"
    path.write_text(json.dumps({"calendars": [{"exchanges": EQUITY, "sessions": [muhurat]}]}))
    clock = ShiftedClock(18, 10, day=dt.date(2026, 11, 8))  # a Sunday
    service = service_factory(clock=clock, MARKET_HOURS="exchange", HOLIDAYS_FILE=str(path))
    trade_id = open_trade(service, stoploss=STOP, quantity=2)  # INTRADAY
    clock.jump_to(18, 35)
    desk = service.app.state.runtime
    wait_for(lambda: not desk.guard.entries_open("NSE"), "the engine's clock to pass the session's entry cutoff")
    assert refused(service) == "outside the entry window 18:00-18:30 of NSE"  # the session's own cutoff
    assert service.trade(trade_id)["trade"]["state"] == "OPEN"  # past the cutoff, before the square-off
    clock.jump_to(18, 44, 59)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the session's square-off")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "SQUARE_OFF"
    square_off = dt.datetime(2026, 11, 8, 18, 45, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert fired["at_ms"] >= square_off.timestamp() * 1000


def test_healthz_and_the_log_warn_when_the_year_has_no_calendar(service_factory, caplog):
    caplog.set_level(logging.WARNING, logger="tickguard.calendar")
    service = service_factory(clock=ShiftedClock(10, 0, day=dt.date(2027, 1, 4)), MARKET_HOURS="exchange")
    health = httpx.get(f"{service.url}/healthz", timeout=10).json()
    (warning,) = health["warnings"]
    assert warning["kind"] == "calendar_year" and warning["year"] == 2027
    assert warning["exchanges"] == ["BFO", "BSE", "NFO", "NSE"]
    assert "no holiday calendar for 2027" in warning["reason"]
    logged = [r for r in caplog.records if "no holiday calendar for 2027" in r.getMessage()]
    assert [r.exchanges for r in logged] == [["BFO", "BSE", "NFO", "NSE"]]


def test_a_listed_year_with_no_holidays_silences_the_warning(service_factory, tmp_path):
    path = tmp_path / "holidays.json"
    path.write_text(json.dumps({"calendars": [{"exchanges": EQUITY, "years": [2027]}]}))
    service = service_factory(clock=ShiftedClock(10, 0, day=dt.date(2027, 1, 4)), MARKET_HOURS="exchange",
                              HOLIDAYS_FILE=str(path))
    assert httpx.get(f"{service.url}/healthz", timeout=10).json()["warnings"] == []
