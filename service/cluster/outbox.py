"""The outbox: order commands committed with the alert that caused them, published to the bus after.

An intake decides an alert and, in the same write transaction, adds the order commands it implies
(`Outbox.add`): a command exists exactly when its alert does, whatever crashes when. Publishing to
JetStream follows the commit (`kick`), by whichever process finds the rows unpublished — the one that
added them, or any other's sweep once they are `stale_s` old (their process died before publishing).

Nothing is lost, nothing is doubled:
- A row is read, published, and marked (`published_ms`) only after the server acked it — one write
  per batch. A crash between the ack and the mark publishes the row again later.
- Every message carries the row's `msg_id` as its `Nats-Msg-Id`: the server drops a second copy
  within the stream's duplicate window (10 minutes). A row left published-but-unmarked longer than
  that would be stored twice, so a consumer checks the id too.

Why not claim rows with `SELECT … FOR UPDATE SKIP LOCKED`: the claim would have to stay in an open
transaction across the publishes' network round trips, and the store's one writer thread serves
every write of the process in grouped transactions — holding one open would hold them all. And SKIP
LOCKED splits rows between publishers, so an alert's commands (close, then open the other way)
could reach the stream out of order. Instead the processes take turns (PostgreSQL): a pass holds a
session advisory lock, on a connection of its own, from its read to its mark's commit. A process
waiting for its turn then reads only what the holder left unpublished: no duplicates in normal
running, and the stream keeps the rows' id order across processes, not only within one drain. The
server hands the turn to waiting processes in the order they asked, so a busy process cannot keep
it. A holder that hangs with its connection open (a frozen process) is waited for `lock_wait_s` at
most; then the pass goes on beside it and the server drops what both publish. SQLite has one process.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg

from service.pg import PgConnection, PgDatabase, advisory_key
from service.store import Store

__all__ = ["BadCommand", "Outbox", "Publish"]

log = logging.getLogger("tickguard.outbox")

Publish = Callable[[str, bytes, str], Awaitable[bool]]  # (subject, payload, msg_id) -> stored (False: a duplicate)
_TURN = advisory_key("outbox", "drain")  # the PostgreSQL advisory lock the draining processes take turns on
_UNPUBLISHED = "SELECT id, subject, msg_id, payload FROM outbox WHERE published_ms IS NULL ORDER BY id LIMIT ?"
_OLDEST = "SELECT MIN(created_ms) FROM outbox WHERE published_ms IS NULL"


class BadCommand(ValueError):
    """A command the outbox cannot take; `field` names what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _subject_fault(subject: str) -> str:
    tokens = subject.split(".")
    if not subject or any(not token for token in tokens):
        return "empty, or with an empty token"
    if any(token in ("*", ">") for token in tokens):
        return "a wildcard: a message is published to one subject"
    if any(ch.isspace() for ch in subject):
        return "contains whitespace"
    return ""


