"""The store's trade events, stop states and flags (a part of `service.store.Store`).

Events are history: every trade change and service decision as a row, read back by the feed (with a
cursor on the event id), by `replay` (which must rebuild the stored trade row), and by the API.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from service.trades import TradeEvent, TradeRecord, fold

__all__ = ["EventQueries"]

_ENCODER = msgspec.json.Encoder()


class EventQueries:
    db: Any  # the store's database (service.db or service.pg)

    # Events, stops and flags --------------------------------------------------------------------
    @staticmethod
    def add_event(db: sqlite3.Connection, at_ms: int, kind: str, *, trade_id: int | None = None,
                  alert_id: int | None = None, data: dict[str, Any] | None = None) -> None:
        db.execute("INSERT INTO events (at_ms, trade_id, alert_id, kind, data) VALUES (?, ?, ?, ?, ?)",
                   (at_ms, trade_id, alert_id, kind, _ENCODER.encode(data or {}).decode()))

    async def events(self, trade_id: int) -> list[dict[str, Any]]:
        sql = "SELECT id, at_ms, kind, data FROM events WHERE trade_id = ? ORDER BY id"
        return await self.db.read(lambda db: [
            {"id": r[0], "at_ms": r[1], "kind": r[2], "data": json.loads(r[3])} for r in db.execute(sql, (trade_id,))
        ])

    async def last_event_id(self) -> int:
        return await self.db.read(lambda db: db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    async def events_after(self, cursor: int, limit: int) -> list[tuple]:
        """Trade events past `cursor` (an event id), oldest first: (id, at_ms, trade_id, kind, data JSON)."""
        sql = "SELECT id, at_ms, trade_id, kind, data FROM events WHERE id > ? AND trade_id IS NOT NULL ORDER BY id LIMIT ?"
        return await self.db.read(lambda db: db.execute(sql, (cursor, limit)).fetchall())

    async def recent_events(self, trade_ids: Iterable[int], limit: int) -> list[tuple]:
        """The latest `limit` events of these trades, oldest first, shaped like `events_after`'s rows."""
        ids = list(trade_ids)
        if not ids:
            return []
        sql = (f"SELECT id, at_ms, trade_id, kind, data FROM events WHERE trade_id IN ({','.join('?' * len(ids))})"
               " ORDER BY id DESC LIMIT ?")
        return await self.db.read(lambda db: list(reversed(db.execute(sql, (*ids, limit)).fetchall())))

    async def replay(self, trade_id: int) -> TradeRecord | None:
        """The trade rebuilt from its events alone: must equal the stored row."""
        events = await self.events(trade_id)
        if not events or events[0]["kind"] != "created":
            return None
        trade = msgspec.convert(events[0]["data"]["trade"], TradeRecord)
        for event in events[1:]:
            trade = fold(trade, TradeEvent(kind=event["kind"], at_ms=event["at_ms"], data=event["data"]))
        return trade

    @staticmethod
    def save_stop(db: sqlite3.Connection, trade_id: int, state: dict[str, Any], now_ms: int) -> None:
        db.execute("INSERT INTO stops VALUES (?, ?, ?) ON CONFLICT (trade_id) DO UPDATE"
                   " SET state = excluded.state, updated_ms = excluded.updated_ms", (trade_id, json.dumps(state), now_ms))

    async def stop_states(self) -> dict[int, dict[str, Any]]:
        return await self.db.read(lambda db: {r[0]: json.loads(r[1]) for r in db.execute("SELECT trade_id, state FROM stops")})

    @staticmethod
    def set_flag(db: sqlite3.Connection, name: str, value: Any, now_ms: int) -> None:
        db.execute("INSERT INTO flags VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                   " SET value = excluded.value, updated_ms = excluded.updated_ms", (name, json.dumps(value), now_ms))

    async def flags(self) -> dict[str, Any]:
        return await self.db.read(lambda db: {r[0]: json.loads(r[1]) for r in db.execute("SELECT name, value FROM flags")})
