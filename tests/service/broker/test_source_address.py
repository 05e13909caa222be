"""The static-IP rule in the adapter: a login with a source address sends its REST calls and opens its
sockets from that address, and says so in X-ClientLocalIP / X-ClientPublicIP (against the paper exchange
enforcing the rule: no mocks of our own code)."""
from __future__ import annotations

import aiohttp
import pytest

from service.broker import BrokerUnavailable, OrderRefused
from service.broker.smartapi.adapter import SmartApiBroker
from tests.service.broker.conftest import until
from tests.service.broker.test_rest import config_for, sbin
from tests.support.paper import DEMO


@pytest.fixture
def enforcing(paper_factory):
    paper = paper_factory(static_ips={DEMO.clientcode: "127.0.0.2"})
    assert paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800}).status_code == 200
    return paper


def header_recorder() -> tuple[aiohttp.TraceConfig, list[tuple[str, dict[str, str]]]]:
    sent: list[tuple[str, dict[str, str]]] = []
    trace = aiohttp.TraceConfig()

    async def on_request_start(session, context, params) -> None:
        sent.append((params.url.path, dict(params.headers)))

    trace.on_request_start.append(on_request_start)
    return trace, sent


def seen_orders(paper) -> list[dict]:
    return paper.control("GET", "/sources").json()["orders"]


async def test_orders_leave_from_the_logins_address_and_name_it_in_the_headers(enforcing):
    trace, sent = header_recorder()
    broker = SmartApiBroker(config_for(enforcing, source_address="127.0.0.2"), trace_configs=[trace])
    try:
        await broker.connect()
        ack = await broker.place_order(sbin(tag="ip1"))
        assert ack.order_id
    finally:
        await broker.close()
    (row,) = [row for row in seen_orders(enforcing) if row["ordertag"] == "ip1"]
    assert (row["clientcode"], row["peer"], row["refused"]) == (DEMO.clientcode, "127.0.0.2", "")
    (headers,) = [h for path, h in sent if path.endswith("/placeOrder")]
    assert headers["X-ClientLocalIP"] == headers["X-ClientPublicIP"] == "127.0.0.2"


async def test_a_login_on_another_address_is_refused_by_the_rule(enforcing):
    broker = SmartApiBroker(config_for(enforcing, source_address="127.0.0.3"))
    try:
        await broker.connect()  # logging in is no order: allowed from anywhere
        with pytest.raises(OrderRefused) as refused:
            await broker.place_order(sbin(tag="ip2"))
    finally:
        await broker.close()
    assert refused.value.errorcode == "AB7001"
    assert "must send orders from 127.0.0.2, this one came from 127.0.0.3" in refused.value.message


async def test_the_order_update_socket_binds_the_logins_address(enforcing):
    broker = SmartApiBroker(config_for(enforcing, source_address="127.0.0.2"))
    try:
        await broker.order_update_stream().start()

        def peers() -> list[str]:
            return [c["peer"] for c in enforcing.control("GET", "/feed").json()["orders"]]

        assert await until(peers, "the order-update socket connected") == ["127.0.0.2"]
    finally:
        await broker.close()


async def test_an_address_not_of_this_host_fails_clearly(paper):
    broker = SmartApiBroker(config_for(paper, source_address="192.0.2.1", timeout_s=2.0))  # TEST-NET-1
    try:
        with pytest.raises(BrokerUnavailable, match="cannot reach the broker from 192.0.2.1: .*assign requested address"):
            await broker.connect()
    finally:
        await broker.close()


def test_without_a_source_address_the_headers_keep_the_loopback_default(paper):
    from service.broker.smartapi.rest import SmartApiRest

    headers = SmartApiRest(config_for(paper))._headers("placeOrder")
    assert headers["X-ClientLocalIP"] == headers["X-ClientPublicIP"] == "127.0.0.1"
