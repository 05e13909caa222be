"""OrderUpdates against the paper exchange's smart-order-update: AB codes, and the order book filling gaps."""
from __future__ import annotations

import asyncio

import pytest

from service.broker.port import OrderUpdateStream
from service.broker.smartapi.reconnect import Backoff
from service.broker.smartapi.updates import POLL, OrderUpdates
from service.broker.types import BrokerOrder, OrderStatus
from tests.service.broker.conftest import Recorder, bounded, stream_config, until

AB_CODES = {f"AB{n:02d}" for n in range(1, 12)}
GAP_S = 0.1  # the least time between polls, shortened from SmartAPI's second so the tests wait less


@pytest.fixture
async def rest(paper, rest_factory):
    return await rest_factory(paper)


@pytest.fixture
async def running(paper, rest):
    """start(**options) -> (updates, received, events), once connected and caught up; stopped after the test."""
    started: list[OrderUpdates] = []

    async def start(credentials=None, poll=None, **options):
        options.setdefault("backoff", Backoff(base_s=0.05, cap_s=0.5))
        options.setdefault("min_poll_gap_s", GAP_S)
        client = OrderUpdates(stream_config(paper), credentials or rest.stream_credentials, poll or rest.order_book,
                              **options)
        received, events = Recorder(client.updates), Recorder(client.events)
        await client.start()
        started.append(client)
        await events.wait(lambda e: e.kind == "ready", "AB00")
        await events.wait(lambda e: e.kind == "polled" and e.detail.startswith("reconnected"), "the catch-up poll")
        return client, received, events

    yield start
    for client in started:
        await bounded(client.stop(), "the order-update client's stop")


def of(order_id: str, status: OrderStatus | None = None, code: str | None = None):
    return lambda u: u.order.order_id == order_id and (status is None or u.order.status is status) and (
        code is None or u.code == code)


async def test_orders_placed_over_rest_arrive_as_ab_codes(running, rest):
    client, received, _ = await running()
    assert isinstance(client, OrderUpdateStream)
    order_id = await rest.place()
    done = await received.wait(of(order_id, OrderStatus.COMPLETE), "the fill")
    assert done.code == "AB05" and done.order.filled == 10 and done.order.tradingsymbol == "SBIN-EQ"
    codes = [u.code for u in received.items if u.order.order_id == order_id]
    assert set(codes) <= AB_CODES and codes[-1] == "AB05"
    assert not client.down


async def test_paused_updates_are_recovered_by_the_reconciling_poll(running, rest):
    _, received, events = await running(reconcile_every_s=2 * GAP_S)
    await rest.control("/feed/orders/pause")
    order_id = await rest.place()
    update = await received.wait(of(order_id, OrderStatus.COMPLETE), "the fill, from the order book")
    assert update.code == POLL and update.order.filled == 10
    assert [u.code for u in received.items if u.order.order_id == order_id] == [POLL]
    assert (await rest.control("/feed/orders/resume"))["dropped"] >= 1
    polled = len(received.items)
    await events.wait(lambda e: e.kind == "polled" and e.detail.startswith("reconcile"), "another reconcile",
                      after=len(events.items))
    assert len(received.items) == polled  # nothing changed, nothing emitted again


async def test_while_the_socket_is_down_the_order_book_is_polled(running, rest):
    gate = asyncio.Event()
    gate.set()

    async def credentials():
        await gate.wait()  # while closed, the socket cannot come back
        return await rest.stream_credentials()

    client, received, events = await running(credentials=credentials, poll_every_s=2 * GAP_S, reconcile_every_s=None)
    gate.clear()
    mark = len(events.items)
    await rest.control("/feed/drop", {"socket": "orders", "how": "abort"})
    await events.wait(lambda e: e.kind == "disconnected", "the drop", after=mark)
    assert client.down
    order_id = await rest.place()
    update = await received.wait(of(order_id, OrderStatus.COMPLETE), "the fill, polled while down")
    assert update.code == POLL and client.down
    assert "connected" not in [e.kind for e in events.items[mark:]]
    gate.set()
    await events.wait(lambda e: e.kind == "polled" and e.detail.startswith("reconnected"), "the catch-up poll",
                      after=mark)
    assert not client.down
    second = await rest.place(transactiontype="SELL")
    await received.wait(of(second, OrderStatus.COMPLETE, "AB05"), "updates by socket again")
    assert [u.code for u in received.items if u.order.order_id == order_id] == [POLL]


async def test_a_book_older_than_the_socket_never_takes_an_order_back(running, rest):
    stale: list[list[BrokerOrder]] = []

    async def poll() -> list[BrokerOrder]:
        return stale[-1] if stale else await rest.order_book()

    client, received, _ = await running(poll=poll, reconcile_every_s=None)
    quote = await rest.client.post("/rest/secure/angelbroking/market/v1/quote",
                                   json={"mode": "LTP", "exchangeTokens": {"NSE": ["3045"]}})
    below = round(quote.json()["data"]["fetched"][0]["ltp"] * 0.95 * 20) / 20
    order_id = await rest.place(ordertype="LIMIT", price=f"{below:.2f}")
    await received.wait(of(order_id, OrderStatus.OPEN), "the resting order")
    open_book = await rest.order_book()
    reply = await rest.client.post("/rest/secure/angelbroking/order/v1/cancelOrder",
                                   json={"variety": "NORMAL", "orderid": order_id})
    assert reply.json()["status"] is True, reply.text
    await received.wait(of(order_id, OrderStatus.CANCELLED, "AB02"), "the cancel")
    stale.append(open_book)
    assert await client.poll_once("stale book") == 0
    stale.clear()
    assert await client.poll_once("fresh book") == 0  # the socket already told us everything


async def test_malformed_order_updates_are_reported_and_survived(running, rest):
    _, received, events = await running()
    await rest.control("/feed/garbage", {"kind": "text", "socket": "orders", "text": '{"order-status": "AB05"}'})
    await rest.control("/feed/garbage", {"kind": "text", "socket": "orders", "text": "not json"})
    await until(lambda: [e for e in events.items if e.kind == "malformed"][1:], "two malformed messages")
    order_id = await rest.place()
    await received.wait(of(order_id, OrderStatus.COMPLETE, "AB05"), "updates after the garbage")
    assert [e.kind for e in events.items].count("connected") == 1


async def test_polls_are_at_least_the_gap_apart(running, rest):
    asked: list[float] = []

    async def poll() -> list[BrokerOrder]:
        asked.append(asyncio.get_running_loop().time())
        return await rest.order_book()

    client, _, _ = await running(poll=poll, reconcile_every_s=None, min_poll_gap_s=0.5)
    await asyncio.gather(client.poll_once("first"), client.poll_once("second"))
    assert len(asked) == 3  # the catch-up poll on connecting, then these two
    assert all(later - earlier >= 0.5 for earlier, later in zip(asked, asked[1:])), asked
    assert OrderUpdates(stream_config(rest.paper), rest.stream_credentials, rest.order_book).min_poll_gap_s == 1.0
