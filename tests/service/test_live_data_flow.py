"""Paper trading on live market data, end to end: a second paper exchange plays the live broker (its own
port and login); tickguard runs in paper mode with MARKET_DATA=live pointing at it. The guard, the price
check and the fills follow the "live" exchange's prices, every order goes to the order paper exchange,
and no request of the order family ever reaches the market-data root."""
from __future__ import annotations

import httpx
import pytest

from paper.auth import PaperLogin
from service.broker.smartapi.adapter import MASTER_PATH
from service.broker.smartapi.rest import MARKET_DATA_ROUTES, ROUTES
from tests.service.test_startup_cli import base_env, read_banner, start_serve  # noqa: F401 (fixtures)
from tests.support.paper import DEMO
from tests.support.service import HEADERS
from tests.support.waiting import wait_for

MD = PaperLogin("L0001", "5678", "live-data-key", "LIVEDATALOGINTOTPSECRETABCDEFGHI")
ROOT = "/rest/secure/angelbroking"
SBIN = "3045"
MARKET_DATA_PATHS = {ROUTES[name][1] for name in MARKET_DATA_ROUTES} | {MASTER_PATH, "/smart-stream"}
# Everything that is not login or market data: orders, GTT rules (with and without the SDK's prefix), the
# account's books and margins, position conversion, the order-update socket.
ORDER_FAMILY_PATHS = ({ROUTES[name][1] for name in set(ROUTES) - MARKET_DATA_ROUTES}
                      | {ROUTES[name][1].removeprefix("/gtt-service") for name in ("gttCreateRule", "gttModifyRule",
                                                                                  "gttCancelRule")}
                      | {f"{ROOT}/order/v1/convertPosition", "/smart-order-update"})


@pytest.fixture
def live_data(paper_factory, service_factory, tmp_path):
    """start(own_price, **env) -> (service, the "live" exchange, the order exchange, restart): the order
    exchange's own SBIN price set far from the live one; `restart()` starts tickguard again on its store."""

    def start(own_price: float = 700, **env: str):
        live = paper_factory(logins=(MD,), db_path=tmp_path / "live.db")
        orders = paper_factory(db_path=tmp_path / "orders.db")
        set_price(live, 812.5)
        set_price(orders, own_price)  # the order exchange's own price: a fill here would be a fake one
        settings = dict(MARKET_DATA="live", MARKET_DATA_USER=MD.clientcode, MARKET_DATA_PASS=MD.pin,
                        MARKET_DATA_KEY=MD.api_key, MARKET_DATA_TOTP_SECRET=MD.totp_secret, MARKET_DATA_ROOT=live.url,
                        **env)
        service = service_factory(orders, **settings)
        return service, live, orders, lambda: service_factory(orders, **settings)

    return start


def set_price(exchange, ltp: float) -> None:
    reply = exchange.control("POST", "/ticks", json={"exchange": "NSE", "token": SBIN, "ltp": ltp})
    assert reply.status_code == 200, reply.text


def order_book(exchange, login: PaperLogin = DEMO) -> list[dict]:
    headers = {"X-PrivateKey": login.api_key}
    body = {"clientcode": login.clientcode, "password": login.pin, "totp": exchange.totp(login)}
    jwt = httpx.post(f"{exchange.url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body,
                     headers=headers).json()["data"]["jwtToken"]
    reply = httpx.get(f"{exchange.url}{ROOT}/order/v1/getOrderBook", headers={**headers, "Authorization": f"Bearer {jwt}"})
    return reply.json()["data"] or []


def served(exchange) -> dict[str, int]:
    """The SmartAPI requests (REST and sockets) an exchange was sent, by path: the test's own control
    requests left out."""
    reply = exchange.control("GET", "/requests")
    assert reply.status_code == 200, reply.text
    return {path: n for path, n in reply.json()["paths"].items() if not path.startswith("/paper/v1")}


def sent_to(paths: dict[str, int], route: str) -> int:
    return sum(n for path, n in paths.items() if path.startswith(ROUTES[route][1]))


def open_trade(service, price: float, **alert) -> int:
    reply = service.alert(price=price, **alert)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="entry fill and arming")
    return trade_id


