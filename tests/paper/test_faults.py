from __future__ import annotations

import pytest

from paper.errors import OrderError
from paper.faults import DEFAULT_REJECT_TEXT, Fault, FaultPlan
from tests.paper.test_orders import NIFTY_CE, SBIN, desk, desk_factory, modify_params  # noqa: F401 — desk needs desk_factory

# The plan -----------------------------------------------------------------------------------------------


def test_order_and_transport_faults_are_taken_independently_in_arming_order():
    plan = FaultPlan()
    plan.arm("reject", 2, text="Adapter is Logged Off")
    plan.arm("open")
    plan.arm("timeout", seconds=3)
    assert [f["remaining"] for f in plan.pending()] == [2, 1, 1]
    assert plan.take_transport() == Fault("timeout", seconds=3)
    assert plan.take_transport() is None
    assert [plan.take_order().kind for _ in range(3)] == ["reject", "reject", "open"]
    assert plan.take_order() is None and plan.pending() == []


def test_clear_forgets_everything_armed():
    plan = FaultPlan()
    plan.add(Fault("partial", 5, fraction=0.25))
    plan.add(Fault("error5xx", placed=True, status=503))
    plan.clear()
    assert plan.pending() == [] and plan.take_order() is None and plan.take_transport() is None


def test_faults_from_the_control_api_body():
    fault = Fault.from_json({"kind": "error5xx", "count": 3, "placed": True, "status": 502})
    assert (fault.kind, fault.count, fault.placed, fault.status) == ("error5xx", 3, True, 502)
    assert Fault.from_json({"kind": "reject"}).text == DEFAULT_REJECT_TEXT


@pytest.mark.parametrize(("body", "problem"), [
    ({"kind": "explode"}, "unknown fault kind 'explode'"),
    ({"kind": "reject", "count": 0}, "count must be a whole number >= 1, got 0"),
    ({"kind": "reject", "count": True}, "count must be a whole number >= 1, got True"),
    ({"kind": "reject", "text": " "}, "text must be a non-empty string"),
    ({"kind": "partial", "fraction": 1}, "fraction must be between 0 and 1 (exclusive), got 1"),
    ({"kind": "timeout", "seconds": -1}, "seconds must be a number >= 0, got -1"),
    ({"kind": "error5xx", "status": 404}, "status must be an HTTP status 500..599, got 404"),
    ({"kind": "error5xx", "placed": "yes"}, "placed must be true or false, got 'yes'"),
    ({"kind": "reject", "why": "x"}, "unknown fault field(s): why"),
])
def test_malformed_faults_are_refused_precisely(body, problem):
    with pytest.raises(ValueError) as refused:
        Fault.from_json(body)
    assert str(refused.value).startswith(problem)


# The engine applies the order faults ---------------------------------------------------------------------


def test_reject_fault_rejects_with_its_text_and_is_used_up(desk):
    desk.engine.faults.arm("reject", text="Adapter is Logged Off")
    rejected = desk.place(SBIN)
    assert rejected.status == "rejected" and desk.row(rejected.orderid)["text"] == "Adapter is Logged Off"
    assert desk.statuses(rejected.orderid) == ["open pending", "rejected"]
    assert desk.place(SBIN).status == "complete"


def test_a_refused_request_does_not_use_up_a_fault(desk):
    desk.engine.faults.arm("reject")
    with pytest.raises(OrderError):
        desk.place(SBIN, quantity="0")
    assert desk.place(SBIN).status == "rejected"


def test_real_rms_reasons_win_over_a_reject_fault(desk):
    desk.engine.faults.arm("reject", text="fault text")
    order = desk.place(NIFTY_CE, quantity="10")
    assert desk.row(order.orderid)["text"].startswith("Your order has been rejected as the quantity 10")


def test_partial_market_fills_a_fraction_and_the_rest_waits_for_a_modify(desk):
    desk.engine.faults.arm("partial", fraction=0.4)
    order = desk.place(SBIN, quantity="10")
    row = desk.row(order.orderid)
    assert (row["status"], row["filledshares"], row["unfilledshares"], row["averageprice"]) == ("open", "4", "6", 800.0)
    desk.move(SBIN, 81_000)
    assert desk.row(order.orderid)["filledshares"] == "4"
    desk.engine.modify(desk.client, modify_params(order))
    row = desk.row(order.orderid)
    assert (row["status"], row["filledshares"], row["averageprice"]) == ("complete", "10", 806.0)
    assert [t["fillsize"] for t in desk.engine.trade_book(desk.client)] == ["4", "6"]


def test_partial_limit_rounds_down_to_lots_and_the_rest_rests_at_its_limit(desk):
    desk.engine.faults.arm("partial", fraction=0.5)
    order = desk.place(NIFTY_CE, ordertype="LIMIT", price="121", quantity="225")
    assert (desk.row(order.orderid)["status"], desk.row(order.orderid)["filledshares"]) == ("open", "75")
    desk.move(NIFTY_CE, 12_200)
    assert desk.row(order.orderid)["filledshares"] == "75"
    desk.move(NIFTY_CE, 12_050)
    fills = desk.engine.trade_book(desk.client)
    assert [(t["fillsize"], t["fillprice"]) for t in fills] == [("75", "120.00"), ("150", "121.00")]
    assert desk.row(order.orderid)["status"] == "complete"


def test_partial_ioc_cancels_the_remainder(desk):
    desk.engine.faults.arm("partial", fraction=0.5)
    order = desk.place(SBIN, duration="IOC", quantity="9")
    row = desk.row(order.orderid)
    assert (row["status"], row["filledshares"], row["cancelsize"]) == ("cancelled", "4", "5")


def test_a_partially_filled_order_cancelled_keeps_its_fills(desk):
    desk.engine.faults.arm("partial", fraction=0.5)
    order = desk.place(SBIN, quantity="10")
    desk.engine.cancel(desk.client, order.orderid, "NORMAL")
    row = desk.row(order.orderid)
    assert (row["status"], row["filledshares"], row["cancelsize"]) == ("cancelled", "5", "5")
    assert desk.engine.positions(desk.client)[0]["netqty"] == "5"


def test_open_fault_rests_even_when_marketable_until_modified(desk):
    desk.engine.faults.arm("open")
    order = desk.place(SBIN, quantity="3")
    assert order.status == "open"
    desk.move(SBIN, 79_000)
    assert desk.row(order.orderid)["status"] == "open" and desk.engine.trade_book(desk.client) == []
    assert desk.rms()["utiliseddebits"] == "474.0000"  # the market order blocks 20 % of 3 × 790.00
    desk.engine.modify(desk.client, modify_params(order))
    assert desk.row(order.orderid)["status"] == "complete"
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == "790.00"


def test_transport_faults_are_left_for_the_http_layer(desk):
    desk.engine.faults.arm("error5xx", placed=True)
    desk.engine.faults.arm("timeout", seconds=9)
    assert desk.place(SBIN).status == "complete"
    assert [f["kind"] for f in desk.engine.faults.pending()] == ["error5xx", "timeout"]
    first = desk.engine.faults.take_transport()
    assert (first.kind, first.placed, first.status) == ("error5xx", True, 500)
    assert desk.engine.faults.take_transport().seconds == 9
