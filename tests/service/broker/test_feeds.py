"""LoginFeed against the paper exchange: a login's instruments over up to three smart-stream sockets."""
from __future__ import annotations

import asyncio
from http import HTTPStatus

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from service.broker.port import TickStream
from service.broker.smartapi.config import SmartApiConfig, StreamCredentials
from service.broker.smartapi.feeds import LoginFeed
from service.broker.smartapi.parsing import QUOTE
from service.broker.smartapi.reconnect import Backoff, handshake_headers
from service.broker.smartapi.subscriptions import MAX_PAIRS, SubscriptionRefused
from streams import Tick
from tests.service.broker.conftest import Recorder, bounded, stream_config, until

SBIN, INFY, RELIANCE = ("NSE", "3045"), ("NSE", "1594"), ("NSE", "2885")


def quick() -> Backoff:
    return Backoff(base_s=0.05, cap_s=0.5)


@pytest.fixture
async def feeds(paper_factory, rest_factory):
    """start(sockets=3, stall_s=…, backoff=…) -> (feed, ticks, events, rest); every feed is stopped after."""
    started: list[LoginFeed] = []

    async def start(sockets: int = 3, stall_s: float = 30.0, backoff=quick, paper=None, **options):
        paper = paper or paper_factory()
        rest = await rest_factory(paper)
        config = stream_config(paper, stream_stall_s=stall_s, stream_sockets=sockets)
        feed = LoginFeed(config, rest.stream_credentials, rest.ltp, backoff=backoff, fallback_every_s=0.1, **options)
        ticks, events = Recorder(feed.ticks), Recorder(feed.events)
        await feed.start()
        started.append(feed)
        return feed, ticks, events, rest

    yield start
    for feed in started:
        await bounded(feed.stop(), "a feed's stop")


def contracts(rest, count: int) -> list[tuple[str, str]]:
    """`count` derivatives the paper exchange lists (each ticks once on subscribing)."""
    found = [(i.exchange, i.token) for i in rest.paper.exchange.universe.instruments if i.is_derivative]
    assert len(found) >= count
    return found[:count]


async def connections(rest) -> list[int]:
    """The subscriptions of each market connection the paper exchange holds, fewest first."""
    return sorted(c["subscriptions"] for c in (await rest.feed())["market"])


