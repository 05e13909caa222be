"""Leases and the fence against the local NATS server, TTL 1 s, each test on its own bucket."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import nats.js.errors
import pytest

from service.cluster.bus import Bus
from service.cluster.lease import Fence, Lease
from tests.support.nats import NATS_URL, bus, free_port, own_server, unique_prefix
from tests.support.waiting import until

ROOT = Path(__file__).resolve().parents[2]
TTL_S = 1.0


@pytest.fixture
async def the_bus():
    async with bus(lease_ttl_s=TTL_S) as connected:
        yield connected


@pytest.fixture
async def fence(the_bus):
    watching = Fence(the_bus)
    await watching.start()
    yield watching
    await watching.stop()


async def stored(the_bus, name: str) -> dict:
    entry = await the_bus.kv.get(name)
    return json.loads(entry.value)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("name", ["", "a.b", "a*", "a b", "a#b", "ü"])
def test_a_bad_lease_name_is_refused(name):
    with pytest.raises(ValueError, match="lease name"):
        Lease(Bus(lease_ttl_s=TTL_S), name, "me")


def test_renewing_must_be_quicker_than_the_ttl():
    with pytest.raises(ValueError, match="renew_every_s"):
        Lease(Bus(lease_ttl_s=TTL_S), "guard-0-of-1", "me", renew_every_s=TTL_S)


async def test_of_two_racing_for_a_lease_exactly_one_wins(the_bus):
    first, second = Lease(the_bus, "guard-0-of-2", "a"), Lease(the_bus, "guard-0-of-2", "b")
    tokens = await asyncio.gather(first.try_acquire(), second.try_acquire())
    (winner,) = [lease for lease, token in zip((first, second), tokens) if token is not None]
    loser = second if winner is first else first
    assert tokens.count(None) == 1 and winner.held() and winner.token == max(t for t in tokens if t)
    assert not loser.held() and loser.token is None and await loser.try_acquire() is None
    await winner.release()


async def test_renewals_keep_the_lease_and_its_token_past_many_ttls(the_bus):
    holder, standby = Lease(the_bus, "guard-0-of-1", "holder"), Lease(the_bus, "guard-0-of-1", "standby")
    token = await holder.try_acquire()
    for _ in range(int(3 * TTL_S / 0.1)):  # three TTLs: the key would have lapsed twice over unrenewed
        assert await standby.try_acquire() is None
        await asyncio.sleep(0.1)
    assert holder.held() and holder.token == token
    value = await stored(the_bus, "guard-0-of-1")
    assert (value["holder"], value["token"]) == ("holder", token)  # a renewal, not the creating write
    await holder.release()


async def test_a_released_lease_goes_to_the_standby_with_a_higher_token(the_bus, fence):
    holder, standby = Lease(the_bus, "guard-1-of-2", "holder"), Lease(the_bus, "guard-1-of-2", "standby")
    old = await holder.try_acquire()
    assert old is not None and await standby.try_acquire() is None
    await holder.release()
    assert holder.token is None and holder.lost.is_set() and not holder.held()
    new = await standby.try_acquire()  # at once: the key was deleted, not left to lapse
    assert new is not None and new > old
    await until(lambda: fence.newest("guard-1-of-2") == new, "the fence to see the new holder")
    assert not await fence.admits("guard-1-of-2", old) and await fence.admits("guard-1-of-2", new)
    await holder.release()  # a second release deletes nothing of the standby's
    assert (await stored(the_bus, "guard-1-of-2"))["holder"] == "standby" and standby.held()
    await standby.release()
    assert fence.newest("guard-1-of-2") == new  # deleted keys are not forgotten


async def test_a_holder_that_stops_renewing_loses_the_key_after_the_ttl(the_bus):
    holder, standby = Lease(the_bus, "guard-0-of-1", "holder"), Lease(the_bus, "guard-0-of-1", "standby")
    old = await holder.try_acquire()
    holder._renewal.cancel()  # a holder stalled without pausing its clock
    new = await asyncio.wait_for(standby.acquire(poll_s=0.05), timeout=10 * TTL_S)
    assert new > old and not holder.held()
    await standby.release()


async def test_held_turns_false_by_the_holders_own_clock_then_the_lease_is_lost_and_freed(the_bus):
    clock = Clock()
    holder = Lease(the_bus, "guard-0-of-1", "holder", clock=clock)
    token = await holder.try_acquire()
    assert holder.held()
    clock.now += TTL_S  # a pause as long as the TTL, as the holder's clock sees it
    assert not holder.held() and holder.token == token  # before any renewal is tried
    await asyncio.wait_for(holder.lost.wait(), timeout=5 * TTL_S)
    assert holder.token is None
    with pytest.raises(nats.js.errors.KeyNotFoundError):  # our last write deleted, not left to lapse
        await the_bus.kv.get("guard-0-of-1")


async def test_a_fence_that_starts_late_knows_the_current_holder(the_bus):
    holder = Lease(the_bus, "guard-0-of-1", "holder")
    token = await holder.try_acquire()
    late = Fence(the_bus)
    await late.start()
    try:
        assert late.newest("guard-0-of-1") == token and late.newest("guard-9-of-10") is None
    finally:
        await late.stop()
        await holder.release()


async def test_a_fence_that_never_watched_reads_the_key_for_a_token_it_does_not_know(the_bus):
    first, second = Lease(the_bus, "guard-0-of-1", "first"), Lease(the_bus, "guard-0-of-1", "second")
    old = await first.try_acquire()
    await first.release()
    new = await second.try_acquire()
    restarted = Fence(the_bus)  # an executor that just restarted: no watch yet
    assert not await restarted.admits("guard-0-of-1", old)
    assert await restarted.admits("guard-0-of-1", new)
    assert await restarted.admits("guard-5-of-6", 3)  # no key, nothing newer known
    await second.release()


async def test_the_fence_keeps_watching_when_the_server_comes_back(tmp_path):
    port = free_port()
    the_bus = Bus(f"nats://127.0.0.1:{port}", unique_prefix(), lease_ttl_s=TTL_S)
    fence = Fence(the_bus)
    async with own_server(port, tmp_path):
        await the_bus.connect()
        await fence.start()
        first = Lease(the_bus, "guard-0-of-1", "first")
        old = await first.try_acquire()
        await until(lambda: fence.newest("guard-0-of-1") == old, "the fence to see the first holder")
    async with own_server(port, tmp_path):  # the same store: the bucket is kept
        await until(lambda: the_bus.nc.is_connected, "the bus to reconnect", timeout=15)
        await first.release()  # renewing again, it would keep the lease: hand it over
        second = Lease(the_bus, "guard-0-of-1", "second")
        new = await asyncio.wait_for(second.acquire(poll_s=0.05), timeout=10 * TTL_S)
        assert new > old
        await until(lambda: fence.newest("guard-0-of-1") == new, "the fence to see the second holder", timeout=15)
        await second.release()
        await fence.stop()
        await the_bus.close()


async def test_a_paused_holder_finds_it_lost_the_lease_and_the_fence_refuses_its_token(the_bus, fence):
    """A real pause: the holder in its own process, SIGSTOPped past the TTL while a standby takes over."""
    name = "guard-0-of-1"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cluster.lease_holder", NATS_URL, the_bus.prefix, name, str(TTL_S),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE)
    try:
        old = (await said(holder))["token"]
        await until(lambda: fence.newest(name) == old, "the fence to see the holder")
        standby = Lease(the_bus, name, "standby")
        assert await standby.try_acquire() is None  # the holder renews
        holder.send_signal(signal.SIGSTOP)
        new = await asyncio.wait_for(standby.acquire(poll_s=0.05), timeout=10 * TTL_S)
        assert new > old
        holder.send_signal(signal.SIGCONT)
        woke = await said(holder)
        assert woke["held"] is False
        assert (await said(holder))["lost"] == old
        assert await asyncio.wait_for(holder.wait(), timeout=10) == 0
        await until(lambda: fence.newest(name) == new, "the fence to see the standby")
        assert not await fence.admits(name, old) and await fence.admits(name, new)
        value = await stored(the_bus, name)  # the woken holder wrote nothing over the standby's key
        assert value["holder"] == "standby" and standby.held() and standby.token == new
        await standby.release()
    finally:
        if holder.returncode is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
            await holder.wait()


async def said(process: asyncio.subprocess.Process, timeout_s: float = 15) -> dict:
    line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
    assert line, f"the holder exited ({await process.wait()}) without saying anything"
    return json.loads(line)
