"""tickguard's SQLite file: one writer thread with grouped commits, readers in a thread pool.

`await db.write(work)` returns only after the transaction that ran `work` has committed, so a
caller may acknowledge what it stored. Under load, every write queued while a commit is under way
joins the next transaction: durability per acknowledgement, one fsync per group. A write that fails
rolls back alone (its group is run again, each write in a savepoint). A group that loses a conflict
with another writer process (PostgreSQL's deadlock or serialization failure, `CONFLICTS`) is rolled
back and its writes run again one transaction each, after a short jittered pause, each a bounded
number of times (then that write fails with the conflict). Reads run on their
own connection (WAL lets them proceed beside the writer) in a worker thread, never on the loop.
"""
from __future__ import annotations

import asyncio
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Database", "GroupedWriter", "Migration", "ReadOnlyDatabase", "settle_outcomes"]

T = TypeVar("T")
Migration = Sequence[str]
_STOP = object()


class Reader:
    """One reader connection used from worker threads, one read at a time (both back ends and the
    read-only store)."""

    def __init__(self) -> None:
        self._reader: Any = None
        self._read_lock = threading.Lock()

    async def read(self, work: Callable[[Any], T]) -> T:
        return await asyncio.to_thread(self._read, work)

    def _read(self, work: Callable[[Any], T]) -> T:
        with self._read_lock:
            assert self._reader is not None, "database is not open"
            return work(self._reader)

    def _close_reader(self) -> None:
        # After any read in flight: a read's thread outlives a cancelled task, and closing a connection
        # under a running statement crashes the process.
        with self._read_lock:
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.close()