def test_entries_and_stop_exits_fill_at_the_live_exchanges_prices(live_data):
    service, live, orders, _ = live_data()
    trade_id = open_trade(service, 812.5, stoploss={"type": "points", "value": 10}, quantity=5)
    trade = service.trade(trade_id)["trade"]
    assert (trade["entry_price"], trade["stop"], trade["filled"]) == (81250, 80250, 5)
    # The order exchange now trades SBIN at the live price alone: its walk is off, its own price is gone.
    state = orders.control("GET", "/outside").json()
    assert f"NSE:{SBIN}" in state["held"] and state["awaiting"] == []
    assert orders.control("GET", "/prices", params={"token": SBIN}).json()["ltp"] == 812.5

    set_price(orders, 650)  # the order exchange's own price far below the stop: not a live price, no exit
    set_price(orders, 812.5)
    set_price(live, 805)  # a live move above the stop: guarded, nothing fires
    wait_for(lambda: orders.control("GET", "/prices", params={"token": SBIN}).json()["ltp"] == 805,
             what="the live move relayed to the order exchange")
    assert service.trade(trade_id)["trade"]["state"] == "OPEN"
    set_price(live, 801)  # through the stop on the live feed
    closed = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="stop exit at the live price")
    trade = closed["trade"]
    fired = next(e for e in closed["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "STOP" and trade["exit_price"] == 80100
    assert trade["realised_pnl"] == (80100 - 81250) * 5

    book = {o["ordertag"]: o for o in order_book(orders)}
    entry, exit_ = book[f"tg{trade_id}E1"], book[f"tg{trade_id}X1"]
    assert (entry["status"], float(entry["averageprice"]), entry["transactiontype"]) == ("complete", 812.5, "BUY")
    assert (exit_["status"], float(exit_["averageprice"]), exit_["transactiontype"]) == ("complete", 801.0, "SELL")
    assert order_book(live, MD) == []  # the market-data login has no order at its broker


def test_no_order_family_request_ever_reaches_the_market_data_root(live_data):
    service, live, orders, _ = live_data(BROKER_STOP="backup")  # broker stops: stop orders placed and cancelled too
    stopped = open_trade(service, 812.5, stoploss={"type": "points", "value": 10}, quantity=2)
    closed = open_trade(service, 812.5, stoploss={"type": "points", "value": 10}, quantity=1, id="second")
    with service.client() as client:
        assert client.post(f"/trades/{closed}/close").status_code == 202
    service.wait_trade(closed, lambda t: t["state"] == "CLOSED", what="manual close")
    set_price(live, 790)
    service.wait_trade(stopped, lambda t: t["state"] == "CLOSED", what="stop exit")

    at_orders = served(orders)
    for route in ("placeOrder", "cancelOrder", "getOrderBook"):  # the record sees order routes where they do go
        assert sent_to(at_orders, route) > 0, at_orders
    assert at_orders.get("/smart-order-update") and at_orders.get("/smart-stream") is None, at_orders
    at_live = served(live)
    assert [path for path in at_live if path in ORDER_FAMILY_PATHS or path.startswith(ROUTES["details"][1])] == []
    assert set(at_live) <= MARKET_DATA_PATHS, at_live  # nothing but login and market data, known routes or not
    for route in ("loginByPassword", "getLtpData"):  # the price check asked the live market (no tick guarded yet)
        assert sent_to(at_live, route) > 0, at_live
    assert at_live.get("/smart-stream") and at_live.get(MASTER_PATH), at_live


def test_after_a_restart_recovery_reads_live_candles_and_exits_at_a_fresh_live_price(live_data):
    service, live, orders, restart = live_data(own_price=900)  # the order exchange's own prices never dip
    trade_id = open_trade(service, 812.5, stoploss={"type": "points", "value": 10}, quantity=2)
    service.stop()
    set_price(live, 795)  # through the stop while tickguard is down, and back: only the live candles show it
    set_price(live, 806)
    live.control("POST", "/feed/stall")  # and then no tick comes: the exit must wait for one
    again = restart()
    wait_for(lambda: [o for o in order_book(orders) if o["ordertag"] == f"tg{trade_id}X1" and o["status"] == "open pending"],
             what="the exit waiting at the exchange for a live price of this run")
    live.control("POST", "/feed/resume")
    set_price(live, 806.5)
    closed = again.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the exit recovery fired")
    fired = next(e for e in closed["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "STOP"
    assert closed["trade"]["exit_price"] == 80650  # the live price, not the 812.50 the exchange was left at


def test_the_price_check_reads_the_live_market(live_data):
    service, live, orders, _ = live_data()
    refused = service.alert(price=700, quantity=1)  # the order exchange's own price, 13.8 % below the live one
    assert refused.status_code == 422, refused.text
    assert "812.50" in refused.json()["errors"][0]["reason"]
    assert service.trade_count_in_store() == (0, 0)


def test_tickguard_serve_relays_live_prices_in_process_to_the_paper_exchange_beside_it(paper_factory, tmp_path,
                                                                                         base_env, processes):
    """`tickguard serve` without PAPER_URL: the embedded paper exchange takes the live prices by a call on
    its own loop, not over HTTP; the banner says where market data and orders go."""
    live = paper_factory(logins=(MD,), db_path=tmp_path / "live.db")
    set_price(live, 812.5)
    env = {**base_env, "MARKET_DATA": "live", "MARKET_DATA_USER": MD.clientcode, "MARKET_DATA_PASS": MD.pin,
           "MARKET_DATA_KEY": MD.api_key, "MARKET_DATA_TOTP_SECRET": MD.totp_secret, "MARKET_DATA_ROOT": live.url}
    proc, url = start_serve(env, processes)
    banner = read_banner(proc)
    assert banner["market data"].startswith(f"live: {MD.clientcode} at {live.url}")
    assert banner["mode"] == "paper on live market data (orders to the paper exchange)"
    alert = {"symbolname": "SBIN", "signal": "buy", "price": 812.5, "type": "equity", "strategyname": "s1",
             "quantity": 2, "stoploss": {"type": "points", "value": 10}}
    reply = httpx.post(f"{url}/opentrade", json=alert, headers=HEADERS, timeout=10)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]

    def trade() -> dict:
        return httpx.get(f"{url}/trades/{trade_id}", headers=HEADERS, timeout=5).json()["trade"]

    wait_for(lambda: trade()["stop"], "the entry to fill and arm")
    assert trade()["entry_price"] == 81250
    set_price(live, 801)
    closed = wait_for(lambda: (t := trade())["state"] == "CLOSED" and t, "the stop exit")
    assert closed["exit_price"] == 80100
    at_live = served(live)
    assert set(at_live) <= MARKET_DATA_PATHS and at_live.get("/smart-stream"), at_live
    beside = httpx.get(banner["paper control API"] + "requests", timeout=5).json()["paths"]
    assert beside[f"{ROOT}/order/v1/placeOrder"] == 2  # the orders went to the exchange beside the service,
    assert not [path for path in beside if path.startswith("/paper/v1/outside")]  # the prices by no request
