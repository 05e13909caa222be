"""Many writer processes on one PostgreSQL store: each `Store` here has its own writer thread and
connections, as a process of the cluster has. Folding an event into a trade locks its row (no lost
update), `lock_strategy` serialises decisions on a strategy, and a group of writes that loses a
deadlock to the other writer is run again instead of failing its callers."""
from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from service.pg import advisory_key
from service.store import Store
from service.trades import TradeEvent, TradeRecord
from tests.support.postgres import fresh_database
from tests.support.waiting import until

WORKERS = 10  # concurrent callers per store: many small groups, interleaved with the other store's


def new_trade(strategy: str = "s1", account: str = "A1") -> TradeRecord:
    return TradeRecord(id=0, alert_id=None, account=account, strategy=strategy, exchange="NSE", token="3045",
                       tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", created_ms=1000, updated_ms=1000)


@pytest.fixture
def url():
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as admin:
            try:  # deadlocks found in 20 ms rather than the server's default second: the tests run quicker
                admin.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET deadlock_timeout = '20ms'")
            except psycopg.errors.InsufficientPrivilege:
                pass
        yield url


@pytest.fixture
async def stores(url):
    """Two writers on the same database, as two processes."""
    pair = [Store(url), Store(url)]
    for store in pair:
        store.open()
    yield pair
    for store in pair:
        await store.close()


async def in_workers(calls: list, workers: int = WORKERS) -> list:
    """Await the coroutine factories `calls`, `workers` at a time, each worker one after another."""
    results: list = [None] * len(calls)

    async def worker(start: int) -> None:
        for n in range(start, len(calls), workers):
            results[n] = await calls[n]()
    await asyncio.gather(*(worker(start) for start in range(workers)))
    return results


async def test_two_writers_folding_into_the_same_trades_lose_no_event(stores):
    first, second = stores
    ids = [(await first.db.write(lambda db: Store.insert_trade(db, new_trade()))).id for _ in range(4)]
    per_store = 200

    def calls(store: Store, name: str, order: list[int]) -> list:
        return [lambda n=n: store.record(order[n % len(order)], TradeEvent(kind="note", at_ms=2000 + n,
                                                                           data={"by": name, "n": n}))
                for n in range(per_store)]

    # the second walks the trades in the opposite order: their groups also deadlock now and then
    await asyncio.gather(in_workers(calls(first, "first", ids)), in_workers(calls(second, "second", ids[::-1])))
    expected = 2 * per_store // len(ids)
    for trade_id in ids:
        trade = await first.trade(trade_id)
        events = [e for e in await first.events(trade_id) if e["kind"] == "note"]
        assert (trade.version, len(events)) == (expected, expected)
        assert await second.replay(trade_id) == trade
    assert await first.count("events") == len(ids) + 2 * per_store


async def test_strategy_locks_taken_in_opposite_orders_never_fail_a_write(stores):
    first, second = stores
    met = threading.Barrier(2, timeout=10)
    waited: set[str] = set()

    def locking(name: str, order: tuple[str, str], n: int):
        def work(db) -> int:
            Store.lock_strategy(db, order[0])
            if n == 0 and name not in waited:  # the first of each: both hold their first lock, then want the other's
                waited.add(name)
                met.wait()
            Store.lock_strategy(db, order[1])
            Store.add_event(db, 3000 + n, "locked", data={"by": name, "n": n})
            return n
        return work

    rounds = 150
    results = await asyncio.gather(
        in_workers([lambda n=n: first.db.write(locking("first", ("s1", "s2"), n)) for n in range(rounds)]),
        in_workers([lambda n=n: second.db.write(locking("second", ("s2", "s1"), n)) for n in range(rounds)]))
    assert results == [list(range(rounds))] * 2
    assert first.db.conflicts + second.db.conflicts >= 1  # the first pair did deadlock, and was run again
    assert await first.count("events") == 2 * rounds


async def test_a_deadlock_inside_a_savepoint_runs_the_group_again_and_a_bad_write_still_fails_alone(stores):
    """A group with a failing write runs each write in a savepoint; a deadlock there is not that
    write's fault: the group is run again, and only the failing write fails."""
    first, second = stores
    met = threading.Barrier(2, timeout=10)
    gate = threading.Event()
    waited: set[str] = set()

    def locking(name: str, order: tuple[str, str]):
        def work(db) -> str:
            Store.lock_strategy(db, order[0])
            if name not in waited:
                waited.add(name)
                met.wait()
            Store.lock_strategy(db, order[1])
            Store.add_event(db, 4000, "locked", data={"by": name})
            return name
        return work

    def bad(db) -> None:
        Store.add_event(db, 4000, "half")
        raise ValueError("refused")

    held = first.db.submit(lambda db: gate.wait(10))  # first's writer is busy: the next two make one group
    grouped = [first.db.submit(bad), first.db.submit(locking("first", ("s1", "s2")))]
    gate.set()
    other = second.db.write(locking("second", ("s2", "s1")))
    results = await asyncio.gather(held, *grouped, other, return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert results[2:] == ["first", "second"]
    assert first.db.conflicts + second.db.conflicts >= 1
    kinds = await first.db.read(lambda db: sorted(r[0] for r in db.execute("SELECT kind FROM events")))
    assert kinds == ["locked", "locked"]


async def test_the_strategy_lock_keeps_a_limit_on_open_trades_across_writers(stores):
    """Read the strategy's open trades, then open one if fewer than the limit: both writers at once
    never open more than the limit, though each group runs many such decisions in one transaction."""
    first, second = stores
    limit = 5

    def open_if_room(db) -> bool:
        Store.lock_strategy(db, "s1")
        if Store.open_trade_count(db, strategy="s1") >= limit:
            return False
        Store.insert_trade(db, new_trade())
        return True

    opened = await asyncio.gather(in_workers([lambda: first.db.write(open_if_room)] * 40),
                                  in_workers([lambda: second.db.write(open_if_room)] * 40))
    assert sum(opened[0]) + sum(opened[1]) == limit
    assert await first.db.read(lambda db: Store.open_trade_count(db, strategy="s1")) == limit


async def test_the_strategy_lock_is_per_strategy_and_a_no_op_on_sqlite(url, tmp_path):
    """Another strategy is not held up by a strategy's lock; SQLite's one writer needs none."""
    store = Store(url)
    store.open()
    with psycopg.connect(url) as holder:  # another process, in a transaction holding s1's lock
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("strategy", "s1"),))
        assert await store.db.write(lambda db: (Store.lock_strategy(db, "s2"), "s2 taken")[1]) == "s2 taken"
        waiting = asyncio.ensure_future(store.db.write(lambda db: (Store.lock_strategy(db, "s1"), "s1 taken")[1]))
        await until(lambda: store.db.read(lambda db: db.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0]),
            "the writer waiting for s1's lock")
        assert not waiting.done()  # held by the other process until its transaction ends
        holder.execute("COMMIT")
        assert await waiting == "s1 taken"
    await store.close()
    sqlite = Store(tmp_path / "t.db", synchronous="NORMAL")
    sqlite.open()
    assert await sqlite.db.write(lambda db: Store.lock_strategy(db, "s1")) is None
    await sqlite.close()
