"""The store's reads for the operator's desk (a part of `service.store.Store`): trades and alerts a
page at a time, a day's closed trades and its realised P&L.

Pages are newest first, keyed on the row id: a page is the rows with `id < before`, and the next
page starts before the last id of this one, so rows written meanwhile neither repeat nor hide rows
of the pages still to come. A day is an IST calendar day (`YYYY-MM-DD`), as `ist_date` names it.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from service.trades import TradeRecord, TradeState
from streams.session import DAY_MS, IST_OFFSET_MS

__all__ = ["DeskQueries", "day_bounds"]


def day_bounds(day: str) -> tuple[int, int]:
    """Epoch ms of the IST day's start and of the next day's start."""
    start = (dt.date.fromisoformat(day) - dt.date(1970, 1, 1)).days * DAY_MS - IST_OFFSET_MS
    return start, start + DAY_MS


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _page_filter(equal: Iterable[tuple[str, Any]], time_column: str, day: str | None,
                 before: int | None) -> tuple[list[str], list[Any]]:
    """The clauses and arguments of a page: each column equal to its value (None: any), the row's
    time within `day` (IST), its id below `before`."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in equal:
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if day is not None:
        clauses.append(f"{time_column} >= ? AND {time_column} < ?")
        args.extend(day_bounds(day))
    if before is not None:
        clauses.append("id < ?")
        args.append(before)
    return clauses, args


class DeskQueries:
    db: Any  # the store's database (service.db or service.pg)

    async def trade_page(self, *, states: Iterable[TradeState] | None = None, strategy: str | None = None,
                         account: str | None = None, day: str | None = None, before: int | None = None,
                         limit: int) -> list[TradeRecord]:
        """Up to `limit` trades newest first, with ids below `before`, created on `day` (IST)."""
        clauses, args = _page_filter((("strategy", strategy), ("account", account)), "created_ms", day, before)
        if states is not None:
            states = [str(s) for s in states]
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(states)
        sql = f"SELECT row FROM trades {_where(clauses)} ORDER BY id DESC LIMIT ?"
        decode = msgspec.json.Decoder(TradeRecord).decode
        return await self.db.read(lambda db: [decode(r[0]) for r in db.execute(sql, (*args, limit))])

    async def alert_page(self, *, status: str | None = None, source: str | None = None, day: str | None = None,
                         before: int | None = None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` stored alerts newest first (`id`, `received_ms`, `source`, `status`, `reason`,
        `body` as stored, `trade_ids`), with ids below `before`, received on `day` (IST)."""
        clauses, args = _page_filter((("status", status), ("source", source)), "received_ms", day, before)
        sql = (f"SELECT id, received_ms, source, status, reason, body, trade_ids FROM alerts {_where(clauses)}"
               " ORDER BY id DESC LIMIT ?")

        def work(db: sqlite3.Connection) -> list[dict[str, Any]]:
            return [{"id": r[0], "received_ms": r[1], "source": r[2], "status": r[3], "reason": r[4],
                     "body": json.loads(r[5]), "trade_ids": json.loads(r[6])} for r in db.execute(sql, (*args, limit))]
        return await self.db.read(work)

    async def closed_on(self, day: str) -> list[TradeRecord]:
        """Trades that closed on `day` (IST; their last change fell in it), oldest first."""
        sql = "SELECT row FROM trades WHERE state = 'CLOSED' AND updated_ms >= ? AND updated_ms < ? ORDER BY id"
        decode = msgspec.json.Decoder(TradeRecord).decode
        return await self.db.read(lambda db: [decode(r[0]) for r in db.execute(sql, day_bounds(day))])

    async def realised_on(self, day: str) -> int:
        """The day's realised P&L over every account, in paise (`day_pnl`, kept with the trades)."""
        sql = "SELECT COALESCE(SUM(realised), 0) FROM day_pnl WHERE day = ? AND scope = 'account'"
        return await self.db.read(lambda db: int(db.execute(sql, (day,)).fetchone()[0]))
