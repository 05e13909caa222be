"""The adapter's own streams, wired as the service uses them, against the paper exchange."""
from __future__ import annotations

import asyncio

from service.broker import OrderRequest, OrderSide, OrderStatus
from service.broker.smartapi.adapter import SmartApiBroker
from service.broker.smartapi.feeds import LoginFeed
from tests.service.broker.test_rest import config_for


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_ticks_and_order_updates_through_the_broker_port(paper):
    broker = SmartApiBroker(config_for(paper, stream_stall_s=30))
    await broker.connect()
    ticks, updates = [], []
    stream, orders = broker.tick_stream(), broker.order_update_stream()
    assert isinstance(stream, LoginFeed) and stream.limit == 3 and stream is broker.tick_stream()
    stream.ticks.subscribe(ticks.append)
    orders.updates.subscribe(updates.append)
    await stream.start()
    await orders.start()
    stream.subscribe([("NSE", "3045")])
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 801.5})
    await wait_for(lambda: any(t.ltp == 80150 for t in ticks))
    ack = await broker.place_order(OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token="3045",
                                                side=OrderSide.BUY, quantity=3, tag="tgS1E1"))
    await wait_for(lambda: any(u.order.order_id == ack.order_id and u.order.status is OrderStatus.COMPLETE for u in updates))
    final = next(u.order for u in updates if u.order.status is OrderStatus.COMPLETE)
    assert (final.tag, final.filled, final.average_price) == ("tgS1E1", 3, 80150)
    await broker.close()
