"""Halts and the day's realised P&L, kept across restarts (trading-semantics §4: "halted state is
visible and persisted").

Two kinds of halt stop new entries:
- the operator's (`POST /halt`, the dashboard's switch): every account and strategy, until lifted;
- a daily-loss halt of one account (`maxdailyloss`) or one strategy (`max_daily_loss`), decided by
  the engine (`Halted`), until the IST day rolls (`Resumed`).

Every halt is a row of the `halts` table with its reason and time, and the time it lifted. The day's
realised P&L per account and per strategy is the `day_pnl` table, which `Store.apply` adds to in the
same transaction that realises it (a trade's `closed`), so it is never behind the trades. At start
tickguard restores today's loss halts (today by its clock, in IST) and hands the engine each group's
day so far (`RestoreDay`): a halt holds for the rest of its day after a restart and lifts at the next.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import msgspec

from service.store import Store, ist_date
from streams import Halted, RestoreDay, Resumed

__all__ = ["HaltRecord", "Halts", "day_number"]

log = logging.getLogger("tickguard.halts")
SCOPES = {"account": "accounts", "strategy": "strategies"}


def day_number(day: str) -> int:
    """An `ist_date` day as the engine counts days (`streams.session.ist_day`)."""
    return (dt.date.fromisoformat(day) - dt.date(1970, 1, 1)).days


class HaltRecord(msgspec.Struct, frozen=True, kw_only=True):
    scope: str  # global | account | strategy
    key: str  # the account or strategy; "" for the operator's global halt
    day: str  # IST day it happened
    reason: str
    at_ms: int
    pnl: int | None = None  # paise: the P&L (realised + open) that reached the loss limit
    max_loss: int | None = None  # paise
    lifted_ms: int | None = None
    operator: str = ""  # the operator who pulled the global switch (from the dashboard or the API)


_COLUMNS = "scope, key, day, reason, at_ms, pnl, max_loss, lifted_ms, operator"


def _records(db: sqlite3.Connection, where: str, args: tuple) -> list[HaltRecord]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM halts WHERE {where} ORDER BY id", args)
    return [HaltRecord(**dict(zip(_COLUMNS.split(", "), row))) for row in rows]


def _insert(db: sqlite3.Connection, record: HaltRecord) -> None:
    db.execute(f"INSERT INTO halts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (record.scope, record.key, record.day, record.reason, record.at_ms, record.pnl, record.max_loss,
                record.lifted_ms, record.operator))


def _lift(db: sqlite3.Connection, scope: str, key: str, at_ms: int) -> None:
    db.execute("UPDATE halts SET lifted_ms = ? WHERE scope = ? AND key = ? AND lifted_ms IS NULL", (at_ms, scope, key))


def loss_reason(change: Halted) -> str:
    return (f"daily loss limit of {change.scope} {change.key} reached: P&L {change.pnl / 100:.2f}"
            f" at or below -{change.max_loss / 100:.2f}")


class Halts:
    """The halts: today's daily-loss halts in memory (entries are refused from `loss`), every
    change written to the store, the whole picture for `GET /halt` and the dashboard."""

    def __init__(self, store: Store, now_ms: Callable[[], int], announce: Callable[[str, dict[str, Any]], None]) -> None:
        self.store = store
        self.now_ms = now_ms
        self._announce = announce
        self.loss: dict[tuple[str, str], HaltRecord] = {}  # (scope, key) -> today's loss halt
        self.operator: HaltRecord | None = None  # the operator's halt while it holds
        self.global_halt = False  # the operator's switch: no new entries on any account or strategy

    async def restore(self) -> None:
        """At start: the operator's switch as last set, today's loss halts (an earlier day's lifted at
        its roll), the operator's halt record."""
        halted = self.global_halt = bool((await self.store.flags()).get("halted", False))
        now = self.now_ms()
        today = ist_date(now)

        def work(db: sqlite3.Connection) -> tuple[list[HaltRecord], list[HaltRecord]]:
            db.execute("UPDATE halts SET lifted_ms = ? WHERE scope != 'global' AND day < ? AND lifted_ms IS NULL",
                       (now, today))
            return (_records(db, "scope != 'global' AND day = ? AND lifted_ms IS NULL", (today,)),
                    _records(db, "scope = 'global' AND lifted_ms IS NULL", ()))

        loss, operator = await self.store.db.write(work)
        self.loss.clear()
        self.loss.update({(r.scope, r.key): r for r in loss})
        self.operator = operator[-1] if halted and operator else None
        if self.loss:
            log.warning("daily loss halts restored for today", extra={"halts": sorted(f"{s}:{k}" for s, k in self.loss)})

    async def day_so_far(self) -> list[RestoreDay]:
        """What the engine gets back at start: today's realised P&L and loss halts per account and strategy."""
        today = ist_date(self.now_ms())
        sql = "SELECT scope, key, realised FROM day_pnl WHERE day = ?"
        realised = await self.store.db.read(lambda db: {(r[0], r[1]): r[2] for r in db.execute(sql, (today,))})
        return [RestoreDay(scope, key, day_number(today), realised.get((scope, key), 0), (scope, key) in self.loss)  # type: ignore[arg-type]
                for scope, key in sorted(realised.keys() | self.loss.keys())]

    # Changes ------------------------------------------------------------------------------------
    def halted(self, change: Halted) -> None:
        """The engine halted an account or a strategy: refuse its entries now, write it down."""
        at = change.at_ms or self.now_ms()
        record = HaltRecord(scope=change.scope, key=change.key, day=ist_date(at), reason=loss_reason(change), at_ms=at,
                            pnl=change.pnl, max_loss=change.max_loss)
        self.loss[(change.scope, change.key)] = record
        self._write(lambda db: _insert(db, record))
        log.warning("daily loss limit reached: entries halted", extra={"scope": change.scope, "key": change.key,
                                                                      "pnl_paise": change.pnl})
        self._announce("loss_limit", {**msgspec.to_builtins(record), change.scope: change.key})

    def resumed(self, change: Resumed) -> None:
        """The IST day rolled: the halt lifts."""
        self.loss.pop((change.scope, change.key), None)
        self._write(lambda db: _lift(db, change.scope, change.key, change.at_ms))
        self._announce("loss_resumed", {"scope": change.scope, "key": change.key, "at_ms": change.at_ms,
                                        change.scope: change.key})

    async def set_operator(self, halted: bool, reason: str, operator: str = "") -> None:
        """The operator's switch, with its reason and time, in one transaction with the `halted` flag."""
        now = self.now_ms()
        record = HaltRecord(scope="global", key="", day=ist_date(now), reason=reason or "halted by the operator",
                            at_ms=now, operator=operator)
        was = self.operator

        def work(db: sqlite3.Connection) -> None:
            Store.set_flag(db, "halted", halted, now)
            if not halted:
                _lift(db, "global", "", now)
            elif was is None:
                _insert(db, record)

        await self.store.db.write(work)
        self.operator = (was or record) if halted else None
        self.global_halt = halted

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        future = self.store.db.submit(work)
        future.add_done_callback(_report_failure)

    # The picture ----------------------------------------------------------------------------------
    async def view(self) -> dict[str, Any]:
        """`GET /halt`: the operator's halt, each account's and strategy's day (realised P&L, halt), and
        every halt of today with its reason and time. Money in paise."""
        today = ist_date(self.now_ms())
        halted = self.global_halt

        def work(db: sqlite3.Connection) -> tuple[list[HaltRecord], dict[tuple[str, str], int]]:
            realised = {(r[0], r[1]): r[2] for r in db.execute("SELECT scope, key, realised FROM day_pnl WHERE day = ?",
                                                                  (today,))}
            return _records(db, "day = ? OR lifted_ms IS NULL", (today,)), realised

        records, realised = await self.store.db.read(work)
        groups: dict[str, dict[str, dict[str, Any]]] = {"accounts": {}, "strategies": {}}
        for (scope, key), value in sorted(realised.items()):
            groups[SCOPES[scope]][key] = {"halted": False, "realised": value}
        for (scope, key), record in sorted(self.loss.items()):
            entry = groups[SCOPES[scope]].setdefault(key, {"halted": False, "realised": 0})
            entry.update(halted=True, reason=record.reason, at_ms=record.at_ms, pnl=record.pnl, max_loss=record.max_loss)
        operator = self.operator if halted else None
        return {
            "halted": halted,
            "day": today,
            "global": {"halted": halted, "reason": operator.reason if operator else None,
                       "at_ms": operator.at_ms if operator else None, "operator": operator.operator if operator else None},
            **groups,
            "halts": [msgspec.to_builtins(r) for r in records],
        }


def _report_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("could not write a halt", extra={"error": repr(future.exception())})
