"""The paper exchange's SQLite file: orders, trades, GTT rules, price history, last prices, sessions.

The exchange keeps its live state in memory; this store is written behind it by one writer thread
(never on the event loop), in grouped commits, and read once at start so a restart resumes where
the exchange stood, as a broker would.
"""
from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PaperStore", "StoredState"]

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (orderid TEXT PRIMARY KEY, clientcode TEXT NOT NULL, row TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trades (seq INTEGER PRIMARY KEY AUTOINCREMENT, clientcode TEXT NOT NULL, row TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS candles (exchange TEXT, token TEXT, minute INTEGER, open INTEGER, high INTEGER,"
    " low INTEGER, close INTEGER, volume INTEGER, PRIMARY KEY (exchange, token, minute))",
    "CREATE TABLE IF NOT EXISTS quotes (exchange TEXT, token TEXT, state TEXT NOT NULL, PRIMARY KEY (exchange, token))",
    "CREATE TABLE IF NOT EXISTS revoked (sid TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS gtt_rules (id INTEGER PRIMARY KEY, clientcode TEXT NOT NULL, row TEXT NOT NULL)",
]

_STOP = object()


@dataclass
class StoredState:
    meta: dict[str, str] = field(default_factory=dict)
    orders: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (clientcode, order-book row)
    trades: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (clientcode, trade-book row)
    rules: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (clientcode, GTT rule row), by id
    candles: list[tuple] = field(default_factory=list)
    quotes: list[list] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)


class PaperStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def load(self) -> StoredState:
        """Create the schema if needed and read everything back (call before `start`)."""
        with self._connect() as db:
            state = StoredState()
            state.meta = dict(db.execute("SELECT key, value FROM meta"))
            state.orders = [(c, json.loads(r)) for c, r in db.execute("SELECT clientcode, row FROM orders ORDER BY rowid")]
            state.trades = [(c, json.loads(r)) for c, r in db.execute("SELECT clientcode, row FROM trades ORDER BY seq")]
            state.rules = [(c, json.loads(r)) for c, r in db.execute("SELECT clientcode, row FROM gtt_rules ORDER BY id")]
            state.candles = list(db.execute("SELECT exchange, token, minute, open, high, low, close, volume FROM candles"))
            state.quotes = [json.loads(s) for (s,) in db.execute("SELECT state FROM quotes")]
            state.revoked = {sid for (sid,) in db.execute("SELECT sid FROM revoked")}
        return state

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_loop, name="paper-store", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        done = threading.Event()
        self._queue.put(done)
        done.wait()

    # Writes: each is queued and committed by the writer thread in groups.
    def put_meta(self, key: str, value: str) -> None:
        self._queue.put(("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value)))

    def put_order(self, clientcode: str, row: dict[str, Any]) -> None:
        self._queue.put(("INSERT OR REPLACE INTO orders VALUES (?, ?, ?)", (row["orderid"], clientcode, json.dumps(row))))

    def put_rule(self, clientcode: str, row: dict[str, Any]) -> None:
        self._queue.put(("INSERT OR REPLACE INTO gtt_rules VALUES (?, ?, ?)", (int(row["id"]), clientcode, json.dumps(row))))

    def add_trade(self, clientcode: str, row: dict[str, Any]) -> None:
        self._queue.put(("INSERT INTO trades (clientcode, row) VALUES (?, ?)", (clientcode, json.dumps(row))))

    def put_candles(self, candles: Iterable[tuple]) -> None:
        for candle in candles:
            self._queue.put(("INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(candle)))

    def put_quotes(self, states: Iterable[list | tuple]) -> None:
        for state in states:
            self._queue.put(("INSERT OR REPLACE INTO quotes VALUES (?, ?, ?)", (state[0], state[1], json.dumps(list(state)))))

    def revoke(self, sid: str) -> None:
        self._queue.put(("INSERT OR IGNORE INTO revoked VALUES (?)", (sid,)))

    def clear(self) -> None:
        for table in ("orders", "trades", "gtt_rules", "candles", "quotes", "revoked"):
            self._queue.put((f"DELETE FROM {table}", ()))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            db.execute(statement)
        db.commit()
        return db

    def _write_loop(self) -> None:
        db = self._connect()
        try:
            while True:
                item = self._queue.get()
                waiters: list[threading.Event] = []
                stop = False
                while True:  # group everything already queued into one commit
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, threading.Event):
                        waiters.append(item)
                    else:
                        self._execute(db, item)
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                db.commit()
                for waiter in waiters:
                    waiter.set()
                if stop:
                    return
        finally:
            db.close()

    def _execute(self, db: sqlite3.Connection, item: tuple[str, tuple]) -> None:
        try:
            db.execute(*item)
        except sqlite3.Error as exc:  # keep writing the rest; the exchange reports it on /paper/v1/state
            self.error = exc
