"""The outbox (`service.cluster.outbox`) against a real JetStream stream of the test's own (duplicate
window set): commands committed in a write are published once each, in id order, and marked; a crash
between publish and mark, the bus down, two processes draining at once and rows a dead process left
behind all end with each command in the stream exactly once."""
from __future__ import annotations

import asyncio
import uuid

import nats
import psycopg
import pytest
from nats.js.api import StreamConfig

from service.cluster.outbox import BadCommand, Outbox
from service.pg import advisory_key
from service.store import Store
from tests.support.postgres import fresh_database
from tests.support.waiting import until

NATS_URL = "nats://127.0.0.1:4222"


class Bus:
    """A stream of the test's own on the local server, and a publish function for the outbox."""

    def __init__(self, js, stream: str, prefix: str) -> None:
        self.js = js
        self.stream = stream
        self.prefix = prefix
        self.down = False  # publishing raises, as when the server is unreachable
        self.sent: list[str] = []  # msg ids in the order the outbox published them, duplicates too

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> bool:
        if self.down:
            raise nats.errors.NoServersError()
        ack = await self.js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        self.sent.append(msg_id)
        return not ack.duplicate

    async def stored(self) -> list[tuple[str, str, bytes]]:
        """(subject, msg id, payload) of every message in the stream, in stream order."""
        count = (await self.js.stream_info(self.stream)).state.messages
        messages = [await self.js.get_msg(self.stream, seq) for seq in range(1, count + 1)]
        return [(m.subject, m.headers["Nats-Msg-Id"], m.data) for m in messages]


@pytest.fixture
async def bus():
    connection = await nats.connect(NATS_URL)
    js = connection.jetstream()
    prefix = f"tgtest{uuid.uuid4().hex[:12]}"
    stream = prefix.upper()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"], duplicate_window=600))
    yield Bus(js, stream, prefix)
    await js.delete_stream(stream)
    await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        store = Store(tmp_path / "tickguard.db", synchronous="NORMAL")
        store.open()
        yield store
        await store.close()
        return
    with fresh_database() as url:
        store = Store(url)
        store.open()
        yield store
        await store.close()


@pytest.fixture
async def pg_stores():
    """Two stores on one PostgreSQL database, as two processes have."""
    with fresh_database() as url:
        stores = [Store(url), Store(url)]
        for store in stores:
            store.open()
        yield stores
        for store in stores:
            await store.close()


@pytest.fixture
async def outboxes():
    """Every outbox a test makes, stopped after it (even when it fails)."""
    made: list[Outbox] = []

    def make(*args, **kwargs) -> Outbox:
        made.append(Outbox(*args, **kwargs))
        return made[-1]
    yield make
    for outbox in made:
        await outbox.stop()

def commands(bus: Bus, first: int, count: int) -> list[tuple[str, str, bytes]]:
    return [(f"{bus.prefix}.orders.A{n % 3}", f"cmd-{n}", f'{{"n":{n}}}'.encode()) for n in range(first, first + count)]


async def add(store: Store, rows: list[tuple[str, str, bytes]], now_ms: int = 1_000) -> None:
    """`rows` committed in one write, as an intake adds an alert's commands."""
    def work(db) -> None:
        for subject, msg_id, payload in rows:
            Outbox.add(db, subject=subject, msg_id=msg_id, payload=payload, now_ms=now_ms)
    await store.db.write(work)


async def unpublished(store: Store) -> list[str]:
    return await store.db.read(lambda db: [r[0] for r in db.execute(
        "SELECT msg_id FROM outbox WHERE published_ms IS NULL ORDER BY id")])


async def none_left(store: Store) -> bool:
    return await unpublished(store) == []


