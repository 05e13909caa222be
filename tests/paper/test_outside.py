"""Prices from outside (paper.outside): a watched instrument stops walking, trades only at the prices it
is sent, and an order on it waits for the first one rather than filling at a made-up price."""
from __future__ import annotations

from datetime import date

import httpx
import pytest

from paper.exchange import PaperConfig, PaperExchange
from tests.support.paper import DEMO

ROOT = "/rest/secure/angelbroking"
SBIN, INFY = ("NSE", "3045"), ("NSE", "1594")


@pytest.fixture
def exchange() -> PaperExchange:
    return PaperExchange(PaperConfig(logins=(DEMO,), db_path=":memory:", tick_ms=0, today=date(2026, 3, 10)))


def order(ex: PaperExchange, kind: str = "MARKET", side: str = "BUY", price: float = 0, trigger: float = 0,
          token: str = "3045", symbol: str = "SBIN-EQ") -> str:
    params = {"variety": "STOPLOSS" if kind.startswith("STOPLOSS") else "NORMAL", "tradingsymbol": symbol,
              "symboltoken": token, "transactiontype": side, "exchange": "NSE", "ordertype": kind,
              "producttype": "INTRADAY", "duration": "DAY", "price": str(price), "triggerprice": str(trigger),
              "quantity": "2"}
    placed = ex.engine.accept(DEMO.clientcode, params)
    if not ex.outside.park(placed):
        ex.engine.settle(placed.orderid)
    return placed.orderid


def status(ex: PaperExchange, orderid: str) -> tuple[str, int]:
    found = ex.engine.order(orderid)
    assert found is not None
    return found.status, found.filledvalue // max(found.filledshares, 1)


def test_a_watched_instrument_stops_walking_while_the_others_walk_on(exchange):
    exchange.outside.watch([SBIN])
    sbin, infy = exchange.prices.ltp(*SBIN), exchange.prices.ltp(*INFY)
    for _ in range(200):
        exchange.prices.step(60.0)
    assert exchange.prices.ltp(*SBIN) == sbin and exchange.prices.ltp(*INFY) != infy
    exchange.outside.apply([("NSE", "3045", 81_250)])
    exchange.prices.step(60.0)
    assert exchange.prices.ltp(*SBIN) == 81_250


def test_an_order_waits_for_the_first_outside_price_and_fills_at_it(exchange):
    exchange.outside.watch([SBIN])
    waiting = order(exchange)
    assert status(exchange, waiting) == ("open pending", 0)
    assert exchange.outside.state()["awaiting"] == ["NSE:3045"] and exchange.outside.state()["parked_orders"] == 1
    exchange.outside.apply([("NSE", "1594", 150_000)])  # another instrument's price settles nothing
    assert status(exchange, waiting) == ("open pending", 0)
    exchange.outside.apply([("NSE", "3045", 81_250), ("NSE", "3045", 81_300)])
    assert status(exchange, waiting) == ("complete", 81_250)  # at the first price, not a later one
    assert exchange.outside.state()["awaiting"] == [] and exchange.outside.state()["parked_orders"] == 0
    assert status(exchange, order(exchange)) == ("complete", 81_300)  # priced now: fills on arrival


def test_a_waiting_order_can_be_cancelled_and_then_never_fills(exchange):
    exchange.outside.watch([SBIN])
    waiting = order(exchange)
    exchange.engine.cancel(DEMO.clientcode, waiting, "NORMAL")
    exchange.outside.apply([("NSE", "3045", 81_250)])
    assert status(exchange, waiting)[0] == "cancelled"


def test_limit_and_stop_orders_fill_against_the_outside_prices(exchange):
    exchange.outside.apply([("NSE", "3045", 81_000)])
    limit = order(exchange, "LIMIT", "BUY", price=805)
    stop = order(exchange, "STOPLOSS_MARKET", "SELL", trigger=800)
    assert status(exchange, limit)[0] == "open" and status(exchange, stop)[0] == "trigger pending"
    exchange.outside.apply([("NSE", "3045", 80_400)])  # through the limit: it fills at its price
    assert status(exchange, limit) == ("complete", 80_500) and status(exchange, stop)[0] == "trigger pending"
    exchange.outside.apply([("NSE", "3045", 79_700)])  # through the trigger: the stop fills at that print
    assert status(exchange, stop) == ("complete", 79_700)