async def settles(rest, expected: list[int], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (seen := await connections(rest)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: connections hold {seen}, not {expected}")
        await asyncio.sleep(0.02)


def live(pair: tuple[str, str], ltp: int):
    return lambda tick: (tick.exchange, tick.token) == pair and tick.ltp == ltp


async def test_2500_instruments_take_exactly_three_connections_and_every_socket_ticks(feeds):
    feed, ticks, events, rest = await feeds()
    assert isinstance(feed, TickStream)
    others = contracts(rest, 2497)
    wanted = [SBIN, *others[:999], INFY, *others[999:1998], RELIANCE, *others[1998:]]
    feed.subscribe(wanted)
    assert [feed.socket_of(pair) for pair in (SBIN, INFY, RELIANCE)] == [1, 2, 3]
    assert [socket.held for socket in feed.sockets] == [1000, 1000, 500] and feed.held == 2500
    await settles(rest, [500, 1000, 1000], "three connections")
    # every instrument ticks once on subscribing, on whichever socket holds it
    await until(lambda: {(t.exchange, t.token) for t in ticks.items} >= set(wanted), "a tick of all 2 500", 20)
    for n, pair in enumerate((SBIN, INFY, RELIANCE)):
        await rest.set_ltp(900 + n, token=pair[1])
        await ticks.wait(live(pair, (900 + n) * 100), f"{pair} live on socket {n + 1}")
    connected = [e for e in events.items if e.kind == "connected"]
    assert sorted(e.socket for e in connected) == [1, 2, 3]
    assert all(e.detail.startswith(f"socket {e.socket}: ws://") for e in connected)
    assert len(feed.subscriptions) == 2500 and not feed.degraded and rest.ltp_calls == []
    assert await connections(rest) == [500, 1000, 1000]  # and never a fourth


async def test_ten_instruments_take_one_connection(feeds):
    feed, ticks, events, rest = await feeds()
    await settles(rest, [0], "socket 1 open at start, before any instrument")
    ten = contracts(rest, 10)
    feed.subscribe(ten)
    await settles(rest, [10], "ten instruments on one connection")
    await until(lambda: {(t.exchange, t.token) for t in ticks.items} >= set(ten), "their ticks")
    assert len(feed.sockets) == 1
    feed.unsubscribe(ten)
    feed.subscribe(ten[:3], mode=QUOTE)
    await settles(rest, [3], "still one connection")
    assert len(feed.sockets) == 1 and feed.socket_of(ten[0]) == 1 and feed.subscriptions[ten[0]] == QUOTE


async def test_one_socket_dropped_serves_rest_prices_for_its_own_while_the_others_tick_on(feeds):
    slow = lambda: Backoff(base_s=1.5, cap_s=1.5, draw=lambda: 1.0)  # noqa: E731 - a dropped socket waits 1.5 s
    feed, ticks, events, rest = await feeds(backoff=slow)
    others = contracts(rest, 1498)
    feed.subscribe([SBIN, *others[:999], INFY, *others[999:]])
    assert (feed.socket_of(SBIN), feed.socket_of(INFY)) == (1, 2)
    await settles(rest, [500, 1000], "two connections")
    await ticks.wait(lambda t: t.token == INFY[1], "socket 2 ticking")
    mark = len(events.items)
    await rest.control("/feed/drop", {"exchange": "NSE", "token": INFY[1], "how": "abort"})
    down = await events.wait(lambda e: e.kind == "disconnected", "socket 2 dropped", after=mark)
    assert down.socket == 2 and down.detail.startswith("socket 2: ")
    assert feed.degraded and feed.degraded_sockets == [2]
    await rest.set_ltp(1501.5, token=INFY[1])
    await ticks.wait(live(INFY, 150_150), "INFY priced by REST while its socket is down")
    assert feed.degraded_sockets == [2]  # still down: that price came by REST
    await rest.set_ltp(801.5)
    await ticks.wait(live(SBIN, 80_150), "SBIN live on socket 1 meanwhile")
    assert feed.degraded_sockets == [2]
    asked = {pair for call in rest.ltp_calls for pair in call}
    assert INFY in asked and SBIN not in asked and asked <= set(feed.sockets[1].subscriptions)
    back = await events.wait(lambda e: e.kind == "recovered", "socket 2 back", after=mark)
    assert back.socket == 2 and not feed.degraded
    await settles(rest, [500, 1000], "socket 2 resubscribed")
    await rest.set_ltp(1502.5, token=INFY[1])
    await ticks.wait(live(INFY, 150_250), "INFY live again")
    assert [e.socket for e in events.items[mark:] if e.kind in ("disconnected", "connected")] == [2, 2]


async def test_past_the_limit_a_subscription_is_refused_whole_and_nothing_is_sent(feeds):
    feed, ticks, events, rest = await feeds(sockets=2)
    held = contracts(rest, 2000)
    feed.subscribe(held)
    await settles(rest, [1000, 1000], "two full connections")
    subscribed = events.kinds().count("subscribed")
    before = feed.subscriptions
    with pytest.raises(SubscriptionRefused) as refused:
        feed.subscribe([held[0], SBIN], mode=QUOTE)  # a mode change and one more: 2001 instruments
    assert str(refused.value).startswith("2001 instruments would pass SmartAPI's 2000 subscriptions per login "
                                         "(2 smart-stream sockets of 1000)")
    assert refused.value.requested == 2001
    assert feed.subscriptions == before and len(feed.sockets) == 2  # not even the mode change
    # The connections are ordered: once a later request is seen, anything sent before it would be too.
    feed.unsubscribe([held[-1]])
    feed.subscribe([SBIN])
    await ticks.wait(lambda t: t.token == SBIN[1], "SBIN, subscribed after the refusal")
    await settles(rest, [1000, 1000], "the swap, and nothing of the refused request")
    assert feed.socket_of(SBIN) == 2 and feed.subscriptions[held[0]] == 1
    assert events.kinds().count("subscribed") == subscribed + 1 and "error" not in events.kinds()  # SBIN alone


async def test_a_login_whose_other_connections_are_taken_opens_only_what_the_exchange_lets_it(feeds, paper_factory,
                                                                                               rest_factory):
    paper = paper_factory()
    rest = await rest_factory(paper)
    url = paper.url.replace("http://", "ws://") + "/smart-stream"
    headers = handshake_headers(rest.credentials)
    async with connect(url, additional_headers=headers) as first_tool, connect(url, additional_headers=headers):
        feed, ticks, events, rest = await feeds(paper=paper)
        others = contracts(rest, 1498)
        feed.subscribe([SBIN, *others[:999], INFY, *others[999:]])
        refused = await events.wait(lambda e: e.kind == "error" and e.socket == 2, "socket 2 refused by the exchange")
        assert "E1002" in refused.detail and "Connection Limit" in refused.detail
        await ticks.wait(lambda t: t.token == INFY[1], "socket 2's instruments priced by REST")
        assert feed.degraded_sockets == [2] and len(feed.sockets) == 2
        assert await connections(rest) == [0, 0, 1000]  # the two tools' and socket 1: the exchange's three
        await first_tool.close()
        await events.wait(lambda e: e.kind == "recovered" and e.socket == 2, "socket 2 once a connection is free")
        await settles(rest, [0, 500, 1000], "socket 2 in the freed place")
        assert not feed.degraded


async def test_a_handshake_refused_with_429_leaves_that_sockets_instruments_to_rest():
    """SmartAPI's documented answer to a connection past the limit: HTTP 429 on the handshake."""
    accepted: list[object] = []

    def one_connection(connection, request):
        if accepted:
            return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Connection limit exceeded\n")
        accepted.append(connection)
        return None

    async def quiet(ws) -> None:
        async for _ in ws:  # takes the subscriptions, never ticks
            pass

    asked: list[tuple[str, str]] = []

    async def rest_ltp(pairs: list[tuple[str, str]]) -> list[Tick]:
        asked.extend(pairs)
        return [Tick(token, exchange, 12_345, 0) for exchange, token in pairs]

    async def credentials() -> StreamCredentials:
        return StreamCredentials("P0001", "key", "jwt", "feed")

    # The test's own server: short handshake and close waits (the defaults are 10 s each), so a connection
    # caught mid-handshake by the shutdown cannot hold the test for long.
    async with serve(quiet, "127.0.0.1", 0, process_request=one_connection, open_timeout=2, close_timeout=1) as server:
        port = server.sockets[0].getsockname()[1]
        config = SmartApiConfig(root="http://127.0.0.1:9", stream_url=f"ws://127.0.0.1:{port}/smart-stream",
                                order_update_url="", clientcode="P0001", pin="", api_key="key", totp_secret="",
                                stream_stall_s=30.0, stream_sockets=2)
        feed = LoginFeed(config, credentials, rest_ltp, backoff=quick, fallback_every_s=0.05)
        ticks, events = Recorder(feed.ticks), Recorder(feed.events)
        await feed.start()
        try:
            feed.subscribe([("NFO", str(n)) for n in range(MAX_PAIRS + 1)])
            refused = await events.wait(lambda e: e.kind == "refused", "socket 2 refused")
            assert refused.socket == 2 and "HTTP 429" in refused.detail
            await ticks.wait(lambda t: t.token == str(MAX_PAIRS) and t.ltp == 12_345, "its instrument by REST")
            assert set(asked) == {("NFO", str(MAX_PAIRS))} and feed.degraded_sockets == [2]
            assert len(accepted) == 1 and [e.socket for e in events.items if e.kind == "connected"] == [1]
        finally:
            await bounded(feed.stop(), "the feed's stop")


async def test_expect_ticks_reaches_every_socket_and_each_asks_for_its_own_exchanges(feeds):
    asked: list[frozenset[str]] = []
    feed, ticks, events, rest = await feeds(stall_s=0.3)  # prices still: every socket is quiet
    feed.expect_ticks = lambda exchanges: asked.append(frozenset(exchanges)) or False
    nfo = [(i.exchange, i.token) for i in rest.paper.exchange.universe.instruments if i.exchange == "NFO"][:MAX_PAIRS]
    feed.subscribe([*nfo, SBIN])  # socket 2, opened after the judge was set, holds SBIN alone
    assert feed.socket_of(SBIN) == 2 and all(socket.expect_ticks is feed.expect_ticks for socket in feed.sockets)
    await until(lambda: {frozenset({"NFO"}), frozenset({"NSE"})} <= set(asked), "both sockets asking")
    assert set(asked) == {frozenset({"NFO"}), frozenset({"NSE"})} and "stalled" not in events.kinds()
    feed.expect_ticks = lambda exchanges: "NSE" in exchanges  # NSE open, NFO closed: only socket 2 may stall
    stalled = await events.wait(lambda e: e.kind == "stalled", "socket 2's silence in its session")
    assert stalled.socket == 2 and "1 instruments subscribed" in stalled.detail
    await asyncio.sleep(0.5)
    assert {e.socket for e in events.items if e.kind == "stalled"} == {2}


def test_a_socket_count_outside_one_to_three_is_refused(paper):
    async def never() -> None:
        raise AssertionError("not called")

    for bad in (0, 4, True):
        with pytest.raises(ValueError, match="stream_sockets must be 1 to 3"):
            LoginFeed(stream_config(paper, stream_sockets=bad), never, never)


def test_one_socket_refuses_past_its_thousand_and_says_so(paper):
    async def never() -> None:
        raise AssertionError("not called")

    feed = LoginFeed(stream_config(paper, stream_sockets=1), never, never)
    feed.subscribe([("NFO", str(n)) for n in range(MAX_PAIRS)])
    with pytest.raises(SubscriptionRefused, match=r"^1001 instruments would pass SmartAPI's 1000 subscriptions "
                                                  r"per login \(1 smart-stream socket of 1000\)"):
        feed.subscribe([SBIN])
    assert feed.held == MAX_PAIRS and len(feed.sockets) == 1
