"""The model broker is a full adapter of the port, and its faults do what they say."""
from __future__ import annotations

import inspect

import pytest

from service.broker import Broker, OrderKind, OrderRefused, OrderRequest, OrderSide, OrderStatus, PlacementUnknown
from service.broker.model import Fault, ModelBroker
from service.broker.port import OrderUpdateStream, TickStream


def sell(tag: str = "tg1X1", quantity: int = 5, price: int = 79_500) -> OrderRequest:
    return OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token="3045", side=OrderSide.SELL, quantity=quantity,
                        kind=OrderKind.LIMIT, price=price, tag=tag)


def test_it_implements_every_method_of_the_port_with_the_ports_parameters():
    broker = ModelBroker()
    assert isinstance(broker, Broker)
    assert isinstance(broker.tick_stream(), TickStream) and isinstance(broker.order_update_stream(), OrderUpdateStream)
    for name, method in inspect.getmembers(Broker, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = inspect.signature(getattr(ModelBroker, name))
        assert list(ours.parameters) == list(inspect.signature(method).parameters), name


async def test_placements_in_doubt_raise_and_place_or_not():
    broker = ModelBroker({("NSE", "3045"): 80_000})
    broker.arm(Fault(placement="doubt_lost"), Fault(placement="doubt_placed", listed_after_s=60), Fault(placement="refused"))
    for _ in range(2):
        with pytest.raises(PlacementUnknown):
            await broker.place_order(sell())
    with pytest.raises(OrderRefused):
        await broker.place_order(sell("tg1X2"))
    (placed,) = broker.orders()
    assert placed.status is OrderStatus.COMPLETE and broker.net("NSE", "3045") == -5  # a marketable sell filled
    assert await broker.find_orders("tg1X1") == [] and await broker.order_book() == []  # the book lags


async def test_a_resting_order_fills_once_modified_through_the_market():
    broker = ModelBroker({("NSE", "3045"): 80_000})
    broker.arm(Fault(fill="partial", fraction=0.4))
    ack = await broker.place_order(sell(quantity=5))
    (order,) = await broker.order_book()
    assert order.filled == 2 and order.status is OrderStatus.OPEN
    await broker.modify_order(ack.order_id, sell(quantity=5, price=79_000))
    (order,) = await broker.order_book()
    assert order.filled == 5 and order.status is OrderStatus.COMPLETE and order.average_price == 80_000
