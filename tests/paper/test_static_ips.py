"""The static-IP rule at the paper exchange: an order route from another address than the client's
registered one is refused (AB7001), reads never are, and every order request's peer is remembered."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from paper.auth import PaperLogin
from paper.static_ips import STATIC_IP_ERRORCODE
from tests.paper.test_gtt_routes import GTT, create_params
from tests.support.paper import DEMO, OTHER, RunningPaper

SECURE = "/rest/secure/angelbroking"
ORDER = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "transactiontype": "BUY",
         "exchange": "NSE", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY", "quantity": "1"}


@contextlib.contextmanager
def client_from(paper: RunningPaper, address: str, login: PaperLogin = DEMO) -> Iterator[httpx.Client]:
    """A client whose socket is bound to `address`, logged in as `login`."""
    with httpx.Client(base_url=paper.url, timeout=10, headers={"X-PrivateKey": login.api_key},
                      transport=httpx.HTTPTransport(local_address=address)) as client:
        body = {"clientcode": login.clientcode, "password": login.pin, "totp": pyotp.TOTP(login.totp_secret).now()}
        reply = client.post("/rest/auth/angelbroking/user/v1/loginByPassword", json=body).json()
        assert reply["status"], reply
        client.headers["Authorization"] = f"Bearer {reply['data']['jwtToken']}"
        yield client


def place(client: httpx.Client, tag: str) -> dict:
    return client.post(f"{SECURE}/order/v1/placeOrder", json={**ORDER, "ordertag": tag}).json()


def sources(paper: RunningPaper) -> list[dict]:
    reply = paper.control("GET", "/sources")
    assert reply.status_code == 200, reply.text
    return reply.json()["orders"]


@pytest.fixture
def enforcing(paper_factory) -> RunningPaper:
    paper = paper_factory(static_ips={DEMO.clientcode: "127.0.0.2", OTHER.clientcode.lower(): "127.0.0.3"})
    assert paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800}).status_code == 200
    return paper


def test_each_client_orders_from_its_own_address_and_is_seen_to(enforcing):
    with client_from(enforcing, "127.0.0.2") as demo, client_from(enforcing, "127.0.0.3", OTHER) as other:
        assert place(demo, "d1")["status"] is True
        assert place(other, "o1")["status"] is True
    seen = {(row["clientcode"], row["ordertag"]): row for row in sources(enforcing)}
    assert seen[(DEMO.clientcode, "d1")]["peer"] == "127.0.0.2" and not seen[(DEMO.clientcode, "d1")]["refused"]
    assert seen[(OTHER.clientcode, "o1")]["peer"] == "127.0.0.3"


def test_an_order_from_another_clients_address_is_refused_with_a_clear_message(enforcing):
    with client_from(enforcing, "127.0.0.3") as demo:
        reply = place(demo, "d2")
        assert (reply["status"], reply["errorcode"], reply["data"]) == (False, STATIC_IP_ERRORCODE, None)
        assert reply["message"] == ("Order refused by the static-IP rule: client P0001 must send orders from "
                                    "127.0.0.2, this one came from 127.0.0.3")
        assert demo.get(f"{SECURE}/order/v1/getOrderBook").json()["data"] is None  # no order was made
        assert demo.get(f"{SECURE}/user/v1/getRMS").json()["status"] is True  # reads are never refused
    (row,) = [row for row in sources(enforcing) if row["ordertag"] == "d2"]
    assert row["peer"] == "127.0.0.3" and row["refused"] == reply["message"]


@pytest.mark.parametrize("route, body", [
    (f"{SECURE}/order/v1/modifyOrder", {"variety": "NORMAL", "orderid": "1", "ordertype": "LIMIT", "price": "1"}),
    (f"{SECURE}/order/v1/cancelOrder", {"variety": "NORMAL", "orderid": "1"}),
    (f"/gtt-service{GTT}/createRule", create_params()),
    (f"/gtt-service{GTT}/modifyRule", {"id": "1", "symboltoken": "3045", "exchange": "NSE"}),
    (f"{GTT}/cancelRule", {"id": "1", "symboltoken": "3045", "exchange": "NSE"}),
])
def test_every_order_route_keeps_the_rule(enforcing, route, body):
    with client_from(enforcing, "127.0.0.3") as demo:
        reply = demo.post(route, json=body).json()
    assert (reply["status"], reply["errorcode"]) == (False, STATIC_IP_ERRORCODE)
    assert "static-IP rule" in reply["message"]


def test_a_client_without_a_registered_address_cannot_order(paper_factory):
    paper = paper_factory(static_ips={OTHER.clientcode: "127.0.0.3"})
    with client_from(paper, "127.0.0.2") as demo:
        reply = place(demo, "d3")
    assert reply["errorcode"] == STATIC_IP_ERRORCODE
    assert reply["message"] == ("Order refused by the static-IP rule: no static IP is registered for client P0001 "
                                "(this one came from 127.0.0.2)")


def test_without_registrations_nothing_is_refused_and_peers_are_still_seen(paper_factory):
    paper = paper_factory()
    assert paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800}).status_code == 200
    with client_from(paper, "127.0.0.4") as demo:
        assert place(demo, "d4")["status"] is True
    assert [(row["ordertag"], row["peer"], row["refused"]) for row in sources(paper)] == [("d4", "127.0.0.4", "")]
