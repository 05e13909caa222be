"""The reconnect machinery both SmartAPI sockets share (the sockets themselves: test_data, test_updates)."""
from __future__ import annotations

import asyncio
import logging

from service.broker.smartapi.config import StreamCredentials
from service.broker.smartapi.reconnect import Backoff, Reconnector, handshake_headers, stop_tasks


def test_backoff_is_full_jitter_capped_and_resets_after_a_healthy_minute():
    backoff = Backoff(base_s=0.5, cap_s=30.0, draw=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.connected_for(59.9)
    assert backoff.next_delay() == 30
    backoff.connected_for(60)
    assert backoff.next_delay() == 0.5
    assert Backoff(draw=lambda: 0.0).next_delay() == 0


def test_the_handshake_sends_the_jwt_as_a_bearer_token_once():
    bare = StreamCredentials(clientcode="P0001", api_key="key", jwt_token="eyJ.x.y", feed_token="feed")
    headers = handshake_headers(bare)
    assert headers == {"Authorization": "Bearer eyJ.x.y", "x-api-key": "key", "x-client-code": "P0001",
                       "x-feed-token": "feed"}
    prefixed = StreamCredentials(clientcode="P0001", api_key="key", jwt_token="Bearer eyJ.x.y", feed_token="feed")
    assert handshake_headers(prefixed)["Authorization"] == "Bearer eyJ.x.y"


async def swallowing(started: asyncio.Event, swallowed: list[str]) -> None:
    """A task whose first cancel is caught and dropped (what a library that turns a cancel into a
    timeout does), and that then goes on waiting."""
    started.set()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        swallowed.append("first")
    await asyncio.sleep(60)


async def test_a_stop_ends_even_when_a_task_swallows_its_cancel(caplog):
    started, swallowed = asyncio.Event(), []
    stubborn = asyncio.create_task(swallowing(started, swallowed), name="stubborn")
    polite = asyncio.create_task(asyncio.sleep(60), name="polite")
    await started.wait()
    with caplog.at_level(logging.WARNING, logger="service.broker.smartapi.reconnect"):
        await asyncio.wait_for(stop_tasks([stubborn, polite], "the test's stream", again_after_s=0.1), 5)
    assert stubborn.cancelled() and polite.cancelled() and swallowed == ["first"]
    warning, = [r.getMessage() for r in caplog.records]
    assert warning.startswith("the test's stream: task stubborn still running 0 s after its cancel (at ")
    assert "test_reconnect.py:" in warning and warning.endswith("; cancelling it again")


async def test_a_stop_retrieves_what_its_tasks_ended_with():
    async def fails() -> None:
        raise RuntimeError("a session's own fault")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await stop_tasks([task], "a stream")  # no "exception was never retrieved" later
    assert isinstance(task.exception(), RuntimeError)


async def test_a_cancel_turned_into_a_failed_attempt_still_ends_the_reconnect_loop():
    """The credentials provider stands for any await inside an attempt that reports a cancel as a failure."""
    asked, reports = asyncio.Event(), []

    async def credentials() -> StreamCredentials:
        asked.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("login interrupted") from None
        raise AssertionError("never answered")

    link = Reconnector("ws://127.0.0.1:9/", credentials, lambda kind, detail: reports.append(kind),
                       backoff=Backoff(base_s=0.0))
    loop = asyncio.create_task(link.run(lambda ws: asyncio.sleep(0), lambda: None))
    await asyncio.wait_for(asked.wait(), 5)
    loop.cancel()
    done, _ = await asyncio.wait({loop}, timeout=5)
    assert done and loop.cancelled() and reports == []  # ended at once: no refusal reported, no new attempt
