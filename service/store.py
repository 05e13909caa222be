"""tickguard's store: alerts, trades, their orders and events, stop states and flags, in SQLite or PostgreSQL.

Every trade change is written as an event row and folded into the trade row in the same
transaction (`service.trades.fold`). Writes return after their commit (see `service.db`), so an
alert is acknowledged only once it is on disk.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from service.broker.types import TERMINAL_STATUSES
from service.db import Database, ReadOnlyDatabase
from service.pg import PgDatabase, advisory_key, is_postgres_url
from service.store_desk import DeskQueries
from service.store_events import EventQueries
from service.trades import TradeEvent, TradeRecord, TradeState, fold
from streams.session import ist_day

__all__ = ["Store", "MIGRATIONS", "AlertRecord", "OrderRecord", "ist_date"]

_OPEN = "('PENDING_ENTRY', 'OPEN', 'EXITING', 'UNPROTECTED')"  # the open states, as the queries and indexes say them

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, source TEXT NOT NULL,
            dedup_key TEXT NOT NULL, dedup_until_ms INTEGER NOT NULL, body TEXT NOT NULL,
            status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', trade_ids TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX alerts_dedup ON alerts (dedup_key, dedup_until_ms)",
        """CREATE TABLE trades (
            id INTEGER PRIMARY KEY, alert_id INTEGER REFERENCES alerts (id), account TEXT NOT NULL,
            strategy TEXT NOT NULL, exchange TEXT NOT NULL, token TEXT NOT NULL, tradingsymbol TEXT NOT NULL,
            side TEXT NOT NULL, product TEXT NOT NULL, state TEXT NOT NULL, row TEXT NOT NULL,
            created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)""",
        "CREATE INDEX trades_state ON trades (state)",
        "CREATE INDEX trades_position ON trades (account, strategy, exchange, token, state)",
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY, trade_id INTEGER NOT NULL REFERENCES trades (id), role TEXT NOT NULL,
            attempt INTEGER NOT NULL, tag TEXT NOT NULL UNIQUE, broker_order_id TEXT, unique_order_id TEXT,
            side TEXT NOT NULL, kind TEXT NOT NULL, quantity INTEGER NOT NULL, price INTEGER NOT NULL,
            status TEXT NOT NULL, filled INTEGER NOT NULL DEFAULT 0, average_price INTEGER NOT NULL DEFAULT 0,
            text TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)""",
        "CREATE INDEX orders_trade ON orders (trade_id)",
        "CREATE INDEX orders_broker ON orders (broker_order_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, trade_id INTEGER, alert_id INTEGER,
            kind TEXT NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX events_trade ON events (trade_id)",
        "CREATE TABLE stops (trade_id INTEGER PRIMARY KEY, state TEXT NOT NULL, updated_ms INTEGER NOT NULL)",
        "CREATE TABLE flags (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL)",
    ],
    [  # every alert reads its strategy's open trades; limits count open trades. Only open trades are indexed.
        f"CREATE INDEX trades_open_strategy ON trades (strategy, account) WHERE state IN {_OPEN}",
        f"CREATE INDEX trades_open_account ON trades (account) WHERE state IN {_OPEN}",
    ],
    [  # the day's realised P&L per account and strategy, and every halt: both survive a restart (service/halts.py)
        """CREATE TABLE day_pnl (day TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, realised INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL, PRIMARY KEY (day, scope, key))""",
        """CREATE TABLE halts (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, key TEXT NOT NULL, day TEXT NOT NULL,
            reason TEXT NOT NULL, at_ms INTEGER NOT NULL, pnl INTEGER, max_loss INTEGER, lifted_ms INTEGER)""",
        "CREATE INDEX halts_day ON halts (day)",
    ],
    [  # the broker-side backup stop's trigger (service/execution/backstop.py); 0 for every other order
        "ALTER TABLE orders ADD COLUMN trigger_price INTEGER NOT NULL DEFAULT 0",
    ],
    [  # order commands committed with their alert, published to the bus afterwards (service/cluster/outbox.py)
        """CREATE TABLE outbox (id INTEGER PRIMARY KEY, subject TEXT NOT NULL, msg_id TEXT NOT NULL UNIQUE,
            payload TEXT NOT NULL, created_ms INTEGER NOT NULL, published_ms INTEGER)""",
        "CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_ms IS NULL",
    ],
    [  # operators' dashboard sessions survive a restart (service/operators/sessions.py): the id's SHA-256 only
        """CREATE TABLE sessions (id TEXT PRIMARY KEY, operator TEXT NOT NULL, created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL)""",
        "ALTER TABLE halts ADD COLUMN operator TEXT NOT NULL DEFAULT ''",  # who pulled the global switch
    ],
    [  # the desk's exits of a day (service/store_desk.py): only closed trades are indexed, once, as they close
        "CREATE INDEX trades_closed ON trades (updated_ms) WHERE state = 'CLOSED'",
    ],
]