async def test_commands_added_in_a_write_are_published_once_each_in_id_order_and_marked(store, bus, outboxes):
    outbox = outboxes(store, bus.publish, batch=8)  # several batches
    rows = commands(bus, 0, 12) + commands(bus, 12, 8)
    await add(store, rows[:12])
    await add(store, rows[12:])
    outbox.kick()
    await until(lambda: outbox.published == 20, "every command published")
    assert await bus.stored() == rows
    await until(lambda: none_left(store), "every row marked")
    assert await outbox.drain() == 0  # nothing left: nothing published again
    assert (outbox.published, outbox.duplicates, len(await bus.stored())) == (20, 0, 20)


async def test_a_kick_during_a_drain_drains_again_after_it(store, bus, outboxes):
    """Rows committed after a drain read its batch are published by the drain a kick queued behind it."""
    release = asyncio.Event()
    held = asyncio.Event()

    async def slow_publish(subject: str, payload: bytes, msg_id: str) -> bool:
        if msg_id == "cmd-0":
            held.set()
            await release.wait()
        return await bus.publish(subject, payload, msg_id)

    outbox = outboxes(store, slow_publish)
    await add(store, commands(bus, 0, 3))
    outbox.kick()
    await held.wait()  # the first drain has read rows 0-2 and waits on the bus
    await add(store, commands(bus, 3, 3))
    for _ in range(3):
        outbox.kick()
    release.set()
    await until(lambda: outbox.published == 6, "the rows added during the drain published")
    assert [msg_id for _, msg_id, _ in await bus.stored()] == [f"cmd-{n}" for n in range(6)]
    assert bus.sent == [f"cmd-{n}" for n in range(6)]  # each once: the kicks made one more drain


async def test_a_crash_between_publish_and_mark_publishes_again_and_the_stream_keeps_one_copy(store, bus, outboxes):
    outbox = outboxes(store, bus.publish)
    rows = commands(bus, 0, 10)
    await add(store, rows)

    async def crash(ids: list[int], now_ms: int) -> int:
        raise OSError("the process died before its mark was written")

    marking, outbox._mark = outbox._mark, crash
    assert await outbox.drain() == 0
    assert outbox.published == 10 and len(await unpublished(store)) == 10
    outbox._mark = marking
    assert await outbox.drain() == 10  # published again: the server drops them
    assert (outbox.published, outbox.duplicates) == (10, 10)
    assert await bus.stored() == rows
    assert await unpublished(store) == []


async def test_the_bus_down_leaves_rows_unpublished_and_a_later_drain_sends_them_in_order(store, bus, outboxes):
    outbox = outboxes(store, bus.publish)
    rows = commands(bus, 0, 6)
    await add(store, rows)
    bus.down = True
    assert await outbox.drain() == 0
    assert len(await unpublished(store)) == 6 and outbox.published == 0

    fails_at = {"cmd-3"}  # the bus goes down in the middle of a batch: what it acked is marked, the rest waits

    async def flaky(subject: str, payload: bytes, msg_id: str) -> bool:
        if msg_id in fails_at:
            raise nats.errors.TimeoutError()
        return await bus.publish(subject, payload, msg_id)

    bus.down = False
    outbox.publish = flaky
    assert await outbox.drain() == 3
    assert await unpublished(store) == ["cmd-3", "cmd-4", "cmd-5"]
    fails_at.clear()
    assert await outbox.drain() == 3
    assert await bus.stored() == rows and outbox.duplicates == 0


async def test_the_sweep_publishes_rows_a_dead_process_left_once_they_are_stale(store, bus, outboxes):
    now = [1_000.0]
    outbox = outboxes(store, bus.publish, sweep_s=0.01, stale_s=1.0, clock=lambda: now[0])
    rows = commands(bus, 0, 5)
    await add(store, rows, now_ms=1_000_000)  # added, never kicked: their process died
    await outbox.start()
    await until(lambda: outbox.sweeps >= 3, "three sweeps")
    assert outbox.published == 0  # fresh rows are their own process's to publish
    now[0] += 2.0
    await until(lambda: outbox.published == 5, "the stale rows swept out")
    assert await bus.stored() == rows


