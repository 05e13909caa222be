from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from service.db import Database

MIGRATIONS = [
    ["CREATE TABLE alerts (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"],
    ["ALTER TABLE alerts ADD COLUMN status TEXT NOT NULL DEFAULT 'accepted'"],
]


async def test_writes_are_committed_before_they_return(tmp_path):
    db = Database(tmp_path / "t.db", MIGRATIONS)
    assert db.open() == 2
    alert_id = await db.write(lambda c: c.execute("INSERT INTO alerts (body) VALUES ('x')").lastrowid)
    # a separate connection sees it at once: it is on disk
    other = sqlite3.connect(tmp_path / "t.db")
    assert other.execute("SELECT id, body, status FROM alerts").fetchall() == [(alert_id, "x", "accepted")]
    other.close()
    await db.close()


async def test_concurrent_writes_share_commits(tmp_path):
    db = Database(tmp_path / "t.db", MIGRATIONS)
    db.open()
    ids = await asyncio.gather(*(db.write(lambda c, n=n: c.execute("INSERT INTO alerts (body) VALUES (?)", (str(n),)).lastrowid) for n in range(200)))
    assert len(set(ids)) == 200
    assert db.writes == 200 and db.commits < 200
    count = await db.read(lambda c: c.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
    assert count == 200
    await db.close()


async def test_a_failing_write_is_rolled_back_alone(tmp_path):
    db = Database(tmp_path / "t.db", MIGRATIONS)
    db.open()

    def bad(c):
        c.execute("INSERT INTO alerts (body) VALUES ('half')")
        raise ValueError("refused")

    results = await asyncio.gather(
        db.write(lambda c: c.execute("INSERT INTO alerts (body) VALUES ('a')").lastrowid),
        db.write(bad),
        db.write(lambda c: c.execute("INSERT INTO alerts (body) VALUES ('b')").lastrowid),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    bodies = await db.read(lambda c: [r[0] for r in c.execute("SELECT body FROM alerts ORDER BY id")])
    assert bodies == ["a", "b"]
    await db.close()


async def test_migrations_resume_and_refuse_a_newer_file(tmp_path):
    first = Database(tmp_path / "t.db", MIGRATIONS[:1])
    assert first.open() == 1
    await first.close()
    second = Database(tmp_path / "t.db", MIGRATIONS)
    assert second.open() == 2
    await second.close()
    with pytest.raises(RuntimeError, match="newer"):
        Database(tmp_path / "t.db", MIGRATIONS[:1]).open()


class Conflict(Exception):
    """Stands for PostgreSQL's deadlock: a write lost to another writer, through no fault of its own."""


class Contended(Database):
    CONFLICTS = (Conflict,)
    BACKOFF_S = 0.0


def insert(body: str):
    return lambda c: c.execute("INSERT INTO alerts (body) VALUES (?)", (body,)).lastrowid


def grouped(db: Database, works: list) -> list[asyncio.Future]:
    """`works` queued while the writer is busy: they make one group."""
    gate = threading.Event()
    held = db.submit(lambda c: gate.wait(10))
    futures = [db.submit(work) for work in works]
    gate.set()
    return [held, *futures]


async def test_a_group_that_loses_a_conflict_runs_its_writes_again_alone(tmp_path):
    """The conflict strikes inside a savepoint (the group's bad write made it run each write in one):
    the group goes, each write runs again in a transaction of its own; the bad write alone fails."""
    db = Contended(tmp_path / "t.db", MIGRATIONS)
    db.open()
    runs = {"flaky": 0}

    def flaky(c):
        runs["flaky"] += 1
        c.execute("INSERT INTO alerts (body) VALUES ('flaky')")
        if runs["flaky"] == 1:  # its first run is in a savepoint (the group stopped at `bad`); wrapped, as a caller may wrap the driver's error
            raise RuntimeError("could not write") from Conflict("deadlock detected")
        return "flaky"

    def bad(c):
        c.execute("INSERT INTO alerts (body) VALUES ('half')")
        raise ValueError("refused")

    results = await asyncio.gather(*grouped(db, [insert("a"), bad, flaky, insert("b")]), return_exceptions=True)
    assert isinstance(results[2], ValueError) and results[3] == "flaky"
    assert (runs["flaky"], db.conflicts) == (2, 1)
    assert await db.read(lambda c: [r[0] for r in c.execute("SELECT body FROM alerts ORDER BY id")]) == ["a", "flaky", "b"]
    await db.close()


async def test_a_write_that_keeps_losing_conflicts_fails_after_its_retries_and_alone(tmp_path):
    db = Contended(tmp_path / "t.db", MIGRATIONS)
    db.open()
    runs = []

    def doomed(c):
        runs.append(1)
        raise Conflict("deadlock detected")

    results = await asyncio.gather(*grouped(db, [insert("a"), doomed, insert("b")]), return_exceptions=True)
    assert isinstance(results[2], Conflict)
    assert len(runs) == 1 + Contended.RETRIES and db.conflicts == 1 + Contended.RETRIES
    assert await db.read(lambda c: [r[0] for r in c.execute("SELECT body FROM alerts ORDER BY id")]) == ["a", "b"]
    await db.close()


async def test_sqlite_takes_no_error_for_a_conflict(tmp_path):
    """One writer: nothing is ever run again for a conflict; a failing write simply fails."""
    db = Database(tmp_path / "t.db", MIGRATIONS)
    db.open()

    def doomed(c):
        raise Conflict("no such thing here")

    with pytest.raises(Conflict):
        await db.write(doomed)
    assert db.conflicts == 0
    await db.close()


async def test_a_read_only_store_reads_writes_nothing_and_refuses_a_newer_schema(tmp_path):
    from service.db import ReadOnlyDatabase
    from service.store import MIGRATIONS, Store

    path = tmp_path / "tickguard.db"
    writer = Store(path)
    writer.open()
    await writer.close()
    before = path.read_bytes()
    reader = Store(path, read_only=True)
    reader.open()
    assert await reader.count("trades") == 0
    with pytest.raises(PermissionError):
        await reader.db.write(lambda db: None)
    await reader.close()
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError):
        ReadOnlyDatabase(tmp_path / "absent.db", MIGRATIONS).open()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="schema version"):
        ReadOnlyDatabase(path, MIGRATIONS).open()
