"""The cluster's bus against the local NATS server (`scripts/ensure-nats`), each test on its own prefix."""
from __future__ import annotations

import asyncio
import logging

import pytest

from service.cluster.bus import Bus, BusError, Message
from tests.support.nats import NATS_URL, bus, drop, free_port, own_server, unique_prefix
from tests.support.waiting import until


@pytest.fixture
async def the_bus():
    async with bus() as connected:
        yield connected


async def stored(the_bus: Bus, stream: str) -> int:
    """How many messages the stream holds now."""
    assert the_bus.js is not None
    name = {"CMD": the_bus.cmd_stream, "EVT": the_bus.evt_stream}[stream]
    return (await the_bus.js.stream_info(name)).state.messages


async def taken(commands, want: int, timeout_s: float = 5) -> list[Message]:
    """`want` commands from `commands.next`, pulled until they came or the deadline passed."""
    got: list[Message] = []

    async def more() -> bool:
        got.extend(await commands.next(batch=want - len(got), timeout_s=0.2))
        return len(got) >= want
    await until(more, f"{want} commands", timeout=timeout_s)
    return got


# ---- names

def test_subjects_are_the_prefix_and_checked_parts():
    b = Bus(prefix="tg-x.y")
    assert b.subject("cmd", "A123") == "tg-x.y.cmd.A123"
    assert (b.stream_prefix, b.cmd_stream, b.evt_stream, b.lease_bucket) == ("TG-X_Y", "TG-X_Y_CMD", "TG-X_Y_EVT", "TG-X_Y_leases")


@pytest.mark.parametrize("part", ["", "a.b", "a*", ">", "a b", "tab\there", "new\nline"])
def test_a_bad_subject_part_is_refused_by_name(part):
    with pytest.raises(ValueError) as refused:
        Bus().subject("cmd", part)
    assert repr(part) in str(refused.value)


@pytest.mark.parametrize("prefix", ["", "a..b", "a*", "x y", "a.>"])
def test_a_bad_prefix_is_refused(prefix):
    with pytest.raises(ValueError):
        Bus(prefix=prefix)


async def test_a_server_that_does_not_answer_is_a_clear_error():
    port = free_port()  # nothing listens there
    b = Bus(f"nats://127.0.0.1:{port}", unique_prefix(), connect_timeout_s=0.5)
    with pytest.raises(BusError) as refused:
        await b.connect()
    assert f"127.0.0.1:{port}" in str(refused.value) and "ensure-nats" in str(refused.value)
    await b.close()  # closing a bus that never connected is harmless


async def test_a_server_without_jetstream_is_a_clear_error():
    port = free_port()
    async with own_server(port, store=None):
        b = Bus(f"nats://127.0.0.1:{port}", unique_prefix())
        with pytest.raises(BusError, match="JetStream does not answer"):
            await b.connect()
        await b.close()


async def test_the_bus_reconnects_when_the_server_comes_back(tmp_path):
    port = free_port()
    b = Bus(f"nats://127.0.0.1:{port}", unique_prefix())
    seen: list[bytes] = []
    async with own_server(port, tmp_path):
        await b.connect()
        commands = await b.commands("A")
        follow = await b.follow(f"{b.prefix}.evt.>", lambda message: seen.append(message.data))
        await b.publish(b.subject("evt", "x"), b"before")
        await until(lambda: seen == [b"before"], "the first event")
    async with own_server(port, tmp_path):  # the same store: the streams and the consumer are kept
        await until(lambda: b.nc.is_connected, "the bus to reconnect", timeout=15)
        assert await b.publish(b.subject("cmd", "A"), b"after", msg_id="c1")
        (command,) = await taken(commands, 1)
        await command.ack()
        await b.publish(b.subject("evt", "x"), b"after")
        await until(lambda: seen == [b"before", b"after"], "the event after the restart", timeout=15)
        await follow.stop()
        await b.close()


# ---- streams

async def test_connect_makes_the_streams_and_the_lease_bucket(the_bus):
    js = the_bus.js
    cmd = (await js.stream_info(the_bus.cmd_stream)).config
    evt = (await js.stream_info(the_bus.evt_stream)).config
    kv = (await js.stream_info(f"KV_{the_bus.lease_bucket}")).config
    assert (cmd.subjects, cmd.retention, cmd.storage, cmd.duplicate_window, cmd.max_age) == (
        [f"{the_bus.prefix}.cmd.>"], "workqueue", "file", 600, 7 * 86400)
    assert (evt.subjects, evt.retention, evt.storage, evt.duplicate_window, evt.max_age) == (
        [f"{the_bus.prefix}.evt.>"], "limits", "file", 120, 86400)
    assert (kv.max_age, kv.max_msgs_per_subject) == (the_bus.lease_ttl_s, 1)


