"""SmartStream against the paper exchange's smart-stream: ticks, reconnects, stalls, bad frames, limits."""
from __future__ import annotations

import asyncio
import json

import pytest
from reactivex.internal import DisposedException
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from service.broker.port import TickStream
from service.broker.smartapi.data import (
    MAX_PAIRS,
    SUBSCRIBE_BATCH,
    LoopSubject,
    SmartStream,
    SubscriptionRefused,
    subscription_requests,
)
from service.broker.smartapi.frames import TickConnection
from service.broker.smartapi.parsing import QUOTE, SNAP_QUOTE
from service.broker.smartapi.reconnect import Backoff
from streams import Tick
from tests.service.broker.conftest import Recorder, bounded, stream_config, until

SBIN, INFY, RELIANCE = ("NSE", "3045"), ("NSE", "1594"), ("NSE", "2885")


@pytest.fixture
async def running(paper_factory, rest_factory):
    """start(stall_s=…, tick_ms=…) -> (stream, ticks, events, rest); every stream is stopped after the test."""
    streams: list[SmartStream] = []

    async def start(stall_s: float = 30.0, tick_ms: int = 0, **options):
        paper = paper_factory(tick_ms=tick_ms)
        rest = await rest_factory(paper)
        options.setdefault("backoff", Backoff(base_s=0.05, cap_s=0.5))
        stream = SmartStream(stream_config(paper, stream_stall_s=stall_s), rest.stream_credentials, rest.ltp, **options)
        ticks, events = Recorder(stream.ticks), Recorder(stream.events)
        await stream.start()
        streams.append(stream)
        return stream, ticks, events, rest

    yield start
    for stream in streams:
        await bounded(stream.stop(), "the stream's stop")


def live(token: str, ltp: int | None = None):
    return lambda tick: tick.token == token and (ltp is None or tick.ltp == ltp)


async def test_ticks_carry_the_prices_set_on_the_exchange(running):
    stream, ticks, events, rest = await running()
    assert isinstance(stream, TickStream)
    stream.subscribe([SBIN])
    stream.subscribe([INFY], mode=QUOTE)
    stream.subscribe([RELIANCE], mode=SNAP_QUOTE)
    await events.wait(lambda e: e.kind == "connected", "connected")
    await ticks.wait(live("2885"), "the snapshot tick on subscribing")
    await rest.set_ltp(812.5)
    await rest.set_ltp(1401.05, token="1594")
    await rest.set_ltp(2450.35, token="2885")
    sbin = await ticks.wait(live("3045", 81_250), "SBIN at 812.50")
    infy = await ticks.wait(live("1594", 140_105), "INFY at 1401.05")
    reliance = await ticks.wait(live("2885", 245_035), "RELIANCE at 2450.35")
    assert (sbin.exchange, sbin.bid, sbin.volume) == ("NSE", None, None)
    assert infy.volume is not None and infy.bid is None
    assert reliance.bid is not None and reliance.ask is not None and reliance.bid <= 245_035 <= reliance.ask
    assert not stream.degraded and rest.ltp_calls == []


async def test_dropped_sockets_reconnect_and_resubscribe(running):
    stream, ticks, events, rest = await running()
    stream.subscribe([SBIN, INFY])
    await ticks.wait(live("1594"), "the first tick")
    for n, how in enumerate(("abort", "close"), start=1):
        mark = len(events.items)
        await rest.control("/feed/drop", {"socket": "market", "how": how})
        await events.wait(lambda e: e.kind == "disconnected", f"disconnected after {how}", after=mark)
        await events.wait(lambda e: e.kind == "connected", f"connected again after {how}", after=mark)
        await rest.set_ltp(800 + n)
        await ticks.wait(live("3045", (800 + n) * 100), f"SBIN after reconnect {n}")
    state = await rest.feed()
    assert [c["subscriptions"] for c in state["market"]] == [2]
    assert events.kinds().count("subscribed") == 3  # first connection and both reconnects


