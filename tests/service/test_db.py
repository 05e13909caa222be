from __future__ import annotations

import asyncio
import sqlite3

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