async def test_two_processes_connecting_at_once_both_succeed_and_a_new_ttl_updates_the_bucket():
    prefix = unique_prefix()
    first, second = Bus(NATS_URL, prefix), Bus(NATS_URL, prefix)
    try:
        await asyncio.gather(first.connect(), second.connect())
        assert first.kv is not None and second.kv is not None
        assert await first.publish(first.subject("evt", "x"), b"1") and await second.last_seq() == 1
        async with bus(prefix, lease_ttl_s=2.5) as third:
            info = await third.js.stream_info(f"KV_{third.lease_bucket}")
            assert info.config.max_age == 2.5
            assert await third.last_seq() == 1  # the event log kept, not recreated
    finally:
        await first.close()
        await second.close()
        await first.close()  # twice is harmless
        await drop(first)


async def test_a_duplicate_msg_id_is_dropped(the_bus):
    subject = the_bus.subject("evt", "trade", "7")
    assert await the_bus.publish(subject, b"opened", msg_id="trade-7-opened") is True
    assert await the_bus.publish(subject, b"opened again", msg_id="trade-7-opened") is False
    assert await the_bus.publish(subject, b"closed", msg_id="trade-7-closed") is True
    assert await stored(the_bus, "EVT") == 2
    assert await the_bus.last_seq("EVT") == 2


async def test_a_subject_no_stream_takes_is_refused(the_bus):
    with pytest.raises(BusError, match="no stream stores"):
        await the_bus.publish(the_bus.subject("elsewhere", "x"), b"lost")


# ---- commands

async def test_each_login_sees_only_its_own_commands(the_bus):
    for login, n in (("A", 3), ("B", 2)):
        for i in range(n):
            await the_bus.publish(the_bus.subject("cmd", login), f"{login}{i}".encode(), msg_id=f"{login}-{i}")
    a, b = await the_bus.commands("A"), await the_bus.commands("B")
    got_a, got_b = await taken(a, 3), await taken(b, 2)
    assert [m.data for m in got_a] == [b"A0", b"A1", b"A2"] and {m.subject for m in got_a} == {the_bus.subject("cmd", "A")}
    assert [m.data for m in got_b] == [b"B0", b"B1"]
    assert [m.msg_id for m in got_b] == ["B-0", "B-1"] and all(m.deliveries == 1 for m in got_a + got_b)
    assert await a.next(timeout_s=0.2) == [] and await b.next(timeout_s=0.2) == []


async def test_a_nak_redelivers_the_command(the_bus):
    await the_bus.publish(the_bus.subject("cmd", "A"), b"buy", msg_id="c1")
    commands = await the_bus.commands("A")
    (first,) = await taken(commands, 1)
    await first.nak()
    (again,) = await taken(commands, 1)
    assert (again.data, again.msg_id, again.seq, again.deliveries) == (b"buy", "c1", first.seq, 2)


async def test_an_unacknowledged_command_goes_to_the_next_executor_after_ack_wait(the_bus):
    await the_bus.publish(the_bus.subject("cmd", "A"), b"sell", msg_id="c2")
    crashed = await the_bus.commands("A", ack_wait_s=1)
    (first,) = await taken(crashed, 1)
    assert first.deliveries == 1
    await crashed.close()  # the executor dies holding it
    restarted = await the_bus.commands("A", ack_wait_s=1)
    (again,) = await taken(restarted, 1, timeout_s=10)
    assert (again.data, again.seq, again.deliveries) == (b"sell", first.seq, 2)
    await again.ack()
    await until(lambda: _none_pending(restarted), "the work queue to be empty")


async def _none_pending(commands) -> bool:
    return await commands.pending() == 0


async def test_an_acknowledged_command_is_gone(the_bus):
    for i in range(2):
        await the_bus.publish(the_bus.subject("cmd", "A"), b"x", msg_id=f"c{i}")
    commands = await the_bus.commands("A")
    assert await commands.pending() == 2
    done, kept = await taken(commands, 2)
    await done.in_progress()
    await done.ack()
    await until(lambda: _pending_is(commands, 1), "one command left")
    await kept.ack()
    await until(lambda: _none_pending(commands), "no command left")
    await until(lambda: _stored_is(the_bus, "CMD", 0), "the work queue to drop acknowledged commands")


async def _pending_is(commands, n: int) -> bool:
    return await commands.pending() == n


async def _stored_is(the_bus: Bus, stream: str, n: int) -> bool:
    return await stored(the_bus, stream) == n


# ---- events

