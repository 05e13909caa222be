"""Positions that may never be short: a cash equity outside INTRADAY, and an option contract named in the
alert (tickguard never writes options). The closing leg still happens; the opening short leg is refused
in the reply, or with a 422 naming the field when nothing else would happen."""
from __future__ import annotations

import json

import pytest

from tests.service.test_equity_flow import open_trade
from tests.service.test_option_flow import nifty, option_alert, wait_open


def strategies(tmp_path, policy: str) -> str:
    path = tmp_path / f"strategies-{policy}.json"
    path.write_text(json.dumps({"s1": {"policy": policy}, "opt": {"policy": policy}}))
    return str(path)


def trades_of(service) -> list[dict]:
    with service.client() as client:
        return client.get("/trades").json()["trades"]


@pytest.mark.parametrize("policy", ["reverse", "open_new"])
def test_a_delivery_sell_with_nothing_to_close_is_refused_naming_product(service_factory, tmp_path, policy):
    service = service_factory(STRATEGIES_FILE=strategies(tmp_path, policy))
    service.price(800)
    reply = service.alert(signal="sell", product="DELIVERY", quantity=2)
    assert reply.status_code == 422, reply.text
    (error,) = reply.json()["errors"]
    assert error["field"] == "product" and "INTRADAY" in error["reason"]
    assert trades_of(service) == [] and service.trade_count_in_store() == (0, 0)


def test_a_reversing_delivery_sell_closes_the_long_and_refuses_the_short(service_factory, tmp_path):
    service = service_factory(STRATEGIES_FILE=strategies(tmp_path, "reverse"))
    long_id = open_trade(service, product="DELIVERY", quantity=3, stoploss={"type": "points", "value": 10})
    reply = service.alert(signal="sell", product="DELIVERY", price=801)
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert body["closing"] == [long_id] and body["trades"] == []
    (refused,) = body["refused"]
    assert refused["leg"] == "open_short" and "INTRADAY" in refused["reason"]
    service.wait_trade(long_id, lambda t: t["state"] == "CLOSED", what="the long closed")
    assert [t["id"] for t in trades_of(service)] == [long_id]


def test_position_size_below_zero_in_delivery_refuses_the_short_leg(service_factory):
    service = service_factory()
    long_id = open_trade(service, product="DELIVERY", quantity=3, stoploss={"type": "points", "value": 10})
    reply = service.alert(position_size=-2, product="DELIVERY", id="flip-1")
    assert reply.status_code == 202, reply.text
    assert reply.json()["closing"] == [long_id] and reply.json()["trades"] == []
    assert reply.json()["refused"][0]["leg"] == "open_short"
    service.wait_trade(long_id, lambda t: t["state"] == "CLOSED", what="the long closed")
    reply = service.alert(position_size=-2, product="DELIVERY", id="flip-2")
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "product"


def test_chartink_short_in_delivery_is_refused_and_intraday_shorts_still_open(service_factory):
    service = service_factory()
    service.price(800)
    refused = service.alert(signal="short", product="DELIVERY", quantity=2)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "product"
    short_id = open_trade(service, signal="short", quantity=2, stoploss={"type": "points", "value": 10})
    assert service.trade(short_id)["trade"]["side"] == "SHORT"


def named_call(service) -> tuple[int, str]:
    nifty(service, 24000)
    (call_id,) = option_alert(service, stoploss={"type": "points", "value": 30})["trades"]
    return call_id, wait_open(service, call_id)["tradingsymbol"]


@pytest.mark.parametrize("policy", ["close_only", "reverse", "open_new"])
def test_sell_on_a_named_contract_closes_the_long_and_buys_nothing(service_factory, tmp_path, policy):
    service = service_factory(STRATEGIES_FILE=strategies(tmp_path, policy))
    call_id, contract = named_call(service)
    reply = service.alert(symbolname=contract, signal="sell", price=24000, type="option", strategyname="opt", lots=2)
    assert reply.status_code == 202, reply.text
    assert reply.json()["closing"] == [call_id] and reply.json()["trades"] == []
    service.wait_trade(call_id, lambda t: t["state"] == "CLOSED", what="the contract sold")
    assert [t["id"] for t in trades_of(service)] == [call_id]


@pytest.mark.parametrize("body", [{"signal": "sell"}, {"signal": "short"}, {"signal": "buy", "position_size": -1},
                                  {"signal": "sell", "position_size": -2}])
def test_opening_a_short_on_a_named_contract_is_refused(service_factory, tmp_path, body):
    service = service_factory(STRATEGIES_FILE=strategies(tmp_path, "reverse"))
    nifty(service, 24000)
    contract = named_call(service)[1]
    # the same contract, held by another strategy, is no reason to sell it here
    reply = service.alert(**{"symbolname": contract, "price": 24000, "type": "option", "strategyname": "other", "lots": 2,
                             **body})
    assert reply.status_code == 422, reply.text
    (error,) = reply.json()["errors"]
    assert error["field"] == "signal" and "never writes" in error["reason"]


def test_buy_on_a_named_contract_still_buys_it(service_factory):
    service = service_factory()
    nifty(service, 24000)
    contract = named_call(service)[1]
    reply = service.alert(symbolname=contract, signal="buy", price=24000, type="option", strategyname="other", lots=1)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    trade = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN", what="contract bought")["trade"]
    assert trade["tradingsymbol"] == contract and trade["side"] == "LONG"
