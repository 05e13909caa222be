"""The /paper/v1 control API, driven over HTTP as tests and demos use it."""
from __future__ import annotations

import time

import httpx
import pytest

from tests.paper.conftest import DEMO
from tests.support.waiting import wait_for

ROOT = "/rest/secure/angelbroking"


@pytest.fixture
def client(paper):
    headers = {"X-PrivateKey": DEMO.api_key, "Content-Type": "application/json"}
    body = {"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": paper.totp()}
    with httpx.Client(base_url=paper.url, headers=headers, timeout=10) as client:
        data = client.post("/rest/auth/angelbroking/user/v1/loginByPassword", json=body).json()["data"]
        client.headers["Authorization"] = f"Bearer {data['jwtToken']}"
        yield client


def ltp(client, token: str = "3045", exchange: str = "NSE") -> float:
    body = {"exchange": exchange, "tradingsymbol": "", "symboltoken": token}
    return client.post(f"{ROOT}/order/v1/getLtpData", json=body).json()["data"]["ltp"]


def place(client, timeout: float = 10, **overrides) -> httpx.Response:
    params = {
        "variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE",
        "transactiontype": "BUY", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY",
        "price": "0", "quantity": "10",
    }
    params.update(overrides)
    return client.post(f"{ROOT}/order/v1/placeOrder", json=params, timeout=timeout)


def book(client) -> list[dict]:
    return client.get(f"{ROOT}/order/v1/getOrderBook").json()["data"] or []


def test_ticks_set_prices_at_once(paper, client):
    reply = paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 812.5})
    assert reply.status_code == 200 and reply.json()["applied"] == 1
    assert ltp(client) == 812.5
    reply = paper.control("POST", "/ticks", json={"ticks": [
        {"exchange": "NSE", "token": "3045", "ltp": 813}, {"exchange": "NSE", "token": "2885", "ltp": 1401.05},
    ]})
    assert reply.json()["applied"] == 2
    assert (ltp(client), ltp(client, "2885")) == (813.0, 1401.05)


def test_moving_an_index_reprices_its_options(paper, client):
    option = next(i for i in paper.exchange.universe.derivatives_of("NSE", "99926000") if i.option_type == "CE")
    before = ltp(client, option.token, "NFO")
    spot = paper.exchange.prices.ltp("NSE", "99926000") / 100
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "99926000", "ltp": round(spot + 300, 2)})
    assert ltp(client, option.token, "NFO") > before


@pytest.mark.parametrize("body, field, status", [
    ({"exchange": "NSE", "token": "3045", "ltp": -1}, "ltp", 422),
    ({"exchange": "NSE", "token": "3045", "ltp": "800"}, "ltp", 422),
    ({"exchange": "NSE", "token": "3045", "ltp": 800.03}, "ltp", 422),
    ({"exchange": "NSE", "token": "42424242", "ltp": 800}, "token", 404),
    ({"exchange": "NSE", "ltp": 800}, "token", 422),
    ({"ticks": []}, "ticks", 422),
])
def test_bad_ticks_name_the_field(paper, body, field, status):
    reply = paper.control("POST", "/ticks", json=body)
    assert reply.status_code == status
    assert reply.json()["errors"][0]["field"].endswith(field)