class GroupedWriter(Reader):
    """What both back ends share: one writer thread whose transactions take every write queued meanwhile
    (one commit per group, each write's future resolved after it), and one reader connection used from
    worker threads. A back end says how to connect, how a write transaction begins, and which errors
    its COMMIT raises, and which errors are a conflict with another writer rather than a job's own fault."""

    BEGIN = "BEGIN"
    COMMIT_ERRORS: tuple[type[BaseException], ...] = ()
    CONFLICTS: tuple[type[BaseException], ...] = ()  # its jobs run again, alone (SQLite, one writer: none)
    RETRIES = 5  # runs of a job alone after its group lost a conflict; then it fails with the conflict
    BACKOFF_S = 0.004  # the pause before the n-th run again: up to BACKOFF_S * 2**(n-1), jittered

    def __init__(self) -> None:
        super().__init__()
        self._queue: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self.commits = 0
        self.writes = 0
        self.conflicts = 0  # transactions rolled back after losing a conflict (their jobs run again)

    def _connect(self) -> Any:
        raise NotImplementedError

    def _start(self) -> None:
        """After the schema is in place: the reader connection, and the writer thread."""
        self._reader = self._connect()
        self._writer = threading.Thread(target=self._write_loop, name="tickguard-db", daemon=True)
        self._writer.start()

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._reader is not None:
            await asyncio.to_thread(self._close_reader)

    async def write(self, work: Callable[[Any], T]) -> T:
        """Run `work` in a write transaction; returns its result once the transaction committed.

        `work` only touches the database: it runs again, in a savepoint of its own, when another
        write of its group fails (the group is rolled back and every write retried alone), and runs
        again, alone, when its group lost a conflict with another writer."""
        return await self.submit(work)

    def submit(self, work: Callable[[Any], T]) -> asyncio.Future[T]:
        """Queue `work` now (writes run in the order they are queued); the future resolves once it committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._queue.put((work, loop, future))
        return future

    def _write_loop(self) -> None:
        db = self._connect()
        try:
            while True:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in batch)
                jobs = [item for item in batch if item is not _STOP]
                if jobs:
                    self._commit_group(db, jobs)
                if stop:
                    return
        finally:
            db.close()

    def _commit_group(self, db: Any, jobs: list[tuple]) -> None:
        try:
            settle_outcomes(jobs, self._run_group(db, jobs))
            return
        except _Conflict:
            db.execute("ROLLBACK")  # every lock the group held goes: what breaks a deadlock
            self.conflicts += 1
        self._pause(0)  # (outside the handler: a job's own error must not seem raised while handling the conflict)
        for job in jobs:  # a lone job holds few locks at a time: two writers' cycles come apart
            settle_outcomes([job], [self._commit_alone(db, job)])

    def _commit_alone(self, db: Any, job: tuple) -> tuple[Any, BaseException | None]:
        """One job in a transaction of its own, run again after a conflict (a bounded number of times)."""
        for attempt in range(1, self.RETRIES + 1):
            try:
                return self._run_group(db, [job])[0]
            except _Conflict as lost:
                db.execute("ROLLBACK")
                self.conflicts += 1
                error: BaseException = lost.error
                if attempt < self.RETRIES:
                    self._pause(attempt)
        return None, error

    def _pause(self, attempt: int) -> None:
        """Jittered and growing: two writers that just collided do not meet again in step."""
        time.sleep(random.uniform(0.5, 1.0) * self.BACKOFF_S * 2 ** attempt)

    def _run_group(self, db: Any, jobs: list[tuple]) -> list[tuple[Any, BaseException | None]]:
        """One transaction of the group: its results, or `_Conflict` raised with the transaction still open."""
        results: list[tuple[Any, BaseException | None]] = []
        failed: BaseException | None = None
        db.execute(self.BEGIN)
        try:  # (SQLite: every statement releases and retakes the GIL: no savepoints while no job fails)
            results = [(work(db), None) for work, _loop, _future in jobs]
        except BaseException as exc:
            self._raise_conflict(exc)
            failed = exc
        if failed is not None:  # (outside the handler: the jobs' own errors are not chained to this one)
            db.execute("ROLLBACK")
            db.execute(self.BEGIN)  # with one job, the COMMIT below then commits nothing
            results = [(None, failed)] if len(jobs) == 1 else [self._isolated(db, work) for work, _l, _f in jobs]
        try:
            db.execute("COMMIT")
            self.commits += 1
            self.writes += len(jobs)
        except self.COMMIT_ERRORS as exc:
            self._raise_conflict(exc)
            db.execute("ROLLBACK")
            results = [(None, exc)] * len(jobs)
        return results

    def _isolated(self, db: Any, work: Callable[[Any], Any]) -> tuple[Any, BaseException | None]:
        """`work` in a savepoint of its own: one failing job must not sink the others in its group. A
        conflict inside the savepoint is not the job's fault: rolling back to the savepoint would keep
        the locks the group took before it, so the whole group goes (`_Conflict`)."""
        db.execute("SAVEPOINT job")
        try:
            value = work(db)
        except BaseException as exc:
            self._raise_conflict(exc)
            db.execute("ROLLBACK TO SAVEPOINT job")
            db.execute("RELEASE SAVEPOINT job")
            return None, exc
        db.execute("RELEASE SAVEPOINT job")
        return value, None

    def _raise_conflict(self, exc: BaseException) -> None:
        """`_Conflict` if `exc` is, or was raised while handling, a conflict with another writer."""
        seen: BaseException | None = exc
        for _ in range(8):  # a job may wrap the driver's error in its own
            if seen is None:
                return
            if isinstance(seen, self.CONFLICTS):
                raise _Conflict(seen) from exc
            seen = seen.__cause__ or seen.__context__


class _Conflict(Exception):
    """The group lost a conflict with another writer (`error`, the driver's): roll back, run its jobs again."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Database(GroupedWriter):
    """The SQLite file (WAL, so reads proceed beside the writer)."""

    BEGIN = "BEGIN IMMEDIATE"
    COMMIT_ERRORS = (sqlite3.Error,)

    def __init__(self, path: str | Path, migrations: Sequence[Migration], *, synchronous: str = "FULL") -> None:
        super().__init__()
        self.path = Path(path)
        self.migrations = migrations
        self.synchronous = synchronous

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        db.row_factory = sqlite3.Row
        return db

    def open(self) -> int:
        """Create or migrate the schema (blocking; call before serving). Returns the schema version."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(self.migrations):
                raise RuntimeError(f"{self.path} has schema version {version}, newer than this tickguard ({len(self.migrations)})")
            for number, migration in enumerate(self.migrations[version:], start=version + 1):
                db.execute("BEGIN IMMEDIATE")
                for statement in migration:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
                db.execute("COMMIT")
            version = len(self.migrations)
        finally:
            db.close()
        self._start()
        return version


class ReadOnlyDatabase(Reader):
    """A SQLite file opened for reading only (`mode=ro`): nothing is migrated or written, so a copy, or
    the file of a running tickguard, is read as it stands. Reads as `Database.read`, in a worker thread."""

    def __init__(self, path: str | Path, migrations: Sequence[Migration]) -> None:
        super().__init__()
        self.path = Path(path)
        self.migrations = migrations

    def open(self) -> int:
        if not self.path.is_file():
            raise FileNotFoundError(f"no tickguard store at {self.path}")
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                             isolation_level=None)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if not 0 < version <= len(self.migrations):
            db.close()
            raise RuntimeError(f"{self.path} has schema version {version}; this tickguard reads 1 to {len(self.migrations)}")
        db.execute("PRAGMA busy_timeout=5000")
        db.row_factory = sqlite3.Row
        self._reader = db
        return version

    async def write(self, work: Callable[[Any], T]) -> T:
        raise PermissionError(f"{self.path} is open for reading only")

    async def close(self) -> None:
        self._close_reader()


def settle_outcomes(jobs: list[tuple], results: list[tuple[Any, BaseException | None]]) -> None:
    """Hand each job's result (or error) to its future, on its own loop: one wake-up of each loop per
    group, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any, BaseException | None]]] = {}
    for (_work, loop, future), (value, error) in zip(jobs, results):
        by_loop.setdefault(loop, []).append((future, value, error))
    for loop, outcomes in by_loop.items():
        loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