async def test_two_processes_draining_at_once_publish_each_of_500_commands_once_in_order(pg_stores, bus, outboxes):
    pair = [outboxes(store, bus.publish, batch=32) for store in pg_stores]
    rows = commands(bus, 0, 500)
    for start in range(0, 500, 50):
        await add(pg_stores[start // 50 % 2], rows[start:start + 50])
    marked = await asyncio.gather(*(outbox.drain() for outbox in pair * 2))
    assert sum(marked) == 500
    assert await bus.stored() == rows
    assert await unpublished(pg_stores[0]) == []
    # they took turns, each publishing only what the other had not
    assert (sum(o.published for o in pair), sum(o.duplicates for o in pair)) == (500, 0)
    assert all(outbox.published for outbox in pair)  # the server hands the turn over in the order asked


async def test_a_drainer_holding_its_turn_too_long_is_drained_beside(pg_stores, bus, outboxes):
    store = pg_stores[0]
    outbox = outboxes(store, bus.publish, lock_wait_s=0.05)
    rows = commands(bus, 0, 4)
    await add(store, rows)
    with psycopg.connect(store.db.path, autocommit=True) as hung:  # a frozen process, its connection open
        hung.execute("SELECT pg_advisory_lock(%s)", (advisory_key("outbox", "drain"),))
        assert await outbox.drain() == 4
    assert await bus.stored() == rows


async def test_stop_calls_off_a_wait_for_the_turn(pg_stores, bus, outboxes):
    store = pg_stores[0]
    outbox = outboxes(store, bus.publish)  # waits up to 5 s for the turn
    await add(store, commands(bus, 0, 1))
    with psycopg.connect(store.db.path, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (advisory_key("outbox", "drain"),))
        outbox.kick()
        await until(lambda: store.db.read(lambda db: db.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0]),
            "the outbox waiting for its turn")
        await outbox.stop()
        assert await store.db.read(lambda db: db.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0]) == 0
    assert outbox.published == 0 and len(await unpublished(store)) == 1


async def test_add_refuses_a_command_it_could_not_publish_and_keeps_the_first_of_an_id(store, bus, outboxes):
    def adding(**command):
        return store.db.write(lambda db: Outbox.add(db, now_ms=1, **{"subject": f"{bus.prefix}.orders",
                                                                    "msg_id": "m1", "payload": "{}", **command}))
    for field, value in [("subject", ""), ("subject", f"{bus.prefix}.*"), ("subject", f"{bus.prefix}..x"),
                         ("subject", f"{bus.prefix}.a b"), ("msg_id", ""), ("msg_id", "m 1"),
                         ("payload", b"\xff\xfe")]:
        with pytest.raises(BadCommand) as refused:
            await adding(**{field: value})
        assert refused.value.field == field
    await adding(payload=b'{"first":1}')
    await adding(payload='{"second":2}')
    assert await store.db.read(lambda db: [r[0] for r in db.execute("SELECT payload FROM outbox")]) == ['{"first":1}']
    with pytest.raises(ValueError, match="batch"):
        Outbox(store, bus.publish, batch=0)


async def test_a_lost_connection_for_the_turn_is_made_again(pg_stores, bus, outboxes):
    store = pg_stores[0]
    outbox = outboxes(store, bus.publish)
    await add(store, commands(bus, 0, 2))
    assert await outbox.drain() == 2
    with psycopg.connect(store.db.path, autocommit=True) as admin:  # the server drops the turn's connection
        ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                              " AND datname = current_database() AND query LIKE %s",  # (other tests share the server)
                              ("%pg_advisory_unlock_all%",)).fetchall()
        assert ended == [(True,)]
    await add(store, commands(bus, 2, 2))
    assert await outbox.drain() == 0  # the pass found its connection gone (logged)
    assert await outbox.drain() == 2
    assert [msg_id for _, msg_id, _ in await bus.stored()] == ["cmd-0", "cmd-1", "cmd-2", "cmd-3"]