def test_a_path_plays_out_over_time_including_a_gap(paper, client):
    reply = paper.control("POST", "/paths", json={
        "exchange": "NSE", "token": "3045", "points": [800, 799.5, 760, 761], "interval_ms": 20,
    })
    assert reply.status_code == 201
    deadline = time.monotonic() + 10
    while paper.control("GET", "/paths").json()["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ltp(client) == 761.0
    low = paper.exchange.prices.quote("NSE", "3045").low
    assert low <= 76000


def test_a_running_path_can_be_stopped(paper):
    reply = paper.control("POST", "/paths", json={"exchange": "NSE", "token": "3045", "points": [800, 801], "interval_ms": 1000, "repeat": 100})
    path_id = reply.json()["path_id"]
    assert paper.control("DELETE", f"/paths/{path_id}").status_code == 200
    assert paper.control("GET", "/paths").json()["running"] == []
    assert paper.control("DELETE", f"/paths/{path_id}").status_code == 404


def test_reject_fault_turns_the_next_order_rejected_after_acceptance(paper, client):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    assert paper.control("POST", "/faults", json={"kind": "reject", "count": 1, "text": "RMS: blocked"}).status_code == 201
    first = place(client).json()
    assert first["status"] is True
    second = place(client).json()
    rows = {r["orderid"]: r for r in book(client)}
    assert rows[first["data"]["orderid"]]["status"] == "rejected"
    assert rows[first["data"]["orderid"]]["text"] == "RMS: blocked"
    assert rows[second["data"]["orderid"]]["status"] == "complete"


def test_open_fault_leaves_the_order_open_until_modified(paper, client):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    paper.control("POST", "/faults", json={"kind": "open", "count": 1})
    orderid = place(client, ordertype="LIMIT", price="801").json()["data"]["orderid"]
    assert book(client)[0]["status"] == "open"
    client.post(f"{ROOT}/order/v1/modifyOrder", json={
        "variety": "NORMAL", "orderid": orderid, "ordertype": "LIMIT", "producttype": "INTRADAY",
        "duration": "DAY", "price": "802", "quantity": "10", "tradingsymbol": "SBIN-EQ",
        "symboltoken": "3045", "exchange": "NSE",
    })
    assert book(client)[0]["status"] == "complete"


def test_partial_fault_fills_a_fraction(paper, client):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    paper.control("POST", "/faults", json={"kind": "partial", "count": 1, "fraction": 0.4})
    place(client)
    row = book(client)[0]
    assert row["status"] == "open"
    assert (row["filledshares"], row["unfilledshares"]) == ("4", "6")


def test_error5xx_fault_answers_5xx_and_places_only_when_asked(paper, client):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    paper.control("POST", "/faults", json={"kind": "error5xx", "count": 1, "placed": False})
    reply = place(client)
    assert reply.status_code >= 500 and reply.json()["message"]
    assert book(client) == []
    paper.control("POST", "/faults", json={"kind": "error5xx", "count": 1, "placed": True})
    assert place(client).status_code >= 500
    assert len(book(client)) == 1


def test_timeout_fault_places_the_order_but_answers_late(paper, client):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    paper.control("POST", "/faults", json={"kind": "timeout", "count": 1, "seconds": 2})
    with pytest.raises(httpx.ReadTimeout):
        place(client, timeout=0.5, ordertag="tgT1")
    # the order exists and can be found again by its tag
    assert [r["ordertag"] for r in book(client)] == ["tgT1"]


def test_bad_fault_kinds_are_refused_and_faults_clear(paper):
    assert paper.control("POST", "/faults", json={"kind": "explode"}).status_code == 422
    paper.control("POST", "/faults", json={"kind": "reject", "count": 3})
    assert len(paper.control("GET", "/state").json()["faults"]) == 1
    paper.control("DELETE", "/faults")
    assert paper.control("GET", "/state").json()["faults"] == []


def test_reset_forgets_orders(paper, client):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    place(client)
    assert paper.control("POST", "/reset").status_code == 200
    assert book(client) == []


def positions(client) -> dict[tuple[str, str], int]:
    rows = client.get(f"{ROOT}/order/v1/getPosition").json()["data"] or []
    return {(r["symboltoken"], r["producttype"]): int(r["netqty"]) for r in rows}


def test_square_off_closes_intraday_positions_as_the_broker_does(paper, client):
    paper.control("POST", "/ticks", json={"ticks": [{"exchange": "NSE", "token": "3045", "ltp": 800},
                                                    {"exchange": "NSE", "token": "2885", "ltp": 1400}]})
    place(client, quantity="10")
    place(client, quantity="4", transactiontype="SELL", symboltoken="2885", tradingsymbol="RELIANCE-EQ")
    place(client, quantity="3", producttype="DELIVERY")
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 790})
    reply = paper.control("POST", "/square_off", json={"token": "3045"})
    assert reply.status_code == 200
    (order,) = reply.json()["orders"]
    assert (order["token"], order["quantity"], order["status"]) == ("3045", 10, "complete")
    assert positions(client) == {("3045", "INTRADAY"): 0, ("2885", "INTRADAY"): -4, ("3045", "DELIVERY"): 3}
    squared = next(o for o in book(client) if o["orderid"] == order["orderid"])
    assert squared["ordertag"] == "" and squared["transactiontype"] == "SELL"
    fills = client.get(f"{ROOT}/order/v1/getTradeBook").json()["data"]
    assert [(f["fillprice"], f["fillsize"]) for f in fills if f["orderid"] == order["orderid"]] == [("790.00", "10")]
    assert paper.control("POST", "/square_off", json={}).json()["orders"][0]["token"] == "2885"
    assert positions(client)[("2885", "INTRADAY")] == 0


