"""The SmartAPI adapter's REST side against a running paper exchange: no mocks of our own code."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from service.broker import (
    LoginFailed,
    MarginLeg,
    OrderKind,
    OrderRefused,
    OrderRequest,
    OrderSide,
    OrderStatus,
    PlacementUnknown,
    Priority,
)
from service.broker.smartapi.adapter import SmartApiBroker
from service.broker.smartapi.config import SmartApiConfig
from tests.support.paper import DEMO

IST = ZoneInfo("Asia/Kolkata")


def config_for(paper, **overrides) -> SmartApiConfig:
    ws = paper.url.replace("http", "ws", 1)
    values = dict(
        root=paper.url, stream_url=f"{ws}/smart-stream", order_update_url=f"{ws}/smart-order-update",
        clientcode=DEMO.clientcode, pin=DEMO.pin, api_key=DEMO.api_key, totp_secret=DEMO.totp_secret,
    )
    values.update(overrides)
    return SmartApiConfig(**values)


@pytest.fixture
async def broker(paper):
    broker = SmartApiBroker(config_for(paper))
    await broker.connect()
    yield broker
    await broker.close()


def sbin(**overrides) -> OrderRequest:
    values = dict(exchange="NSE", tradingsymbol="SBIN-EQ", token="3045", side=OrderSide.BUY, quantity=10, tag="tgT1E1")
    values.update(overrides)
    return OrderRequest(**values)


def set_price(paper, ltp: float, token: str = "3045") -> None:
    assert paper.control("POST", "/ticks", json={"exchange": "NSE", "token": token, "ltp": ltp}).status_code == 200


async def test_funds_after_login(broker, paper):
    funds = await broker.funds()
    assert funds.net == paper.config.opening_cash_paise == funds.available_cash
    assert funds.realised == funds.unrealised == 0


async def test_market_order_round_trip(broker, paper):
    set_price(paper, 800)
    ack = await broker.place_order(sbin())
    assert len(ack.order_id) == 15 and ack.unique_order_id
    (order,) = await broker.order_book()
    assert order.order_id == ack.order_id and order.tag == "tgT1E1"
    assert order.status is OrderStatus.COMPLETE and order.filled == 10 and order.average_price == 80000
    assert (await broker.order(ack.unique_order_id)) == order
    assert await broker.order("00000000-0000-0000-0000-000000000000") is None
    assert [o.order_id for o in await broker.find_orders("tgT1E1")] == [ack.order_id]
    (fill,) = await broker.trade_book()
    assert (fill.order_id, fill.quantity, fill.price) == (ack.order_id, 10, 80000)
    (position,) = await broker.positions()
    assert position.net_quantity == 10 and position.buy_average == 80000
    set_price(paper, 810)
    (position,) = await broker.positions()
    assert position.unrealised == 10 * 1000 and position.pnl == 10_000


async def test_limit_modify_and_cancel(broker, paper):
    set_price(paper, 800)
    ack = await broker.place_order(sbin(kind=OrderKind.LIMIT, price=79000))
    await broker.modify_order(ack.order_id, sbin(kind=OrderKind.LIMIT, price=79100))
    (order,) = await broker.order_book()
    assert order.status is OrderStatus.OPEN and order.price == 79100
    await broker.cancel_order(ack.order_id, exchange="NSE")
    (order,) = await broker.order_book()
    assert order.status is OrderStatus.CANCELLED and order.cancelled == 10 and order.unfilled == 0


async def test_market_data_calls(broker, paper):
    set_price(paper, 812.5)
    assert await broker.ltp("NSE", "SBIN-EQ", "3045") == 81250
    ticks = await broker.quote_ticks([("NSE", "3045"), ("NSE", "2885")])
    assert {t.token: t.ltp for t in ticks}["3045"] == 81250
    hits = await broker.search("NSE", "SBIN")
    assert ("NSE", "SBIN-EQ", "3045") in {(h.exchange, h.tradingsymbol, h.token) for h in hits}
    now = datetime.now(IST)
    candles = await broker.candles("NSE", "3045", "ONE_MINUTE", now - timedelta(minutes=3), now + timedelta(minutes=1))
    assert candles and candles[-1].close == 81250


async def test_margin_batch_quotes_what_one_lot_blocks(broker, paper):
    future = min((i for i in paper.exchange.universe.instruments if i.name == "NIFTY" and i.instrumenttype == "FUTIDX"),
                 key=lambda i: i.expiry)
    one_lot = MarginLeg(exchange="NFO", token=future.token, quantity=75, price=2_400_000, product="CARRYFORWARD",
                        side=OrderSide.BUY)
    assert await broker.margin([one_lot]) == 27_000_000  # the paper rule: 15 % of ₹24,000 × 75
    sbin_leg = MarginLeg(exchange="NSE", token="3045", quantity=10, price=80_000, product="INTRADAY", side=OrderSide.SELL)
    assert await broker.margin([one_lot, sbin_leg]) == 27_000_000 + 160_000
    with pytest.raises(OrderRefused) as caught:
        await broker.margin([MarginLeg(exchange="NFO", token="1", quantity=75, price=0, product="CARRYFORWARD",
                                       side=OrderSide.BUY)])
    assert caught.value.errorcode == "AB1009" and caught.value.route == "marginBatch"


async def test_instrument_master_download_reports_progress(broker):
    seen: list[int] = []
    master = await broker.instrument_master(lambda received, total: seen.append(received))
    assert master.startswith(b"[") and b"99926000" in master
    assert seen and seen[-1] == len(master) and seen == sorted(seen)


async def test_refused_order_carries_the_brokers_code(broker, paper):
    set_price(paper, 800)
    with pytest.raises(OrderRefused) as caught:
        await broker.place_order(sbin(variety="WEIRD"))
    assert caught.value.errorcode == "AB1008" and caught.value.route == "placeOrder"
    with pytest.raises(OrderRefused):
        await broker.place_order(sbin(tag="x" * 20))


async def test_wrong_login_is_refused(paper):
    broker = SmartApiBroker(config_for(paper, pin="0000"))
    with pytest.raises(LoginFailed) as caught:
        await broker.connect()
    assert caught.value.errorcode == "AB1007"
    await broker.close()


async def test_forced_expiry_is_renewed_once_for_all_concurrent_callers(broker, paper):
    paper.control("POST", "/sessions/expire", json={})
    results = await asyncio.gather(*(broker.funds() for _ in range(5)))
    assert all(f.net == paper.config.opening_cash_paise for f in results)
    assert broker.rest.renewals == 1 and broker.rest.logins == 1


async def test_a_dead_refresh_token_falls_back_to_a_fresh_login(broker, paper):
    await broker.rest.call("logout", {"clientcode": DEMO.clientcode})  # revokes access and refresh alike
    assert (await broker.funds()).net == paper.config.opening_cash_paise
    assert broker.rest.logins == 2


async def test_place_order_timeout_finds_the_order_instead_of_sending_it_twice(paper):
    set_price(paper, 800)
    broker = SmartApiBroker(config_for(paper, timeout_s=0.5))
    await broker.connect()
    paper.control("POST", "/faults", json={"kind": "timeout", "count": 1, "seconds": 2})
    ack = await broker.place_order(sbin(tag="tgT9E1"))
    orders = await broker.order_book()
    assert [o.order_id for o in orders] == [ack.order_id]
    await broker.close()


@pytest.mark.parametrize("placed, expected_orders", [(True, 1), (False, 1)])
async def test_5xx_on_place_never_duplicates(broker, paper, placed, expected_orders):
    set_price(paper, 800)
    paper.control("POST", "/faults", json={"kind": "error5xx", "count": 1, "placed": placed})
    ack = await broker.place_order(sbin(tag="tgT7E1"))
    orders = await broker.order_book()
    assert len(orders) == expected_orders and orders[0].order_id == ack.order_id


async def test_an_exit_not_found_after_a_5xx_is_in_doubt_not_sent_again(broker, paper):
    """An entry not found is sent once more; an exit is left to the trader's doubt rule, since the
    order book may show it a moment later (sending it again could sell twice)."""
    set_price(paper, 800)
    paper.control("POST", "/faults", json={"kind": "error5xx", "count": 2, "placed": False})
    with pytest.raises(PlacementUnknown) as raised:
        await broker.place_order(sbin(tag="tgT8X1", side=OrderSide.SELL), Priority.EXIT)
    assert raised.value.tag == "tgT8X1"
    assert [fault["remaining"] for fault in paper.exchange.engine.faults.pending()] == [1]  # one placement tried
    assert await broker.order_book() == []


async def test_untagged_order_in_doubt_is_reported_not_resent(broker, paper):
    set_price(paper, 800)
    paper.control("POST", "/faults", json={"kind": "error5xx", "count": 1, "placed": True})
    with pytest.raises(PlacementUnknown):
        await broker.place_order(sbin(tag=""))
    assert len(await broker.order_book()) == 1


async def test_rate_limit_replies_back_off_and_succeed(paper_factory):
    paper = paper_factory(rate_limits=True)
    first, second = SmartApiBroker(config_for(paper)), SmartApiBroker(config_for(paper))
    await first.connect()
    await asyncio.sleep(1.05)  # loginByPassword allows one a second per key
    await second.connect()
    # two clients on one API key: each paces itself, together they exceed getOrderBook's 1/s
    books = await asyncio.gather(first.order_book(), second.order_book())
    assert books == [[], []]
    assert first.rest.rate_limit_retries + second.rest.rate_limit_retries >= 1
    await first.close()
    await second.close()


async def test_exits_are_placed_ahead_of_queued_entries(broker, paper):
    set_price(paper, 800)
    broker.rest.orders.per_segment_per_s = 2
    broker.rest.orders._segments.clear()
    placed: list[str] = []

    async def place(tag: str, priority: Priority) -> None:
        await broker.place_order(sbin(tag=tag), priority)
        placed.append(tag)

    entries = [asyncio.create_task(place(f"tgE{n}", Priority.ENTRY)) for n in range(4)]
    await asyncio.sleep(0.05)
    await place("tgX1", Priority.EXIT)
    await asyncio.gather(*entries)
    arrival = [o.tag for o in sorted(await broker.order_book(), key=lambda o: o.order_id)]  # the exchange's own order
    assert arrival.index("tgX1") < 3, arrival


class HeldPositions:
    """Request hooks that count getPosition requests and can hold their answers back on the way home."""

    def __init__(self) -> None:
        self.reads = 0
        self.answered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._ended)

    async def _ended(self, session, context, params: aiohttp.TraceRequestEndParams) -> None:
        if params.url.path.endswith("/getPosition"):
            self.reads += 1
            self.answered.set()
            await self.release.wait()


@pytest.fixture
async def held(paper):
    hooks = HeldPositions()
    broker = SmartApiBroker(config_for(paper), trace_configs=[hooks.trace])
    await broker.connect()
    yield broker, hooks
    hooks.release.set()
    await broker.close()


async def test_concurrent_position_reads_share_one_request(held, paper):
    broker, transport = held
    set_price(paper, 800)
    await broker.place_order(sbin(quantity=3))
    answers = await asyncio.gather(*(broker.positions() for _ in range(20)))
    assert transport.reads == 1  # one read a second is SmartAPI's limit: twenty would take twenty seconds
    assert all([p.net_quantity for p in answer] == [3] for answer in answers)


async def test_a_position_read_asked_after_one_was_sent_is_a_newer_read(held, paper):
    broker, transport = held
    set_price(paper, 800)
    transport.release.clear()
    earlier = asyncio.create_task(broker.positions())
    await transport.answered.wait()  # the first read is answered: a fill now is not in its answer
    await broker.place_order(sbin(quantity=2))
    later = asyncio.create_task(broker.positions())
    transport.release.set()
    assert await earlier == []
    assert [p.net_quantity for p in await later] == [2]
    assert transport.reads == 2
