"""Partial exits end to end (real app, paper exchange): part of a trade exits as a protected LIMIT, the rest
keeps its entry, history and levels; P&L is realised per part; a stop that fires while a part is working
replaces that part's order by an exit of all that is left — never two orders above the position."""
from __future__ import annotations

from tests.service.test_equity_flow import broker_orders, open_trade
from tests.support.waiting import wait_for


def exits_of(service, trade_id: int) -> list[dict]:
    return [o for o in broker_orders(service) if o["ordertag"].startswith(f"tg{trade_id}X")]


def partly_exited(service, trade_id: int, exited: int, what: str) -> dict:
    return service.wait_trade(trade_id, lambda t: t["exited"] == exited and t["state"] == "OPEN", what=what)


def test_position_size_down_exits_the_difference_and_keeps_the_rest_guarded(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5, position_size=5, id="p5")
    before = service.trade(trade_id)["trade"]
    service.price(805)
    reply = service.alert(position_size=2, price=805, id="p2")
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert body["closing"] == [] and body["trades"] == [] and body["reducing"] == [{"trade": trade_id, "quantity": 3}]
    view = partly_exited(service, trade_id, 3, "three exited")
    trade = view["trade"]
    assert (trade["filled"], trade["open_quantity"], trade["entry_price"]) == (5, 2, before["entry_price"])
    assert trade["stop"] == before["stop"] == before["entry_price"] - 1000  # a price level: not re-sized
    part_value = trade["exit_value"]
    assert trade["realised_pnl"] == part_value - 3 * before["entry_price"]
    (first,) = exits_of(service, trade_id)
    assert (first["transactiontype"], first["quantity"], first["ordertype"]) == ("SELL", "3", "LIMIT")
    kinds = [e["kind"] for e in view["events"]]
    assert "partial_exit_fired" in kinds and kinds.index("partial_exit_fired") < kinds.index("exit_fill")
    done = wait_for(lambda: [e for e in service.trade(trade_id)["events"] if e["kind"] == "partial_exit_done"], "done")
    assert done[0]["data"]["quantity"] == done[0]["data"]["asked"] == 3
    service.price(789)  # the stop, where it was
    closed = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the rest stopped out")["trade"]
    assert closed["exited"] == 5
    assert closed["realised_pnl"] == closed["exit_value"] - 5 * before["entry_price"]
    orders = exits_of(service, trade_id)
    assert sorted((o["ordertag"], o["quantity"]) for o in orders) == [(f"tg{trade_id}X1", "3"), (f"tg{trade_id}X2", "2")]
    fired = [e for e in service.trade(trade_id)["events"] if e["kind"] == "exit_fired"]
    assert [e["data"]["reason"] for e in fired] == ["STOP"]


def test_exit_with_percent_closes_that_share_rounded_down(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    reply = service.alert(signal="exit", percent=50)
    assert reply.status_code == 202 and reply.json()["reducing"] == [{"trade": trade_id, "quantity": 2}]
    trade = partly_exited(service, trade_id, 2, "half (rounded down) exited")["trade"]
    assert trade["open_quantity"] == 3
    events = service.trade(trade_id)["events"]
    fired = next(e for e in events if e["kind"] == "partial_exit_fired")
    assert fired["data"] == {"reason": "SIGNAL", "quantity": 2}


def test_close_only_sell_with_a_quantity_exits_that_many(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    reply = service.alert(signal="sell", quantity=4)
    assert reply.status_code == 202 and reply.json()["reducing"] == [{"trade": trade_id, "quantity": 4}]
    partly_exited(service, trade_id, 4, "four exited")


def test_the_close_route_takes_a_quantity(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    with service.client() as client:
        assert client.post(f"/trades/{trade_id}/close", json={"quantity": 9}).status_code == 422  # more than open
        assert client.post(f"/trades/{trade_id}/close", json={"quantity": 0}).status_code == 422
        assert client.post(f"/trades/{trade_id}/close", json={"size": 1}).status_code == 422
        reply = client.post(f"/trades/{trade_id}/close", json={"quantity": 2})
    assert reply.status_code == 202 and reply.json() == {"trade_id": trade_id, "closing": False, "reducing": 2}
    partly_exited(service, trade_id, 2, "two exited by the operator")
    fired = next(e for e in service.trade(trade_id)["events"] if e["kind"] == "partial_exit_fired")
    assert fired["data"]["reason"] == "MANUAL"
    with service.client() as client:
        assert client.post(f"/trades/{trade_id}/close", json={"quantity": 3}).json()["closing"] is True
    service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the rest closed")


def test_a_stop_while_a_part_is_working_replaces_it_by_an_exit_of_all_that_is_left(service_factory):
    service = service_factory(EXIT_CHASE_MS="60000")  # the part's order rests: no re-pricing fills it
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    service.paper.control("POST", "/faults", json={"kind": "open", "count": 1})
    reply = service.alert(signal="exit", quantity=3)
    assert reply.json()["reducing"] == [{"trade": trade_id, "quantity": 3}]
    working = wait_for(lambda: [o for o in exits_of(service, trade_id) if o["status"] == "open"], "the part resting")
    assert [o["quantity"] for o in working] == ["3"]
    service.price(789)
    closed = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="stopped out")["trade"]
    assert closed["exited"] == 5
    orders = {o["ordertag"]: o for o in exits_of(service, trade_id)}
    assert orders[f"tg{trade_id}X1"]["status"] == "cancelled" and orders[f"tg{trade_id}X1"]["filledshares"] in ("0", 0)
    assert orders[f"tg{trade_id}X2"]["quantity"] == "5" and orders[f"tg{trade_id}X2"]["status"] == "complete"
    assert sum(int(o["filledshares"]) for o in orders.values()) == 5

