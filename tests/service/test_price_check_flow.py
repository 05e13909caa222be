"""The alert price check end to end, against the paper exchange: a price far from the market's is a 422,
PRICE_SOURCE=live trades at the market's price, and outside the session nothing is checked."""
from __future__ import annotations

import json

import pytest

from tests.support.clocks import ShiftedClock
from tests.support.service import BACKENDS, on_backend

NIFTY = "99926000"


@pytest.fixture(params=BACKENDS)
def service_factory(request, service_factory):
    """Every test here runs on SQLite and on PostgreSQL."""
    yield from on_backend(request.param, service_factory)


def stored_alerts(service) -> list[dict]:
    """The alerts' stored bodies, oldest first, read straight from the store."""
    query = "SELECT body FROM alerts ORDER BY id"
    if service.settings.database_url:
        import psycopg

        with psycopg.connect(service.settings.database_url) as db:
            return [json.loads(row[0]) for row in db.execute(query).fetchall()]
    import sqlite3

    db = sqlite3.connect(service.settings.tickguard_db)
    try:
        return [json.loads(row[0]) for row in db.execute(query).fetchall()]
    finally:
        db.close()


def test_an_entry_priced_far_from_the_market_is_refused_naming_the_live_price(service_factory):
    service = service_factory()
    service.price(800)
    refused = service.alert(price=842, quantity=1)  # 5.25 % above
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["field"] == "price" and "800.00" in error["reason"] and "5.25%" in error["reason"]
    assert service.trade_count_in_store() == (0, 0)
    accepted = service.alert(price=840, quantity=1)  # 5 % exactly: within
    assert accepted.status_code == 202, accepted.text
    (body,) = stored_alerts(service)
    assert body["price"] == 840 and body["price_checked"] is True and body["live_price"] == 800.0
    assert body["price_used"] == "alert"
    trade = service.trade(accepted.json()["trades"][0])["trade"]
    assert trade["spec"]["alert_price"] == 84_000


def test_an_exit_is_never_refused_for_its_price(service_factory):
    service = service_factory()
    service.price(800)
    opened = service.alert(price=800, quantity=1)
    assert opened.status_code == 202, opened.text
    (trade_id,) = opened.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN", what="entry fill")
    closed = service.alert(signal="exit", price=1000)
    assert closed.status_code == 202 and closed.json()["closing"] == [trade_id], closed.text
    assert stored_alerts(service)[-1]["price_checked"] is False


def test_price_source_live_sizes_and_plans_at_the_live_price(service_factory):
    service = service_factory(PRICE_SOURCE="live")
    service.price(800)
    reply = service.alert(price=900)  # sized from the fund: the demo account's 100 000 at 800, not at 900
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    trade = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN", what="entry fill")["trade"]
    assert trade["spec"]["alert_price"] == 80_000 and trade["quantity"] == 125
    (body,) = stored_alerts(service)
    assert body["price"] == 900 and body["price_used"] == "live" and body["live_price"] == 800.0


def test_an_option_alert_is_checked_against_its_underlying(service_factory):
    service = service_factory()
    service.price(24_010, token=NIFTY)
    far = service.alert(symbolname="NIFTY", type="option", price=26_000, lots=1, strategyname="opt")
    assert far.status_code == 422 and far.json()["errors"][0]["field"] == "price", far.text
    assert "24010.00" in far.json()["errors"][0]["reason"]
    near = service.alert(symbolname="NIFTY", type="option", price=24_100, lots=1, strategyname="opt")
    assert near.status_code == 202, near.text


def test_price_source_live_picks_the_option_strike_at_the_live_price(service_factory):
    service = service_factory(PRICE_SOURCE="live")
    service.price(24_010, token=NIFTY)
    reply = service.alert(symbolname="NIFTY", type="option", price=24_400, lots=1, strategyname="opt")
    assert reply.status_code == 202, reply.text
    trade = service.trade(reply.json()["trades"][0])["trade"]
    assert trade["tradingsymbol"].endswith("24000CE") and trade["spec"]["underlying_price"] == 2_401_000


def test_outside_the_session_the_price_is_not_checked(service_factory):
    service = service_factory(clock=ShiftedClock(16, 30, 0), MARKET_HOURS="exchange")
    service.price(800)
    reply = service.alert(price=900, quantity=1)
    assert reply.status_code == 409 and "entry window" in reply.json()["errors"][0]["reason"], reply.text
    (body,) = stored_alerts(service)
    assert body["price_checked"] is False and "live_price" not in body


def test_price_sanity_pct_zero_turns_the_check_off(service_factory):
    service = service_factory(PRICE_SANITY_PCT="0")
    service.price(800)
    reply = service.alert(price=900, quantity=1)
    assert reply.status_code == 202, reply.text
    assert stored_alerts(service)[0]["price_checked"] is False