@pytest.mark.parametrize(("body", "field", "status"), [({"side": "BUY"}, "side", 422),
                                                       ({"clientcode": "NOPE"}, "clientcode", 404)])
def test_bad_square_offs_are_refused(paper, body, field, status):
    reply = paper.control("POST", "/square_off", json=body)
    assert reply.status_code == status and reply.json()["errors"][0]["field"] == field


def test_control_api_is_refused_in_live_mode(paper_factory):
    live = paper_factory(control_api=False)
    for method, path in (("POST", "/ticks"), ("POST", "/faults"), ("POST", "/reset"), ("GET", "/state")):
        reply = live.control(method, path, json={})
        assert reply.status_code == 403
        assert "live" in reply.json()["errors"][0]["reason"]


def search(client, text: str = "SBIN", timeout: float = 10) -> httpx.Response:
    return client.post(f"{ROOT}/order/v1/searchScrip", json={"exchange": "NSE", "searchscrip": text}, timeout=timeout)


def held(paper) -> dict[str, int]:
    return paper.control("GET", "/state").json()["holds"]


def test_a_held_route_answers_only_once_released(paper, client):
    from concurrent.futures import ThreadPoolExecutor

    assert paper.control("POST", "/holds", json={"route": "searchScrip"}).status_code == 201
    with ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(search, client), pool.submit(search, client, "TRENT")]
        wait_for(lambda: held(paper) == {"searchScrip": 2}, "two searches held")
        assert not any(reply.done() for reply in waiting)
        assert ltp(client) > 0  # other routes answer meanwhile
        released = paper.control("DELETE", "/holds", json={"route": "searchScrip"}).json()
        assert released == {"released": ["searchScrip"], "held": {}}
        replies = [reply.result(timeout=10) for reply in waiting]
    assert [r.json()["data"][0]["tradingsymbol"] for r in replies] == ["SBIN-EQ", "TRENT-EQ"]
    assert search(client).json()["data"][0]["symboltoken"] == "3045"  # no longer held


def test_a_held_request_whose_client_gives_up_is_dropped(paper, client):
    paper.control("POST", "/holds", json={"route": "searchScrip"})
    with pytest.raises(httpx.ReadTimeout):
        search(client, timeout=0.5)
    wait_for(lambda: held(paper) == {"searchScrip": 0}, "the abandoned search dropped")
    assert paper.control("POST", "/reset").status_code == 200  # a reset releases every hold
    assert held(paper) == {} and search(client).status_code == 200


@pytest.mark.parametrize("body, field", [({"route": "placeorder"}, "route"), ({}, "route"),
                                         ({"route": "searchScrip", "seconds": 3}, "seconds")])
def test_bad_holds_are_refused(paper, body, field):
    reply = paper.control("POST", "/holds", json=body)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == field
    assert held(paper) == {}
