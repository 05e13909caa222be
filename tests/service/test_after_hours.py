"""A restart outside the session sends nothing for INTRADAY trades: it asks the broker what became of them.

tickguard runs on a clock moved to a weekday ahead with MARKET_HOURS=exchange; the paper exchange
plays the broker: `/paper/v1/square_off` is its own intraday square-off near the close, and
`/paper/v1/reset` the next morning (the day's positions and trade book gone).
"""
from __future__ import annotations

import datetime as dt

from service.trades import tag_for
from tests.service.test_recovery import Broker
from tests.support.clocks import IST, ShiftedClock, weekday_ahead
from tests.support.service import RunningService
from tests.support.waiting import wait_for

STOP = {"type": "points", "value": 10}


def open_trade(service: RunningService, **alert) -> int:
    reply = service.alert(**{"quantity": 5, "stoploss": STOP, **alert})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="entry and arming")
    return trade_id


def events(service: RunningService, trade_id: int, kind: str) -> list[dict]:
    return [e["data"] for e in service.trade(trade_id)["events"] if e["kind"] == kind]


def exit_tags(broker: Broker) -> list[str]:
    return [o["ordertag"] for o in broker.orders() if "X" in o["ordertag"]]


def test_a_restart_after_the_close_settles_intraday_trades_with_the_broker_and_sends_nothing(
        service_factory, paper_factory):
    paper = paper_factory()
    broker = Broker(paper)
    clock = ShiftedClock(10, 0, day=weekday_ahead())
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange")
    service.price(800)
    service.price(1400, token="2885")
    squared = open_trade(service, strategyname="s1")
    held = open_trade(service, strategyname="s2", symbolname="RELIANCE", price=1400, quantity=3)
    carried = open_trade(service, strategyname="s3", product="DELIVERY", quantity=2)
    service.stop()

    broker.price(792)  # above the stops: nothing was crossed while tickguard was down
    assert paper.control("POST", "/square_off", json={"token": "3045"}).json()["orders"][0]["quantity"] == 5
    clock.jump_to(20, 0)  # the same day, after the NSE session
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange")

    view = service.trade(squared)
    assert view["trade"]["state"] == "CLOSED" and view["trade"]["reason"] == "BROKER_SQUARE_OFF"
    assert (view["trade"]["exit_price"], view["trade"]["realised_pnl"]) == (79_200, -4_000)
    (closed,) = events(service, squared, "closed")
    assert closed["estimated"] is False and closed["price_source"] == "trade_book" and closed["price"] == 79_200

    left = service.trade(held)["trade"]
    assert left["state"] == "UNPROTECTED" and "next open" in left["reason"], left
    assert len(events(service, held, "unprotected")) == 1
    assert service.trade(carried)["trade"]["state"] == "OPEN"
    wait_for(lambda: len(events(service, carried, "armed")) == 2, "the DELIVERY trade armed again")
    assert exit_tags(broker) == []  # after hours nothing goes to the broker
    with service.client() as client:
        assert client.get("/halt").json()["strategies"]["s1"]["realised"] == -4_000

    clock.jump_to(9, 15, 5, days=1)  # the next session opens: the position still held is squared off
    view = service.wait_trade(held, lambda t: t["state"] == "CLOSED", what="the square-off at the open")
    assert [e["reason"] for e in events(service, held, "exit_fired")] == ["SQUARE_OFF"]
    assert exit_tags(broker) == [tag_for(held, "exit", 1)]
    assert service.trade(carried)["trade"]["state"] == "OPEN"


def test_the_next_morning_an_intraday_trade_gone_without_a_fill_closes_estimated_and_delivery_stays(
        service_factory, paper_factory):
    paper = paper_factory()
    broker = Broker(paper)
    clock = ShiftedClock(14, 0, day=weekday_ahead())
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange")
    service.price(800)
    intraday = open_trade(service, strategyname="s1")
    carried = open_trade(service, strategyname="s3", product="DELIVERY", quantity=2)
    day = service.trade(intraday)["trade"]["created_ms"]
    service.stop()

    assert paper.control("POST", "/reset").status_code == 200  # a new broker day: no positions, no trade book
    broker.price(796)
    clock.jump_to(8, 0, days=1)  # before the next open
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange")

    trade = service.trade(intraday)["trade"]
    assert trade["state"] == "CLOSED" and trade["reason"] == "BROKER_SQUARE_OFF"
    assert (trade["exit_price"], trade["realised_pnl"]) == (79_600, -2_000)
    (closed,) = events(service, intraday, "closed")
    assert closed["estimated"] is True and closed["price_source"] == "ltp"
    assert closed["pnl_day"] == dt.datetime.fromtimestamp(day / 1000, IST).date().isoformat()
    with service.client() as client:
        assert client.get("/halt").json()["strategies"] == {}  # yesterday's loss is not today's

    # The DELIVERY position is not in today's positions (it became a holding): it is not gone.
    wait_for(lambda: len(events(service, carried, "armed")) == 2, "the DELIVERY trade armed again")
    assert service.trade(carried)["trade"]["state"] == "OPEN"
    assert broker.orders() == []

