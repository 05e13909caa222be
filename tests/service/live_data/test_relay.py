"""The paper relay and the watched order broker: live ticks reach the paper exchange in order, every
traded instrument is watched before its order is sent, and an order never overtakes the ticks before it."""
from __future__ import annotations

import asyncio
from datetime import date

import pytest

from paper.exchange import PaperConfig, PaperExchange
from service.broker import BrokerUnavailable, OrderKind, OrderRefused, OrderRequest, OrderSide
from service.broker.model import ModelBroker
from service.broker.model_orders import Fault
from service.broker.model_streams import ModelTicks
from service.broker.smartapi.data import SubscriptionRefused
from service.live_data import HttpPaperPrices, LocalPaperPrices, PaperRelay, SharedTicks, WatchedBroker
from streams import Tick
from tests.support.paper import DEMO
from tests.support.waiting import until

SBIN = ("NSE", "3045")


class Recorder:
    """A paper exchange's outside prices, recorded; `gate` holds each delivery until set."""

    def __init__(self, log: list | None = None) -> None:
        self.log = log if log is not None else []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.entered = 0  # deliveries begun (some may wait at the gate)

    async def renew(self):
        self.log.append(("renew",))

    async def watch(self, pairs):
        self.log.append(("watch", list(pairs)))
        if self.fail is not None:
            raise self.fail
        return [pair for pair in pairs if pair[1] == "999999"]

    async def prices(self, rows):
        self.entered += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.log.append(("prices", list(rows)))

    async def close(self):
        self.log.append(("close",))


class RecordingBroker(ModelBroker):
    def __init__(self, log: list) -> None:
        super().__init__({SBIN: 80_000})
        self.log = log

    async def place_order(self, request, priority=None):
        self.log.append(("place", request.tag))
        return await super().place_order(request)


def buy(tag: str = "tgT1E1", token: str = "3045", kind: OrderKind = OrderKind.MARKET, price: int = 0) -> OrderRequest:
    return OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token=token, side=OrderSide.BUY, quantity=1, tag=tag,
                        kind=kind, price=price)


def tick(ltp: int) -> Tick:
    return Tick("3045", "NSE", ltp, 1)


@pytest.fixture
async def rig():
    log: list = []
    stream = ModelTicks()
    shared = SharedTicks(stream)
    paper = Recorder(log)
    relay = PaperRelay(shared.holder(), paper)
    broker = WatchedBroker(RecordingBroker(log), relay)
    await relay.renew()
    await relay.start()
    yield stream, relay, paper, broker, log
    await relay.stop()


async def test_ticks_reach_the_paper_exchange_in_order_in_batches(rig):
    stream, relay, paper, broker, log = rig
    await relay.watch([SBIN])
    paper.gate.clear()
    stream.push(tick(81_000))
    await until(lambda: paper.entered == 1, "the first batch on its way, held at the gate")
    for ltp in (81_005, 81_010, 81_015):
        stream.push(tick(ltp))
    paper.gate.set()
    await until(lambda: relay.forwarded == 4, "four ticks forwarded")
    batches = [rows for kind, *rows in log if kind == "prices"]
    assert [row[2] for batch in batches for row in batch[0]] == [81_000, 81_005, 81_010, 81_015]
    assert len(batches) == 2  # what arrived while one batch was on its way went as the next


async def test_an_order_is_watched_first_and_never_overtakes_the_ticks_before_it(rig):
    stream, relay, paper, broker, log = rig
    await broker.place_order(buy("tgT1E1"))
    assert log[:2] == [("renew",), ("watch", [SBIN])] and stream.subscriptions == {SBIN}
    paper.gate.clear()
    stream.push(tick(80_100))  # the tick that fires an exit
    placing = asyncio.create_task(broker.place_order(buy("tgT1X1")))
    await until(lambda: paper.entered == 1, "the tick on its way, held at the gate")
    await asyncio.sleep(0.05)  # an absence to show: nothing to wait for
    assert ("place", "tgT1X1") not in log and not placing.done()  # held until the exchange has the tick
    paper.gate.set()
    await placing
    assert log.index(("prices", [("NSE", "3045", 80_100)])) < log.index(("place", "tgT1X1"))
    assert [entry for entry in log if entry[0] == "watch"] == [("watch", [SBIN])]  # watched once