async def test_stall_is_detected_rest_serves_meanwhile_and_the_feed_recovers(running):
    stream, ticks, events, rest = await running(stall_s=0.5, tick_ms=50)
    stream.subscribe([SBIN, INFY])
    await ticks.wait(live("3045"), "live ticks")
    await rest.control("/feed/stall")
    mark = len(ticks.items)
    stalled = await events.wait(lambda e: e.kind == "stalled", "the stall to be detected")
    assert "2 instruments" in stalled.detail
    served = await events.wait(lambda e: e.kind == "fallback-ltp", "REST LTP served")
    assert served.detail == "2 of 2 prices by REST"
    assert sorted(rest.ltp_calls[0]) == [INFY, SBIN]
    rest_ticks = [t for t in ticks.items[mark:] if isinstance(t, Tick)]
    assert {t.token for t in rest_ticks} >= {"3045", "1594"}
    assert stream.degraded
    closed = await events.wait(lambda e: e.kind == "disconnected", "the stalled socket closed")
    assert closed.detail == "stalled"
    await events.wait(lambda e: e.kind == "connected", "a new connection", after=events.items.index(closed))
    await rest.control("/feed/resume")
    await events.wait(lambda e: e.kind == "recovered", "recovery once frames flow")
    calls = len(rest.ltp_calls)
    await ticks.wait(live("1594"), "live ticks again", after=len(ticks.items))
    assert not stream.degraded
    assert len(rest.ltp_calls) <= calls + 1  # at most one REST round was in flight at recovery


async def test_malformed_frames_are_reported_and_survived(running):
    stream, ticks, events, rest = await running()
    stream.subscribe([SBIN])
    await ticks.wait(live("3045"), "the first tick")
    await rest.control("/feed/garbage",
                       {"kind": "truncated", "exchange": "NSE", "token": "3045", "mode": 1, "length": 30})
    await rest.control("/feed/garbage", {"kind": "binary"})
    await rest.control("/feed/garbage", {"kind": "text", "text": '{"garbage": tru'})
    await until(lambda: stream.malformed_frames == 3, "three malformed frames counted")
    reasons = [e.detail for e in events.items if e.kind == "malformed"]
    assert reasons[0].startswith("shorter than a LTP packet (30 B)")
    assert reasons[1].startswith("unknown subscription mode 9 (51 B)")
    assert reasons[2].startswith("text frame '{\"garbage\": tru'")
    await rest.set_ltp(777.7)
    await ticks.wait(live("3045", 77_770), "a tick after the garbage")
    assert events.kinds().count("connected") == 1


async def test_text_heartbeats_are_answered_and_pongs_are_no_news(running):
    stream, ticks, events, rest = await running(text_ping_s=0.02)
    stream.subscribe([SBIN])
    await ticks.wait(live("3045"), "the first tick")
    for n in range(5):  # a text ping goes out every 20 ms meanwhile, each answered with a text pong
        await asyncio.sleep(0.05)
        await rest.set_ltp(810 + n)
        await ticks.wait(live("3045", (810 + n) * 100), f"tick {n}")
    assert stream.malformed_frames == 0
    assert events.kinds().count("connected") == 1 and "error" not in events.kinds()


async def test_subscriptions_go_in_batches_up_to_the_limit_and_no_further(running):
    stream, ticks, events, rest = await running()
    await events.wait(lambda e: e.kind == "connected", "connected")
    tokens = [("NFO", str(100_000 + n)) for n in range(MAX_PAIRS - 1)] + [SBIN]
    stream.subscribe(tokens)
    with pytest.raises(SubscriptionRefused, match="1001 instruments would pass SmartAPI's 1000"):
        stream.subscribe([INFY])
    stream.subscribe([SBIN], mode=QUOTE)  # a move, not one more
    stream.subscribe(tokens[:10])  # already there: nothing to send
    assert len(stream.subscriptions) == MAX_PAIRS and stream.subscriptions[SBIN] == QUOTE
    await until(lambda: ticks.items and ticks.items[-1].volume is not None, "SBIN in QUOTE mode")
    state = await rest.feed()
    assert [c["subscriptions"] for c in state["market"]] == [MAX_PAIRS]
    assert "error" not in events.kinds()
    stream.unsubscribe([SBIN, ("NSE", "999999")])
    await until(lambda: stream.subscriptions.get(SBIN) is None, "SBIN gone")
    with pytest.raises(SubscriptionRefused, match="unknown exchange 'NASDAQ'"):
        stream.subscribe([("NASDAQ", "1")])
    with pytest.raises(SubscriptionRefused, match="mode 4"):
        stream.subscribe([SBIN], mode=4)


