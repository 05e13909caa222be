"""The `cancel_loses` fault: a cancel that loses the race to a fill, whose update reaches the client late."""
from __future__ import annotations

import json

import httpx
import pytest

from paper.errors import OrderError
from paper.faults import Fault
from tests.paper.test_order_updates import order_socket, updates_until
from tests.paper.test_orders import SBIN, desk, desk_factory, modify_params  # noqa: F401 — desk needs desk_factory
from tests.paper.test_stream import login, set_ltp
from tests.support.paper import DEMO

SECURE = "/rest/secure/angelbroking"


def fill_events(desk, orderid: str):
    return [e for e in desk.events if e.row["orderid"] == orderid and e.fill is not None]


@pytest.mark.parametrize(("overrides", "fills_at"), [
    ({"ordertype": "LIMIT", "price": "790"}, "790.00"),
    ({"variety": "STOPLOSS", "ordertype": "STOPLOSS_LIMIT", "triggerprice": "810", "price": "812"}, "812.00"),
    ({"variety": "STOPLOSS", "ordertype": "STOPLOSS_MARKET", "triggerprice": "810"}, "800.00"),
])
def test_the_cancel_is_refused_after_the_rest_fills(desk, overrides, fills_at):
    desk.engine.faults.arm("cancel_loses", update_after_s=0.5)
    order = desk.place(SBIN, quantity="4", **overrides)
    assert order.status in ("open", "trigger pending")
    with pytest.raises(OrderError) as refused:
        desk.engine.cancel(desk.client, order.orderid, order.variety)
    assert refused.value.errorcode == "AB2000" and "is complete and can no longer be cancelled" in refused.value.message
    row = desk.row(order.orderid)
    assert (row["status"], row["filledshares"], row["cancelsize"]) == ("complete", "4", "0")
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == fills_at
    (fill,) = fill_events(desk, order.orderid)
    assert fill.push_after_s == 0.5 and fill.status == "complete"
    assert desk.engine.positions(desk.client)[0]["netqty"] == "4"


def test_only_the_remainder_of_a_partly_filled_order_fills(desk):
    desk.engine.faults.arm("partial", fraction=0.5)
    desk.engine.faults.arm("cancel_loses")
    first = desk.place(SBIN, quantity="10")  # partial: 5 of 10 filled, the rest rests
    second = desk.place(SBIN, ordertype="LIMIT", price="790", quantity="6")
    desk.engine.cancel(desk.client, first.orderid, "NORMAL")
    assert desk.row(first.orderid)["status"] == "cancelled", "the fault was the next order's"
    with pytest.raises(OrderError):
        desk.engine.cancel(desk.client, second.orderid, "NORMAL")
    assert desk.row(second.orderid)["filledshares"] == "6"
    assert desk.engine.positions(desk.client)[0]["netqty"] == "11"


def test_the_fault_stays_with_a_trailed_stop(desk):
    desk.engine.faults.arm("cancel_loses")
    stop = desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_LIMIT",
                      triggerprice="790", price="788", quantity="3")
    desk.engine.modify(desk.client, modify_params(stop, variety="STOPLOSS", triggerprice="795", price="793"))
    with pytest.raises(OrderError):
        desk.engine.cancel(desk.client, stop.orderid, "STOPLOSS")
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == "793.00"


def test_a_finished_order_is_refused_as_before(desk):
    desk.engine.faults.arm("cancel_loses")
    order = desk.place(SBIN)
    assert order.status == "complete"
    with pytest.raises(OrderError):
        desk.engine.cancel(desk.client, order.orderid, "NORMAL")
    assert len(desk.engine.trade_book(desk.client)) == 1


def test_update_after_s_is_checked():
    assert Fault.from_json({"kind": "cancel_loses"}).update_after_s == 0.2
    with pytest.raises(ValueError, match="update_after_s must be a number >= 0"):
        Fault.from_json({"kind": "cancel_loses", "update_after_s": -1})


def test_over_http_the_cancel_reply_comes_before_the_fills_update(paper):
    """Armed through the control API; the update is held 2 s, so "not yet" is checked with a 0.1 s look."""
    tokens = login(paper)
    headers = {"Authorization": f"Bearer {tokens['jwt']}", "X-PrivateKey": DEMO.api_key}
    set_ltp(paper, 800)
    armed = paper.control("POST", "/faults", json={"kind": "cancel_loses", "update_after_s": 2})
    assert armed.status_code == 201 and armed.json()["queued"][0]["kind"] == "cancel_loses"
    with order_socket(paper, {"Authorization": f"Bearer {tokens['jwt']}"}) as ws:
        body = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE",
                "transactiontype": "BUY", "ordertype": "LIMIT", "producttype": "INTRADAY", "duration": "DAY",
                "price": "790", "quantity": "5"}
        orderid = httpx.post(f"{paper.url}{SECURE}/order/v1/placeOrder", json=body, headers=headers,
                             timeout=10).json()["data"]["orderid"]
        updates_until(ws, orderid, "open")
        reply = httpx.post(f"{paper.url}{SECURE}/order/v1/cancelOrder", json={"variety": "NORMAL", "orderid": orderid},
                           headers=headers, timeout=10).json()
        assert (reply["status"], reply["errorcode"]) == (False, "AB2000")
        book = httpx.get(f"{paper.url}{SECURE}/order/v1/getOrderBook", headers=headers, timeout=10).json()["data"]
        assert book[0]["status"] == "complete"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.1)
        late = json.loads(ws.recv(timeout=10))
    assert (late["order-status"], late["orderData"]["orderid"], late["orderData"]["filledshares"]) == \
           ("AB05", orderid, "5")