async def test_a_watch_that_fails_refuses_the_order_before_it_is_sent(rig):
    stream, relay, paper, broker, log = rig
    paper.fail = BrokerUnavailable("the paper exchange's outside prices: ClientConnectorError")
    with pytest.raises(OrderRefused, match="no live price for NSE:3045"):
        await broker.place_order(buy())
    assert not [entry for entry in log if entry[0] == "place"]
    paper.fail = None
    await broker.place_order(buy())  # watched now, and sent
    assert ("place", "tgT1E1") in log


async def test_a_subscription_the_market_data_refuses_refuses_the_order():
    class Full(ModelTicks):
        def subscribe(self, instruments):
            raise SubscriptionRefused("1001 instruments would pass SmartAPI's 1000 subscriptions per session")

    log: list = []
    relay = PaperRelay(SharedTicks(Full()).holder(), Recorder(log))  # not started: nothing renewed
    broker = WatchedBroker(RecordingBroker(log), relay)
    with pytest.raises(OrderRefused, match="1000 subscriptions"):
        await broker.place_order(buy())
    assert log == []


async def test_undelivered_ticks_are_counted_and_do_not_hold_orders_back(rig):
    stream, relay, paper, broker, log = rig
    await relay.watch([SBIN])
    paper.fail = BrokerUnavailable("the paper exchange's outside prices answered HTTP 500")
    stream.push(tick(81_000))
    await relay.caught_up()
    assert relay.dropped == 1 and relay.forwarded == 0
    paper.fail = None
    stream.push(tick(81_005))
    await relay.caught_up()
    assert relay.forwarded == 1


async def test_at_start_the_instruments_of_working_orders_are_watched():
    log: list = []
    model = ModelBroker({SBIN: 80_000, ("NSE", "1594"): 150_000})
    model.arm(Fault(fill="rest"))
    await model.place_order(buy(kind=OrderKind.LIMIT, price=79_000))
    stream = ModelTicks()
    relay = PaperRelay(SharedTicks(stream).holder(), Recorder(log))
    await relay.renew()
    await relay.start([model])
    try:
        assert log == [("renew",), ("watch", [SBIN])] and stream.subscriptions == {SBIN}
    finally:
        await relay.stop()


async def test_in_process_the_paper_exchange_trades_at_the_relayed_prices():
    exchange = PaperExchange(PaperConfig(logins=(DEMO,), db_path=":memory:", tick_ms=0, today=date(2026, 3, 10)))
    stream = ModelTicks()
    relay = PaperRelay(SharedTicks(stream).holder(), LocalPaperPrices(exchange.outside))
    await relay.start()
    try:
        await relay.watch([SBIN, ("NSE", "999999")])
        assert exchange.outside.state()["awaiting"] == ["NSE:3045"]
        stream.push(tick(81_250))
        await relay.caught_up()
        assert exchange.prices.ltp(*SBIN) == 81_250 and exchange.outside.state()["awaiting"] == []
    finally:
        await relay.stop()
    again = PaperRelay(SharedTicks(stream).holder(), LocalPaperPrices(exchange.outside))
    await again.renew()  # tickguard started again: the price it left may be hours old
    await again.start()
    try:
        assert exchange.outside.state()["awaiting"] == ["NSE:3045"]
    finally:
        await again.stop()


async def test_a_paper_exchange_that_cannot_be_reached_is_a_broker_error():
    prices = HttpPaperPrices("http://127.0.0.1:9", timeout_s=2)
    try:
        with pytest.raises(BrokerUnavailable):
            await prices.watch([SBIN])
    finally:
        await prices.close()


async def test_a_paper_exchange_with_its_control_api_off_is_a_settings_error(paper_factory):
    from service.errors import SettingsError

    paper = paper_factory(control_api=False)
    prices = HttpPaperPrices(paper.url)
    try:
        with pytest.raises(SettingsError, match="PAPER_URL"):
            await prices.renew()
    finally:
        await prices.close()


async def test_over_http_prices_go_in_requests_the_paper_exchange_takes_and_in_order(paper):
    prices = HttpPaperPrices(paper.url)
    try:
        assert await prices.watch([SBIN, ("NSE", "999999")]) == [("NSE", "999999")]
        rows = [("NSE", "3045", 80_000 + 5 * n) for n in range(25_001)]  # three requests' worth
        await prices.prices(rows)
        assert paper.exchange.prices.ltp(*SBIN) == rows[-1][2]
        assert paper.control("GET", "/outside").json()["applied"] == 25_001
    finally:
        await prices.close()
