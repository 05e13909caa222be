"""smart-order-update fidelity: the SDK's SmartWebSocketOrderUpdate, unchanged, sees orders placed over REST."""
from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from paper.order_updates import EMPTY_ORDER, ORDER_STATUS_CODES
from tests.paper.test_stream import feed_state, login, set_ltp, wait_until, ws_url
from tests.support.paper import DEMO, OTHER, RunningPaper

SBIN = {"exchange": "NSE", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045"}


def order(**overrides) -> dict:
    params = {"variety": "NORMAL", **SBIN, "transactiontype": "BUY", "ordertype": "MARKET", "producttype": "INTRADAY",
              "duration": "DAY", "price": "0", "quantity": "10"}
    params.update(overrides)
    return params


@pytest.fixture
def order_update_sdk(smartapi_module, tmp_path, monkeypatch):
    """Start the SDK's order-update client in a thread against a paper exchange."""
    monkeypatch.chdir(tmp_path)  # its constructor writes ./logs
    from SmartApi.smartWebSocketOrderUpdate import SmartWebSocketOrderUpdate

    running: list[tuple[SmartWebSocketOrderUpdate, threading.Thread]] = []

    def start(paper: RunningPaper, jwt: str, feed_token: str) -> queue.Queue:
        monkeypatch.setattr(SmartWebSocketOrderUpdate, "WEBSOCKET_URI", ws_url(paper, "/smart-order-update"))
        client = SmartWebSocketOrderUpdate(f"Bearer {jwt}", DEMO.api_key, DEMO.clientcode, feed_token)
        received: queue.Queue = queue.Queue()
        client.on_message = lambda wsapp, message: received.put(json.loads(message))
        client.on_close = lambda *args: None  # its default sleeps 10 s and reconnects
        thread = threading.Thread(target=client.connect, name="sdk-order-update", daemon=True)
        thread.start()
        running.append((client, thread))
        return received

    yield start
    for client, thread in running:
        client.close_connection()
        thread.join(timeout=10)


def updates_until(received, orderid: str, status: str) -> list[dict]:
    """Messages of `orderid`, in order, up to the first whose orderData.status is `status`."""
    seen: list[dict] = []
    while not seen or seen[-1]["orderData"]["status"] != status:
        message = received.get(timeout=10) if isinstance(received, queue.Queue) else json.loads(received.recv(timeout=10))
        assert message["orderData"]["orderid"] == orderid, message
        seen.append(message)
    return seen


def place(paper: RunningPaper, tokens: dict[str, str], who) -> str:
    reply = httpx.post(f"{paper.url}/rest/secure/angelbroking/order/v1/placeOrder", json=order(), timeout=10,
                       headers={"Authorization": f"Bearer {tokens['jwt']}", "X-PrivateKey": who.api_key})
    return reply.json()["data"]["orderid"]


def codes(messages: list[dict]) -> list[str]:
    return [m["order-status"] for m in messages]


@contextmanager
def order_socket(paper: RunningPaper, headers: dict[str, str]) -> Iterator[ClientConnection]:
    with connect(ws_url(paper, "/smart-order-update"), additional_headers=headers) as ws:
        assert json.loads(ws.recv(timeout=10))["order-status"] == "AB00"
        yield ws


def test_sdk_gets_ab00_then_every_state_of_orders_placed_through_the_sdk(sdk, order_update_sdk):
    received = order_update_sdk(sdk.paper, sdk.access_token, sdk.feed_token)
    hello = received.get(timeout=10)
    assert hello == {"user-id": DEMO.clientcode, "status-code": "200", "order-status": "AB00", "error-message": "",
                     "orderData": EMPTY_ORDER}
    wait_until(lambda: feed_state(sdk.paper)["orders"], what="the order socket to register")

    set_ltp(sdk.paper, 812.30)
    market = sdk.placeOrder(order())
    filled = updates_until(received, market, "complete")
    assert codes(filled) == ["AB09", "AB01", "AB05"]
    assert filled[-1]["orderData"]["filledshares"] == "10" and filled[-1]["orderData"]["averageprice"] == 812.30
    assert all(m["user-id"] == DEMO.clientcode and m["status-code"] == "200" for m in filled)

    resting = sdk.placeOrder(order(ordertype="LIMIT", price="700"))
    assert codes(updates_until(received, resting, "open")) == ["AB09", "AB01"]
    sdk.modifyOrder(order(orderid=resting, ordertype="LIMIT", price="701"))
    modified = updates_until(received, resting, "open")
    assert codes(modified) == ["AB04", "AB01"] and modified[-1]["orderData"]["price"] == 701
    sdk.cancelOrder(resting, "NORMAL")
    assert codes(updates_until(received, resting, "cancelled")) == ["AB02"]

    stop = sdk.placeOrder(order(variety="STOPLOSS", ordertype="STOPLOSS_LIMIT", transactiontype="SELL",
                                price="799", triggerprice="800"))
    assert codes(updates_until(received, stop, "trigger pending")) == ["AB09", "AB10"]

    sdk.paper.control("POST", "/faults", json={"kind": "reject", "text": "Adapter is Logged Off"})
    rejected = updates_until(received, sdk.placeOrder(order()), "rejected")
    assert codes(rejected) == ["AB09", "AB03"] and rejected[-1]["orderData"]["text"] == "Adapter is Logged Off"

    row = next(r for r in sdk.orderBook()["data"] if r["orderid"] == market)
    assert filled[-1]["orderData"] == row


def test_status_codes_cover_every_documented_status():
    documented = {"open": "AB01", "cancelled": "AB02", "rejected": "AB03", "modified": "AB04", "complete": "AB05",
                  "after market order req received": "AB06", "cancelled after market order": "AB07",
                  "modify after market order req received": "AB08", "open pending": "AB09",
                  "trigger pending": "AB10", "modify pending": "AB11"}
    assert {status: ORDER_STATUS_CODES[status] for status in documented} == documented


def test_updates_go_only_to_the_orders_client(paper):
    mine, theirs = login(paper), login(paper, OTHER)
    with order_socket(paper, {"Authorization": f"Bearer {theirs['jwt']}"}) as other, \
            order_socket(paper, {"Authorization": f"Bearer {mine['jwt']}"}) as own:
        demo_order = place(paper, mine, DEMO)
        other_order = place(paper, theirs, OTHER)
        assert codes(updates_until(own, demo_order, "complete"))[-1] == "AB05"
        first_for_other = json.loads(other.recv(timeout=10))
        assert first_for_other["orderData"]["orderid"] == other_order
        assert first_for_other["user-id"] == OTHER.clientcode


def test_the_documented_bearer_only_header_and_heartbeats_work(paper):
    tokens = login(paper)
    with order_socket(paper, {"Authorization": f"Bearer {tokens['jwt']}"}) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "pong"
        assert ws.ping(b"hb").wait(timeout=10)


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", None])
def test_an_invalid_token_is_refused_with_401(paper, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(paper, "/smart-order-update"), additional_headers=headers).close()
    assert refused.value.response.status_code == 401


def test_an_expired_token_is_refused_with_403(paper):
    tokens = login(paper)
    assert paper.control("POST", "/sessions/expire", json={}).status_code == 200
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(paper, "/smart-order-update"), additional_headers={"Authorization": tokens["jwt"]}).close()
    assert refused.value.response.status_code == 403


def test_a_fourth_connection_of_a_client_is_refused_with_429(paper):
    headers = {"Authorization": f"Bearer {login(paper)['jwt']}", "x-api-key": DEMO.api_key, "x-client-code": DEMO.clientcode}
    with order_socket(paper, headers), order_socket(paper, headers), order_socket(paper, headers):
        wait_until(lambda: len(feed_state(paper)["orders"]) == 3, what="three order sockets")
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(paper, "/smart-order-update"), additional_headers=headers).close()
        assert refused.value.response.status_code == 429
