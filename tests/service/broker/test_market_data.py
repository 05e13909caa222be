"""The market-data client can send no order: `MarketData` has no order method, and a market-data-only
SmartAPI login refuses every route but login and market data before anything leaves (the paper exchange's
record of requests shows none arrived)."""
from __future__ import annotations

import inspect
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.broker import Broker, GttRequest, MarketData, NotMarketData, OrderRequest, OrderSide
from service.broker.market_data import MARKET_DATA_METHODS
from service.broker.smartapi.adapter import SmartApiBroker
from service.broker.smartapi.rest import MARKET_DATA_ROUTES, ROUTES
from tests.service.broker.test_rest import config_for

IST = ZoneInfo("Asia/Kolkata")
ORDER_METHODS = {"place_order", "modify_order", "cancel_order", "create_gtt", "modify_gtt", "cancel_gtt",
                 "order_update_stream", "order_book", "order", "find_orders", "trade_book", "positions", "funds",
                 "margin", "gtt_rule", "gtt_rules"}


def public(kind: type) -> set[str]:
    return {name for name in dir(kind) if not name.startswith("_")}


def test_market_data_has_exactly_the_market_data_methods_and_no_order_one():
    assert public(MarketData) == {*MARKET_DATA_METHODS, "owned"}
    broker_methods = {name for name, _ in inspect.getmembers(Broker, inspect.isfunction) if not name.startswith("_")}
    assert ORDER_METHODS <= broker_methods  # the names checked are the port's own
    assert public(MarketData) & ORDER_METHODS == set()
    assert set(MARKET_DATA_METHODS) <= broker_methods  # every read is one a broker has
    with pytest.raises(AttributeError):
        MarketData(object()).place_order  # noqa: B018 - no fallback to the wrapped broker
    with pytest.raises(AttributeError):
        MarketData(object()).extra = 1  # slots: nothing can be hung on it either


class Source:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def connect(self) -> None:
        self.calls.append(("connect",))

    async def close(self) -> None:
        self.calls.append(("close",))

    async def ltp(self, exchange, symbol, token):
        self.calls.append(("ltp", exchange, symbol, token))
        return 81_250


async def test_it_reads_through_its_source_and_runs_the_life_only_of_a_login_it_owns():
    source = Source()
    borrowed = MarketData(source, owned=False)
    await borrowed.connect()
    await borrowed.close()
    assert source.calls == []
    assert await borrowed.ltp("NSE", "SBIN-EQ", "3045") == 81_250
    owned = MarketData(source)
    await owned.connect()
    await owned.close()
    assert source.calls[1:] == [("connect",), ("close",)]


def paths_served(paper) -> set[str]:
    return {path for path in paper.control("GET", "/requests").json()["paths"] if not path.startswith("/paper/v1")}


@pytest.fixture
async def market_login(paper):
    broker = SmartApiBroker(config_for(paper, market_data_only=True))
    await broker.connect()
    yield broker
    await broker.close()


async def test_a_market_data_login_reads_prices_and_candles(paper, market_login):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 812.5})
    assert await market_login.ltp("NSE", "SBIN-EQ", "3045") == 81_250
    now = datetime.now(IST)
    assert isinstance(await market_login.candles("NSE", "3045", "ONE_MINUTE", now - timedelta(minutes=5), now), list)
    assert (await market_login.quote_ticks([("NSE", "3045")]))[0].ltp == 81_250
    assert [hit.token for hit in await market_login.search("NSE", "SBIN")][:1] == ["3045"]


async def test_a_market_data_login_refuses_every_other_route_before_sending(paper, market_login):
    order = OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token="3045", side=OrderSide.BUY, quantity=1, tag="t1")
    rule = GttRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token="3045", side=OrderSide.SELL, quantity=1,
                      price=70_000, trigger_price=70_100)
    attempts = {
        "placeOrder": market_login.place_order(order), "modifyOrder": market_login.modify_order("1", order),
        "cancelOrder": market_login.cancel_order("1"), "gttCreateRule": market_login.create_gtt(rule),
        "gttModifyRule": market_login.modify_gtt("1", rule), "gttCancelRule": market_login.cancel_gtt("1", "NSE", "3045"),
        "getOrderBook": market_login.order_book(), "getPosition": market_login.positions(),
        "getRMS": market_login.funds(), "getTradeBook": market_login.trade_book(), "gttLists": market_login.gtt_rules(),
    }
    for route, attempt in attempts.items():
        with pytest.raises(NotMarketData) as refused:
            await attempt
        assert refused.value.route == route and refused.value.clientcode == "P0001"
    with pytest.raises(NotMarketData):
        market_login.order_update_stream()
    served = paths_served(paper)
    assert served <= {ROUTES[name][1] for name in MARKET_DATA_ROUTES}, served
    assert ROUTES["loginByPassword"][1] in served


def test_every_route_outside_market_data_is_refused():
    """The allowed set is small and named: login, session and prices. Everything else, by construction."""
    assert MARKET_DATA_ROUTES == {"loginByPassword", "generateTokens", "getProfile", "logout", "getLtpData", "quote",
                                  "getCandleData", "searchScrip"}
    assert MARKET_DATA_ROUTES <= set(ROUTES)