def test_no_circuit_band_of_the_paper_exchanges_making_refuses_an_order_at_a_live_price(exchange):
    close = exchange.prices.quote(*SBIN).close
    exchange.outside.apply([("NSE", "3045", close * 3 // 2 // 5 * 5)])  # 50 % above its own close
    limit = order(exchange, "LIMIT", "BUY", price=close * 3 // 2 // 5 * 5 / 100)
    assert status(exchange, limit)[0] == "complete"
    quote = exchange.prices.quote(*SBIN)
    assert (quote.lower_circuit, quote.upper_circuit) == (0, 0)


def test_outside_prices_are_taken_as_they_come_and_unknown_ones_skipped(exchange):
    assert exchange.outside.watch([SBIN, ("NSE", "999999")]) == [("NSE", "999999")]
    applied = exchange.outside.apply([("NSE", "3045", 81_251), ("NSE", "999999", 100), ("NSE", "3045", 0),
                                      ("NSE", "3045", True)])
    assert applied == 1 and exchange.prices.ltp(*SBIN) == 81_251  # off this universe's 5-paise tick: still taken
    assert exchange.outside.state()["skipped"] == 3


def test_a_new_feed_session_waits_for_fresh_prices_of_everything_held(exchange):
    exchange.outside.apply([("NSE", "3045", 81_250)])
    assert exchange.outside.renew() == 1
    waiting = order(exchange)
    assert status(exchange, waiting) == ("open pending", 0)  # not at the price the last session left
    exchange.outside.apply([("NSE", "3045", 79_900)])
    assert status(exchange, waiting) == ("complete", 79_900)


def test_a_reset_forgets_what_was_held(exchange):
    exchange.outside.watch([SBIN])
    order(exchange)
    exchange.reset()
    assert exchange.outside.state() == {"held": [], "awaiting": [], "parked_orders": 0, "applied": 0, "skipped": 0}


def login(paper) -> dict[str, str]:
    headers = {"X-PrivateKey": DEMO.api_key}
    body = {"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": paper.totp()}
    jwt = httpx.post(f"{paper.url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body, headers=headers)
    return {**headers, "Authorization": f"Bearer {jwt.json()['data']['jwtToken']}"}


def test_over_http_place_order_waits_and_the_control_routes_feed_it(paper):
    headers = login(paper)
    watched = paper.control("POST", "/outside/watch", json={"instruments": [{"exchange": "NSE", "token": "3045"}]})
    assert watched.json() == {"watched": 1, "unknown": []}
    body = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "transactiontype": "BUY",
            "exchange": "NSE", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY", "quantity": "1"}
    placed = httpx.post(f"{paper.url}{ROOT}/order/v1/placeOrder", json=body, headers=headers).json()
    assert placed["status"] is True
    book = httpx.get(f"{paper.url}{ROOT}/order/v1/getOrderBook", headers=headers).json()["data"]
    assert book[0]["status"] == "open pending"
    fed = paper.control("POST", "/outside/ticks", json={"ticks": [["NSE", "3045", 81_250], ["NSE", "42", 5]]})
    assert fed.json() == {"applied": 1, "skipped": 1}
    book = httpx.get(f"{paper.url}{ROOT}/order/v1/getOrderBook", headers=headers).json()["data"]
    assert (book[0]["status"], float(book[0]["averageprice"])) == ("complete", 812.5)
    state = paper.control("GET", "/outside").json()
    assert state["held"] == ["NSE:3045"] and state["applied"] == 1
    assert paper.control("POST", "/outside/renew").json() == {"awaiting": 1}
    paths = paper.control("GET", "/requests").json()["paths"]
    assert paths[f"{ROOT}/order/v1/placeOrder"] == 1 and paths[f"{ROOT}/order/v1/getOrderBook"] == 2
    assert paths["/rest/auth/angelbroking/user/v1/loginByPassword"] == 1


@pytest.mark.parametrize("route, body, field", [
    ("/outside/watch", {"instruments": []}, "instruments"),
    ("/outside/watch", {"instruments": [{"exchange": "NSE"}]}, "instruments[0]"),
    ("/outside/ticks", {"ticks": [["NSE", "3045"]]}, "ticks[0]"),
    ("/outside/ticks", {}, "ticks"),
])
def test_bad_outside_requests_are_named(paper, route, body, field):
    reply = paper.control("POST", route, json=body)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == field


def test_the_outside_routes_are_control_routes_refused_when_tickguard_runs_live(paper_factory):
    paper = paper_factory(control_api=False)
    reply = paper.control("POST", "/outside/ticks", json={"ticks": [["NSE", "3045", 81_250]]})
    assert reply.status_code == 403