def test_requests_are_batched_by_mode_and_exchange():
    pairs = {("NFO", str(n)): 1 for n in range(SUBSCRIBE_BATCH + 1)} | {SBIN: 1, INFY: 3}
    requests = subscription_requests(1, pairs)
    assert len(requests) == 3  # two LTP requests (201 + 1 tokens over two exchanges), one SNAP_QUOTE

    first, second, snap = (json.loads(r) for r in requests)
    assert sum(len(e["tokens"]) for e in first["params"]["tokenList"]) == SUBSCRIBE_BATCH
    assert {e["exchangeType"] for e in second["params"]["tokenList"]} == {1, 2}
    assert snap["params"] == {"mode": 3, "tokenList": [{"exchangeType": 1, "tokens": ["1594"]}]}
    assert all(len(json.loads(r)["correlationID"]) <= 10 for r in requests)
    (unsubscribe,) = subscription_requests(0, {SBIN: QUOTE})
    assert json.loads(unsubscribe)["action"] == 0 and json.loads(unsubscribe)["params"]["mode"] == QUOTE


async def test_a_refused_handshake_asks_for_credentials_again(running):
    renewals: list[int] = []
    holder: dict = {}

    async def renew() -> None:
        renewals.append(1)
        await holder["rest"].login()

    stream, ticks, events, rest = await running(renew=renew)
    holder["rest"] = rest
    stream.subscribe([SBIN])
    await ticks.wait(live("3045"), "the first tick")
    await rest.client.post("/rest/secure/angelbroking/user/v1/logout", json={"clientcode": "P0001"})
    mark = len(events.items)
    await rest.control("/feed/drop", {"socket": "market"})
    refused = await events.wait(lambda e: e.kind == "refused", "the handshake refused", after=mark)
    assert "HTTP 401" in refused.detail and "Invalid Auth token" in refused.detail
    await events.wait(lambda e: e.kind == "connected", "connected with fresh credentials", after=mark)
    assert renewals
    await rest.set_ltp(805)
    await ticks.wait(live("3045", 80_500), "a tick on the new session")


async def test_silence_outside_the_session_is_not_a_stall(running):
    stream, ticks, events, rest = await running(stall_s=0.3, tick_ms=50)
    market_open = True
    asked: list[set[str]] = []
    stream.expect_ticks = lambda exchanges: asked.append(set(exchanges)) or market_open
    stream.subscribe([SBIN])
    await ticks.wait(live("3045"), "live ticks")
    market_open = False  # the segment closes: a quiet feed is expected now
    await rest.control("/feed/stall")
    import asyncio
    await asyncio.sleep(1.0)  # three stall periods of silence
    assert not [e for e in events.items if e.kind == "stalled"] and not stream.degraded
    assert asked and all(exchanges == {"NSE"} for exchanges in asked)  # the exchanges the socket carries
    market_open = True
    await events.wait(lambda e: e.kind == "stalled", "a stall once the session is open again")
    await rest.control("/feed/resume")


def test_the_tick_subject_broadcasts_in_order_and_observers_may_leave_while_called():
    subject: LoopSubject[int] = LoopSubject()
    first: list[int] = []
    second: list[int] = []
    leaving = None

    def once(value: int) -> None:
        second.append(value)
        leaving.dispose()  # unsubscribing from inside on_next: the others still get this value

    subject.subscribe(first.append)
    leaving = subject.subscribe(once)
    third = subject.subscribe(lambda value: first.append(value * 10))
    for value in (1, 2):
        subject.on_next(value)
    assert first == [1, 10, 2, 20] and second == [1]
    third.dispose()
    subject.on_completed()
    subject.on_next(3)  # after completion: nobody hears it
    assert first == [1, 10, 2, 20]
    subject.dispose()
    with pytest.raises(DisposedException):
        subject.on_next(4)


async def test_binary_messages_whole_or_fragmented_reach_the_tick_path_in_order_and_text_still_queues():
    async def exchange(ws) -> None:  # smart-stream sends nothing before a request either
        await ws.recv()
        await ws.send(b"one")
        await ws.send([b"tw", b"o"])  # one binary message in two frames
        await ws.send("pong")
        await ws.send(["frag", "ment"])  # a fragmented text message
        await ws.send(b"three")
        await ws.wait_closed()

    async with serve(exchange, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=TickConnection) as ws:
            assert isinstance(ws, TickConnection)
            binary: list[bytes] = []
            ws.on_binary = lambda message: binary.append(bytes(message))
            await ws.send("go")
            assert [await ws.recv(), await ws.recv()] == ["pong", "fragment"]
            await until(lambda: len(binary) == 3, "three binary messages")
    assert binary == [b"one", b"two", b"three"]