async def test_follow_from_a_sequence_sees_exactly_the_later_events_in_order(the_bus):
    subject = the_bus.subject("evt", "trade", "1")
    for i in range(2):
        await the_bus.publish(subject, f"old{i}".encode())
    snapshot = await the_bus.last_seq()
    for i in range(3):
        await the_bus.publish(subject, f"new{i}".encode())
    await the_bus.publish(the_bus.subject("evt", "other", "1"), b"not followed")
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        await message.ack()  # nothing to acknowledge: harmless
        seen.append(message)
    follow = await the_bus.follow(f"{the_bus.prefix}.evt.trade.*", handler, after_seq=snapshot)
    await the_bus.publish(subject, b"live")
    await the_bus.publish(the_bus.subject("evt", "trade", "2"), b"end")
    await until(lambda: seen and seen[-1].data == b"end", "the last event")
    assert [m.data for m in seen] == [b"new0", b"new1", b"new2", b"live", b"end"]
    assert [m.seq for m in seen] == [3, 4, 5, 7, 8]
    await follow.stop()
    await follow.stop()


async def test_follow_without_a_sequence_sees_only_new_events_and_survives_a_failing_handler(the_bus, caplog):
    subject = the_bus.subject("evt", "halt")
    await the_bus.publish(subject, b"before")
    seen: list[bytes] = []

    def handler(message: Message) -> None:  # a plain function will do
        if message.data == b"bad":
            raise RuntimeError("handler broke")
        seen.append(message.data)
    follow = await the_bus.follow(f"{the_bus.prefix}.evt.>", handler)
    with caplog.at_level(logging.ERROR, logger="tickguard.cluster"):
        for data in (b"after", b"bad", b"later"):
            await the_bus.publish(subject, data)
        await until(lambda: b"later" in seen, "the event after the failure")
    assert seen == [b"after", b"later"]
    assert "handler failed" in caplog.text
    await follow.stop()


async def test_follow_refuses_a_subject_outside_the_event_log(the_bus):
    for bad in (the_bus.subject("cmd", "A"), f"{the_bus.prefix}.evt..x", f"{the_bus.prefix}.evt.a b"):
        with pytest.raises(ValueError):
            await the_bus.follow(bad, lambda message: None)
    with pytest.raises(ValueError):
        await the_bus.follow(f"{the_bus.prefix}.evt.>", lambda message: None, after_seq=-1)


# ---- core NATS

async def test_notify_reaches_listeners_until_they_stop(the_bus):
    subject = the_bus.subject("price", "SBIN")
    stopped_saw: list[bytes] = []
    still_saw: list[Message] = []
    stopped = await the_bus.listen(subject, lambda message: stopped_saw.append(message.data))
    still = await the_bus.listen(subject, still_saw.append)
    await the_bus.notify(subject, b"812.5")
    await until(lambda: stopped_saw and still_saw, "both listeners")
    await stopped.stop()
    await the_bus.notify(subject, b"813")
    await until(lambda: len(still_saw) == 2, "the second price")
    assert stopped_saw == [b"812.5"] and [m.data for m in still_saw] == [b"812.5", b"813"]
    assert (still_saw[0].seq, still_saw[0].deliveries, still_saw[0].msg_id) == (0, 1, None)
    await still_saw[0].ack()  # nothing to acknowledge: harmless
    await still.stop()


async def test_a_closed_bus_says_so(the_bus):
    await the_bus.close()
    with pytest.raises(BusError, match="not connected"):
        await the_bus.publish(the_bus.subject("evt", "x"), b"late")
    with pytest.raises(BusError, match="not connected"):
        await the_bus.notify(the_bus.subject("price", "x"), b"late")


async def test_a_recreated_follow_consumer_neither_replays_nor_repeats(the_bus):
    """nats-py recreates an ordered consumer after a gap or a missed heartbeat, from the last sequence it
    delivered — 0 before the first. Forced here, before any event came: nothing old may come back."""
    subject = the_bus.subject("evt", "trade", "1")
    for i in range(3):
        await the_bus.publish(subject, f"old{i}".encode())
    seen: list[bytes] = []
    follow = await the_bus.follow(f"{the_bus.prefix}.evt.>", lambda message: seen.append(message.data))
    jsi = follow._sub._sub._jsi
    await jsi.reset_ordered_consumer(jsi._sseq + 1)
    await the_bus.publish(subject, b"new")
    await until(lambda: b"new" in seen, "the new event")
    await the_bus.publish(subject, b"end")
    await until(lambda: b"end" in seen, "the last event")
    assert seen == [b"new", b"end"]
    await follow.stop()


async def test_follow_calls_an_async_handler_one_event_at_a_time(the_bus):
    running, most, seen = 0, 0, []

    async def handler(message: Message) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        seen.append(message.seq)
        running -= 1
    follow = await the_bus.follow(f"{the_bus.prefix}.evt.>", handler, after_seq=0)
    for i in range(5):
        await the_bus.publish(the_bus.subject("evt", "n", str(i)), b"x")
    await until(lambda: len(seen) == 5, "five events")
    assert (seen, most) == ([1, 2, 3, 4, 5], 1)
    await follow.stop()