_ENCODER = msgspec.json.Encoder()


def ist_date(epoch_ms: int) -> str:
    """The IST calendar day of an instant, `YYYY-MM-DD`."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=ist_day(epoch_ms))).isoformat()


class AlertRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    received_ms: int
    source: str
    status: str  # accepted | refused
    reason: str
    body: dict[str, Any]
    trade_ids: list[int]


class OrderRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    trade_id: int
    role: str  # entry | exit | broker_stop
    attempt: int
    tag: str
    broker_order_id: str | None
    unique_order_id: str | None
    side: str
    kind: str
    quantity: int
    price: int
    status: str
    filled: int
    average_price: int
    text: str
    created_ms: int
    updated_ms: int
    trigger_price: int = 0  # paise: a broker stop's trigger


def _postgres(db: Any) -> bool:
    """A PostgreSQL connection (`service.pg`): other processes write beside this one."""
    return getattr(db, "dialect", "") == "postgresql"


def _trade(row: sqlite3.Row | tuple) -> TradeRecord:
    return msgspec.json.decode(row[0], type=TradeRecord)


def _order(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(**{key: row[key] for key in row.keys()})


def _alert(row: sqlite3.Row) -> AlertRecord:
    return AlertRecord(id=row["id"], received_ms=row["received_ms"], source=row["source"], status=row["status"],
                       reason=row["reason"], body=json.loads(row["body"]), trade_ids=json.loads(row["trade_ids"]))


class Store(EventQueries, DeskQueries):
    def __init__(self, path: str | Path, *, synchronous: str = "FULL", read_only: bool = False) -> None:
        """A SQLite file at `path`, or PostgreSQL at a `postgresql://` URL (`service.pg`); `read_only`:
        a SQLite file read as it stands, nothing migrated or written (the replay's reads)."""
        if read_only:
            self.db = ReadOnlyDatabase(path, MIGRATIONS)
            return
        self.db = PgDatabase(str(path), MIGRATIONS) if is_postgres_url(path) else \
            Database(path, MIGRATIONS, synchronous=synchronous)

    def open(self) -> None:
        self.db.open()

    async def close(self) -> None:
        await self.db.close()

    # Alerts ----------------------------------------------------------------------------------------
    @staticmethod
    def find_duplicate(db: sqlite3.Connection, dedup_key: str, now_ms: int) -> AlertRecord | None:
        row = db.execute(
            "SELECT * FROM alerts WHERE dedup_key = ? AND dedup_until_ms > ? AND status = 'accepted' ORDER BY id LIMIT 1",
            (dedup_key, now_ms),
        ).fetchone()
        return _alert(row) if row is not None else None

    @staticmethod
    def insert_alert(db: sqlite3.Connection, *, now_ms: int, source: str, dedup_key: str, dedup_until_ms: int,
                     body: dict[str, Any], status: str, reason: str = "") -> int:
        alert_id = int(db.execute(
            "INSERT INTO alerts (received_ms, source, dedup_key, dedup_until_ms, body, status, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (now_ms, source, dedup_key, dedup_until_ms, _ENCODER.encode(body).decode(), status, reason),
        ).fetchone()[0])
        Store.add_event(db, now_ms, "alert_" + status, alert_id=alert_id, data={"reason": reason} if reason else {})
        return alert_id

    @staticmethod
    def set_alert_trades(db: sqlite3.Connection, alert_id: int, trade_ids: list[int]) -> None:
        db.execute("UPDATE alerts SET trade_ids = ? WHERE id = ?", (_ENCODER.encode(trade_ids).decode(), alert_id))

    async def alert(self, alert_id: int) -> AlertRecord | None:
        def work(db: sqlite3.Connection) -> AlertRecord | None:
            row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            return _alert(row) if row is not None else None
        return await self.db.read(work)

    async def count(self, table: str) -> int:
        assert table in ("alerts", "trades", "orders", "events")
        return await self.db.read(lambda db: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # Trades ----------------------------------------------------------------------------------------
    @staticmethod
    def insert_trade(db: sqlite3.Connection, trade: TradeRecord) -> TradeRecord:
        trade_id = db.execute(
            "INSERT INTO trades (alert_id, account, strategy, exchange, token, tradingsymbol, side, product, state, row,"
            " created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?) RETURNING id",
            (trade.alert_id, trade.account, trade.strategy, trade.exchange, trade.token, trade.tradingsymbol,
             trade.side, trade.product, str(trade.state), trade.created_ms, trade.created_ms),
        ).fetchone()[0]
        trade = msgspec.structs.replace(trade, id=int(trade_id))
        row = Store._save_trade(db, trade, state_changed=False)
        db.execute("INSERT INTO events (at_ms, trade_id, alert_id, kind, data) VALUES (?, ?, ?, 'created', ?)",
                   (trade.created_ms, trade.id, trade.alert_id, f'{{"trade":{row}}}'))  # the row, encoded once
        return trade

    @staticmethod
    def _save_trade(db: sqlite3.Connection, trade: TradeRecord, *, state_changed: bool = True) -> str:
        row = _ENCODER.encode(trade).decode()
        if state_changed:
            db.execute("UPDATE trades SET state = ?, row = ?, updated_ms = ? WHERE id = ?",
                       (str(trade.state), row, trade.updated_ms, trade.id))
        else:  # no indexed column is written: the indexes are left alone
            db.execute("UPDATE trades SET row = ?, updated_ms = ? WHERE id = ?", (row, trade.updated_ms, trade.id))
        return row

    @staticmethod
    def load_trade(db: sqlite3.Connection, trade_id: int, *, for_update: bool = False) -> TradeRecord | None:
        """`for_update`: locked until the transaction ends (PostgreSQL; SQLite's one writer needs no lock)."""
        lock = " FOR UPDATE" if for_update and _postgres(db) else ""
        row = db.execute("SELECT row FROM trades WHERE id = ?" + lock, (trade_id,)).fetchone()
        return _trade(row) if row is not None else None

    @staticmethod
    def lock_strategy(db: sqlite3.Connection, strategy: str) -> None:
        """Decisions on `strategy` one transaction at a time, across processes: take it at the start of
        a write transaction (PostgreSQL: an advisory lock held until the transaction ends; SQLite: none
        needed, its one writer serialises every transaction)."""
        Store.lock(db, "strategy", strategy)

    @staticmethod
    def lock(db: sqlite3.Connection, namespace: str, name: str) -> None:
        """An advisory lock on `namespace`/`name` until the write transaction ends (PostgreSQL; SQLite: none needed)."""
        if _postgres(db):
            db.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(namespace, name),))

    @staticmethod
    def apply(db: sqlite3.Connection, trade_id: int, event: TradeEvent) -> TradeRecord:
        """Record `event` and fold it into the trade, in the caller's transaction (the row locked first:
        another process folding into it at once would otherwise lose one of the two events)."""
        before = Store.load_trade(db, trade_id, for_update=True)
        if before is None:
            raise KeyError(f"no trade {trade_id}")
        trade = fold(before, event)
        Store._save_trade(db, trade, state_changed=trade.state is not before.state)
        Store.add_event(db, event.at_ms, event.kind, trade_id=trade_id, data=event.data)
        realised = (trade.realised_pnl or 0) - (before.realised_pnl or 0)
        if realised:  # the day's realised P&L moves with the trade, never behind it
            day = str(event.data.get("pnl_day") or ist_date(event.at_ms))
            Store.add_realised(db, day, trade.account, trade.strategy, realised, event.at_ms)
        return trade

    @staticmethod
    def add_realised(db: sqlite3.Connection, day: str, account: str, strategy: str, pnl: int, now_ms: int) -> None:
        """Add realised P&L (paise) to `day` (IST, `YYYY-MM-DD`) of an account and of a strategy."""
        for scope, key in (("account", account), ("strategy", strategy)):
            db.execute("INSERT INTO day_pnl VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, scope, key) DO UPDATE"
                       " SET realised = day_pnl.realised + excluded.realised, updated_ms = excluded.updated_ms",
                       (day, scope, key, pnl, now_ms))

    async def record(self, trade_id: int, *events: TradeEvent) -> TradeRecord:
        def work(db: sqlite3.Connection) -> TradeRecord:
            trade = None
            for event in events:
                trade = Store.apply(db, trade_id, event)
            assert trade is not None
            return trade
        return await self.db.write(work)

    async def trade(self, trade_id: int) -> TradeRecord | None:
        return await self.db.read(lambda db: Store.load_trade(db, trade_id))

    async def trades(self, *, states: Iterable[TradeState] | None = None, strategy: str | None = None,
                     account: str | None = None, limit: int | None = None) -> list[TradeRecord]:
        """Trades newest first; every one that matches unless `limit` is given (the API pages, the
        service's own sweeps — re-arming, recovery, flatten — must see them all)."""
        clauses, args = [], []
        if states is not None:
            states = list(states)
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(str(s) for s in states)
        if strategy is not None:
            clauses.append("strategy = ?")
            args.append(strategy)
        if account is not None:
            clauses.append("account = ?")
            args.append(account)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT row FROM trades {where} ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
        params = (*args, limit) if limit is not None else tuple(args)
        return await self.db.read(lambda db: [_trade(r) for r in db.execute(sql, params)])

    async def open_counts(self) -> tuple[int, int]:
        """(open trades, of which UNPROTECTED), counted on the state index without reading the rows."""
        sql = f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'UNPROTECTED' THEN 1 ELSE 0 END), 0) FROM trades WHERE state IN {_OPEN}"
        return await self.db.read(lambda db: tuple(db.execute(sql).fetchone()))

    @staticmethod
    def open_trades_of(db: sqlite3.Connection, strategy: str) -> list[TradeRecord]:
        """Every open trade of a strategy, on every account and instrument, oldest first (one read
        serves an alert's decisions for all its accounts)."""
        rows = db.execute(f"SELECT row FROM trades WHERE strategy = ? AND state IN {_OPEN} ORDER BY id", (strategy,))
        return [_trade(r) for r in rows]

    @staticmethod
    def open_trades_on(db: sqlite3.Connection, account: str, strategy: str, exchange: str, token: str) -> list[TradeRecord]:
        return [t for t in Store.open_trades_of(db, strategy)
                if t.account == account and t.exchange == exchange and t.token == token]

    @staticmethod
    def open_trade_count(db: sqlite3.Connection, *, account: str | None = None, strategy: str | None = None) -> int:
        column, value = ("account", account) if account is not None else ("strategy", strategy)
        index = f"trades_open_{column}"  # named: the planner would rather scan every trade of the account
        return db.execute(f"SELECT COUNT(*) FROM trades INDEXED BY {index} WHERE {column} = ? AND state IN {_OPEN}",
                          (value,)).fetchone()[0]

    @staticmethod
    def accounts_with_open_trades(db: sqlite3.Connection, strategy: str) -> list[str]:
        rows = db.execute(f"SELECT DISTINCT account FROM trades WHERE strategy = ? AND state IN {_OPEN} ORDER BY account",
                          (strategy,))
        return [r[0] for r in rows]

    # Orders ----------------------------------------------------------------------------------------
    @staticmethod
    def insert_order(db: sqlite3.Connection, *, trade_id: int, role: str, attempt: int, tag: str, side: str,
                     kind: str, quantity: int, price: int, now_ms: int, trigger_price: int = 0) -> OrderRecord:
        return _order(db.execute(
            "INSERT INTO orders (trade_id, role, attempt, tag, side, kind, quantity, price, status, created_ms, updated_ms,"
            " trigger_price) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?, ?) RETURNING *",
            (trade_id, role, attempt, tag, side, kind, quantity, price, now_ms, now_ms, trigger_price),
        ).fetchone())

    @staticmethod
    def update_order(db: sqlite3.Connection, order_id: int, now_ms: int, **fields: Any) -> OrderRecord:
        allowed = {"broker_order_id", "unique_order_id", "status", "filled", "average_price", "text", "price", "quantity",
                   "trigger_price"}
        assert set(fields) <= allowed, set(fields) - allowed
        sets = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE orders SET {sets}, updated_ms = ? WHERE id = ?", (*fields.values(), now_ms, order_id))
        return _order(db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone())

    @staticmethod
    def order_sent(db: sqlite3.Connection, order_id: int, now_ms: int, broker_order_id: str, unique_order_id: str) -> OrderRecord:
        """The broker's ids for an order; its status moves to `sent` only if no update came first."""
        db.execute(
            "UPDATE orders SET broker_order_id = ?, unique_order_id = ?, updated_ms = ?,"
            " status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END WHERE id = ?",
            (broker_order_id, unique_order_id, now_ms, order_id),
        )
        return _order(db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone())

    @staticmethod
    def entry_working(db: sqlite3.Connection, trade_id: int) -> bool:
        """The trade's entry has an order not known to be finished: it may still fill."""
        sql = (f"SELECT 1 FROM orders WHERE trade_id = ? AND role = 'entry'"
               f" AND status NOT IN ({', '.join('?' * len(TERMINAL_STATUSES))}) LIMIT 1")
        return db.execute(sql, (trade_id, *sorted(TERMINAL_STATUSES))).fetchone() is not None

    @staticmethod
    def move_order(db: sqlite3.Connection, order_id: int, now_ms: int, *, was: str, status: str, text: str) -> OrderRecord:
        """The order from status `was` to `status`, or unchanged if the broker's news moved it first."""
        db.execute("UPDATE orders SET status = ?, text = ?, updated_ms = ? WHERE id = ? AND status = ?",
                   (status, text[:200], now_ms, order_id, was))
        return _order(db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone())

    async def orders(self, trade_id: int) -> list[OrderRecord]:
        return await self.db.read(
            lambda db: [_order(r) for r in db.execute("SELECT * FROM orders WHERE trade_id = ? ORDER BY id", (trade_id,))]
        )

    async def order_by_tag(self, tag: str) -> OrderRecord | None:
        def work(db: sqlite3.Connection) -> OrderRecord | None:
            row = db.execute("SELECT * FROM orders WHERE tag = ?", (tag,)).fetchone()
            return _order(row) if row is not None else None
        return await self.db.read(work)

    async def live_orders(self) -> list[OrderRecord]:
        """Orders not known to be finished at the broker (for recovery and reconciliation)."""
        sql = f"SELECT * FROM orders WHERE status NOT IN ({', '.join('?' * len(TERMINAL_STATUSES))}) ORDER BY id"
        return await self.db.read(lambda db: [_order(r) for r in db.execute(sql, sorted(TERMINAL_STATUSES))])
