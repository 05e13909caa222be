"""The SmartAPI adapter's GTT rules against a running paper exchange: no mocks of our own code."""
from __future__ import annotations

import pytest

from service.broker import BrokerUnavailable, GttRequest, GttStatus, OrderRefused, OrderSide, OrderStatus
from service.broker.smartapi import adapter as adapter_module
from service.broker.smartapi.gtt import rule_from_row
from service.broker.smartapi.pacing import ROUTE_LIMITS
from service.broker.smartapi.rest import ROUTES
from service.broker.smartapi.rows import order_from_row
from tests.service.broker.test_rest import broker, config_for, sbin, set_price  # noqa: F401 - broker: a fixture

GTT_ROUTES = ("gttCreateRule", "gttModifyRule", "gttCancelRule", "gttDetails", "gttLists")


def stop(**overrides) -> GttRequest:
    values = dict(exchange="NSE", tradingsymbol="SBIN-EQ", token="3045", side=OrderSide.SELL, quantity=10,
                  price=78_800, trigger_price=79_000)
    values.update(overrides)
    return GttRequest(**values)


async def test_a_rule_is_created_read_listed_modified_and_cancelled(broker, paper):
    set_price(paper, 800)
    rule_id = await broker.create_gtt(stop())
    assert rule_id.isdigit()
    rule = await broker.gtt_rule(rule_id)
    assert rule is not None
    assert (rule.rule_id, rule.status, rule.side, rule.quantity, rule.price, rule.trigger_price, rule.product) == \
           (rule_id, GttStatus.NEW, OrderSide.SELL, 10, 78_800, 79_000, "DELIVERY")
    assert await broker.modify_gtt(rule_id, stop(trigger_price=79_500, price=79_300)) == rule_id
    (listed,) = await broker.gtt_rules()
    assert (listed.status, listed.trigger_price, listed.price) == (GttStatus.ACTIVE, 79_500, 79_300)
    await broker.cancel_gtt(rule_id, "NSE", "3045")
    assert await broker.gtt_rules() == []
    assert [r.rule_id for r in await broker.gtt_rules([GttStatus.CANCELLED])] == [rule_id]
    assert (await broker.gtt_rule(rule_id)).status is GttStatus.CANCELLED


async def test_a_triggered_rule_names_its_order_and_the_order_its_rule(broker, paper):
    set_price(paper, 800)
    await broker.place_order(sbin(product="DELIVERY"))
    rule_id = await broker.create_gtt(stop())
    set_price(paper, 789)
    rule = await broker.gtt_rule(rule_id)
    assert rule.status is GttStatus.SENT_TO_EXCHANGE and not rule.status.waiting and rule.order_id
    order = next(o for o in await broker.order_book() if o.order_id == rule.order_id)
    assert (order.parent_order_id, order.tag, order.status, order.filled) == (rule_id, "", OrderStatus.COMPLETE, 10)
    assert order.side is OrderSide.SELL and order.average_price == 78_900
    (position,) = await broker.positions()
    assert position.net_quantity == 0


async def test_refusals_carry_the_brokers_code(broker, paper):
    set_price(paper, 800)
    with pytest.raises(OrderRefused) as refused:
        await broker.create_gtt(stop(trigger_price=80_500))
    assert (refused.value.errorcode, refused.value.route) == ("AB9011", "gttCreateRule")
    rule_id = await broker.create_gtt(stop())
    await broker.cancel_gtt(rule_id, "NSE", "3045")
    with pytest.raises(OrderRefused) as again:
        await broker.cancel_gtt(rule_id, "NSE", "3045")
    assert again.value.errorcode == "AB9014"
    with pytest.raises(OrderRefused) as modified:
        await broker.modify_gtt(rule_id, stop(trigger_price=79_100))
    assert modified.value.errorcode == "AB9013"
    assert await broker.gtt_rule("4242") is None


async def test_every_page_of_the_list_is_read(broker, paper, monkeypatch):
    monkeypatch.setattr(adapter_module, "GTT_PAGE", 2)
    set_price(paper, 800)
    created = [await broker.create_gtt(stop(trigger_price=79_000 - 100 * n)) for n in range(5)]
    rules = await broker.gtt_rules()
    assert sorted(r.rule_id for r in rules) == sorted(created)


def test_gtt_routes_are_routed_and_paced_like_the_sdks():
    assert {route: ROUTES[route][0] for route in GTT_ROUTES} == dict.fromkeys(GTT_ROUTES, "POST")
    assert ROUTES["gttCreateRule"][1] == "/gtt-service/rest/secure/angelbroking/gtt/v1/createRule"
    assert ROUTES["gttLists"][1] == "/rest/secure/angelbroking/gtt/v1/ruleList"
    assert {route: ROUTE_LIMITS[route] for route in GTT_ROUTES} == dict.fromkeys(GTT_ROUTES, (10, 500, 5000))


def test_a_rule_status_the_port_does_not_know_is_an_error_not_a_guess():
    with pytest.raises(BrokerUnavailable, match="'EXPIRED'"):
        rule_from_row({"id": 7, "status": "EXPIRED", "transactiontype": "SELL"})
    rule = rule_from_row({"id": 7, "status": "SENTTOEXCHANGE", "transactiontype": "SELL", "qty": "5",
                          "price": "10.5", "triggerprice": 11, "orderid": 241120000000001})
    assert (rule.rule_id, rule.quantity, rule.price, rule.trigger_price, rule.order_id) == \
           ("7", 5, 1050, 1100, "241120000000001")


def test_an_order_rows_parent_is_read():
    row = {"orderid": "1", "transactiontype": "SELL", "status": "open", "parentorderid": "1000001"}
    assert order_from_row(row).parent_order_id == "1000001"
    assert order_from_row({**row, "parentorderid": ""}).parent_order_id == ""