class Outbox:
    """Order commands committed with the alert that caused them, published to JetStream afterwards by
    whichever process finds them unpublished (see the module's docstring)."""

    def __init__(self, store: Store, publish: Publish, *, batch: int = 256, sweep_s: float = 2.0,
                 stale_s: float = 1.0, lock_wait_s: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        if batch < 1 or sweep_s <= 0 or stale_s < 0 or lock_wait_s <= 0:
            raise ValueError(f"outbox: batch {batch} must be at least 1, sweep_s {sweep_s} and lock_wait_s "
                             f"{lock_wait_s} above 0, stale_s {stale_s} not below 0")
        self.store = store
        self.publish = publish
        self.batch = batch
        self.sweep_s = sweep_s
        self.stale_s = stale_s
        self.lock_wait_s = lock_wait_s
        self.clock = clock
        self.published = 0  # messages the server stored
        self.duplicates = 0  # messages it already had (published before, the mark lost)
        self.sweeps = 0  # sweep rounds done
        self._shared = isinstance(store.db, PgDatabase)  # other processes drain the same rows
        self._session: PgConnection | None = None  # holds the turn (PostgreSQL)
        self._own_turn = asyncio.Lock()  # one drain at a time in this process
        self._wanted = False
        self._kicked: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._stopped = False
        self._failing = False  # the last publish failed: logged once per outage

    @staticmethod
    def add(db: Any, *, subject: str, msg_id: str, payload: bytes | str, now_ms: int) -> None:
        """Add a command inside the caller's write transaction; a `msg_id` already there is left as it was."""
        if fault := _subject_fault(subject):
            raise BadCommand("subject", f"{subject!r} is {fault}")
        if not msg_id or any(ch.isspace() for ch in msg_id):
            raise BadCommand("msg_id", f"{msg_id!r} must be non-empty, without whitespace")
        if isinstance(payload, bytes):
            try:
                payload = payload.decode()
            except UnicodeDecodeError as exc:
                raise BadCommand("payload", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        db.execute("INSERT INTO outbox (subject, msg_id, payload, created_ms) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (msg_id) DO NOTHING", (subject, msg_id, payload, now_ms))

    def kick(self) -> None:
        """After a commit that added rows: drain soon. One drain runs at a time; kicks during it make
        one more after it (rows committed after its read are not left for the sweep)."""
        if self._stopped:
            return
        self._wanted = True
        if self._kicked is None or self._kicked.done():
            self._kicked = asyncio.get_running_loop().create_task(self._drain_wanted(), name="outbox-drain")

    async def _drain_wanted(self) -> None:
        while self._wanted:
            self._wanted = False
            await self.drain()

    async def drain(self) -> int:
        """Publish every unpublished row in id order and mark them; how many rows this marked. A
        publish that fails (the bus down) leaves it and the rows after it for a later drain."""
        marked = 0
        async with self._own_turn:
            while True:
                count, more = await self._pass()
                marked += count
                if not more:
                    return marked

    async def _pass(self) -> tuple[int, bool]:
        """One batch: (rows marked, whether a full batch went out and more may wait)."""
        try:
            async with self._turn():
                rows = await self.store.db.read(lambda db: db.execute(_UNPUBLISHED, (self.batch,)).fetchall())
                acked, failed = await self._publish(rows)
                marked = await self._mark(acked, self._now_ms()) if acked else 0
        except Exception:
            log.exception("outbox: a drain failed; its rows stay for the next")
            return 0, False
        return marked, not failed and len(rows) == self.batch

    async def _publish(self, rows: list) -> tuple[list[int], bool]:
        """Publish `rows` in order, stopping at the first failure: (ids the server acked, whether one failed)."""
        acked: list[int] = []
        for row_id, subject, msg_id, payload in rows:
            try:
                stored = await self.publish(subject, payload.encode(), msg_id)
            except Exception as exc:
                if not self._failing:
                    log.warning("outbox: cannot publish to %s (%r); %d row(s) wait for the bus", subject, exc,
                                len(rows) - len(acked))
                self._failing = True
                return acked, True
            if self._failing:
                log.info("outbox: publishing again")
                self._failing = False
            acked.append(row_id)
            if stored:
                self.published += 1
            else:
                self.duplicates += 1
        return acked, False

    async def _mark(self, ids: list[int], now_ms: int) -> int:
        """Mark `ids` published, in one write; how many were still unmarked (a process beside this one,
        past its turn's wait, may have marked some)."""
        sql = (f"UPDATE outbox SET published_ms = ? WHERE id IN ({', '.join('?' * len(ids))})"
               " AND published_ms IS NULL RETURNING id")
        return await self.store.db.write(lambda db: len(db.execute(sql, (now_ms, *ids)).fetchall()))

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """This process's turn to drain, among every process on the same PostgreSQL database."""
        if not self._shared:
            yield
            return
        held = await self._take_turn()
        try:
            yield
        finally:
            if held:
                await self._end_turn()

    async def _take_turn(self) -> bool:
        """Wait for the turn (the server hands it to waiting processes first come, first served); False
        after `lock_wait_s`, when the holder seems hung: the pass then goes on beside it."""
        if self._session is None:
            self._session = await asyncio.to_thread(self._connect)
        session = self._session
        try:
            await asyncio.to_thread(session.execute, "SELECT pg_advisory_lock(?)", (_TURN,))
        except psycopg.errors.LockNotAvailable:
            log.warning("outbox: another process has held the drain's turn for %.1f s; draining beside it "
                        "(the bus drops what both publish)", self.lock_wait_s)
            return False
        except psycopg.Error:  # the connection is gone (the server restarted): a new one next pass
            self._session = None
            await asyncio.to_thread(session.close)
            raise
        return True

    def _connect(self) -> PgConnection:
        session = PgConnection(self.store.db.path)
        session.execute("SELECT set_config('lock_timeout', ?, false)", (f"{max(1, round(self.lock_wait_s * 1000))}ms",))
        return session

    async def _end_turn(self) -> None:
        session = self._session
        try:  # every advisory lock of the session: a turn taken by a call cancelled mid-way goes too
            await asyncio.to_thread(session.execute, "SELECT pg_advisory_unlock_all()")
        except Exception:
            log.exception("outbox: cannot give the drain's turn back; closing its connection (which does)")
            self._session = None
            await asyncio.to_thread(session.close)

    async def start(self) -> None:
        """Sweep every `sweep_s`: drain when a row has waited unpublished for more than `stale_s`."""
        if self._sweeper is None:
            self._stopped = False
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="outbox-sweep")

    async def _sweep(self) -> None:
        while True:
            try:
                oldest = await self.store.db.read(lambda db: db.execute(_OLDEST).fetchone()[0])
                if oldest is not None and oldest < self._now_ms() - self.stale_s * 1000:
                    await self.drain()
            except Exception:
                log.exception("outbox: a sweep failed")
            self.sweeps += 1
            await asyncio.sleep(self.sweep_s)

    async def stop(self) -> None:
        """Stop sweeping and draining (rows left unpublished wait for the next drain, anywhere)."""
        self._stopped = True
        tasks = [task for task in (self._sweeper, self._kicked) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sweeper = self._kicked = None
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.to_thread(session.raw.cancel_safe)  # a wait for the turn, called off
            await asyncio.to_thread(session.close)  # its turn, if held, goes with it

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)
