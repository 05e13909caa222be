"""Every trade's life in the log, one line per event (logger `tickguard.trades`):

    created → entry sent → entry filled → armed → stop moved … → exit fired → exit sent → exit filled → closed

Each line carries `event`, `trade_id`, `symbol`, `exchange`, `side` (the trade's, LONG | SHORT),
`quantity`, `price` (rupees), `reason`, `account` and `strategy`; `armed` adds `stop` and `target`,
`closed` adds `pnl` (rupees). A refused, expired or unprotected trade is a warning or an error.

The lines come from the store's event rows, read with a cursor after each published trade change (as
the feed reads them): every event execution writes — inside a transaction, several at once, or
during recovery — is seen once and in order, and nothing on the order path waits for the log. A
change is read `gather_s` (50 ms) after it is published, with whatever else came meanwhile: under a
burst of alerts that is one read of a few hundred events instead of a thread-pool read per trade.

Stop moves do not flood: the engine records a `stop_moved` event for every new best price of a
trailing trade (a trend can make one per tick). A trade gets at most one "stop moved" line per
`stop_line_s`; the moves in between are folded into the next one (`moves` counts them), and one
still waiting is written before the trade's next other line, or once the interval has passed.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.store import Store
from service.trades import TradeRecord, TradeState

__all__ = ["STOP_LINE_S", "TradeLog"]

log = logging.getLogger("tickguard.trades")

STOP_LINE_S = 5.0
GATHER_S = 0.05
_BATCH = 500
_REMEMBERED = 2000
_FINAL = frozenset({"closed", "rejected", "expired"})
# kind -> (level, what the line says it is)
_KINDS: dict[str, tuple[int, str]] = {
    "created": (logging.INFO, "created"),
    "entry_sent": (logging.INFO, "entry sent"),
    "entry_fill": (logging.INFO, "entry filled"),
    "armed": (logging.INFO, "armed"),
    "rearmed": (logging.INFO, "re-armed"),
    "stop_moved": (logging.INFO, "stop moved"),
    "exit_fired": (logging.INFO, "exit fired"),
    "partial_exit_fired": (logging.INFO, "part exit fired"),
    "exit_sent": (logging.INFO, "exit sent"),
    "exit_fill": (logging.INFO, "exit filled"),
    "partial_exit_done": (logging.INFO, "part exit done"),
    "closed": (logging.INFO, "closed"),
    "broker_stop_sent": (logging.INFO, "broker stop sent"),
    "broker_stop_moved": (logging.INFO, "broker stop moved"),
    "broker_stop_refused": (logging.WARNING, "broker stop refused"),
    "entry_in_doubt": (logging.WARNING, "entry in doubt"),
    "exit_in_doubt": (logging.WARNING, "exit in doubt"),
    "entry_slice_refused": (logging.WARNING, "entry slice refused"),
    "partial_exit_failed": (logging.WARNING, "part exit failed"),
    "rejected": (logging.WARNING, "rejected"),
    "expired": (logging.WARNING, "expired"),
    "unprotected": (logging.ERROR, "UNPROTECTED"),
}


def rupees(paise: Any) -> float | None:
    return round(paise / 100, 2) if isinstance(paise, int) and not isinstance(paise, bool) and paise else None


def _at(paise: Any) -> str:
    value = rupees(paise)
    return "at market" if value is None else f"at {value:.2f}"


@dataclass
class _Moves:
    trade: TradeRecord
    stop: Any
    count: int


class TradeLog:
    def __init__(self, store: Store, *, stop_line_s: float = STOP_LINE_S, gather_s: float = GATHER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.stop_line_s = stop_line_s
        self.gather_s = gather_s
        self.clock = clock
        self._trades: collections.OrderedDict[int, TradeRecord] = collections.OrderedDict()
        self._cursor = 0
        self._due = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._moves: dict[int, _Moves] = {}  # a trade's stop moves not written yet
        self._stop_lines: dict[int, float] = {}  # a trade's last "stop moved" line, on `clock`
        # Exit fills seen per trade: an exit fired goes out for what was open then, and the trade at
        # hand may be a later version (the lines are written from event rows read after the fact).
        self._exited: dict[int, int] = {}

    async def start(self) -> None:
        self._cursor = await self.store.last_event_id()
        self._task = asyncio.create_task(self._pump(), name="trade-log")

    async def stop(self) -> None:
        """Write what is recorded by now (the last fills of a shutdown), then stop."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        try:
            await self._drain()
        except Exception:  # noqa: BLE001 — a shutdown goes on without the last lines
            log.exception("trade log: reading the last events failed")
        for trade_id in list(self._moves):
            self._write_moves(trade_id)

    def on_trade(self, trade: TradeRecord) -> None:
        """A listener (`Listeners.trade`): never blocks."""
        self._trades[trade.id] = trade
        self._trades.move_to_end(trade.id)
        while len(self._trades) > _REMEMBERED:
            self._trades.popitem(last=False)
        self._due.set()

    async def _pump(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.stop_line_s):
                    await self._due.wait()
            except TimeoutError:
                pass
            if self._due.is_set():
                await asyncio.sleep(self.gather_s)  # what else comes meanwhile is read with it
                self._due.clear()
                try:
                    await self._drain()
                except Exception:  # noqa: BLE001 — the log must never stop; try again shortly
                    log.exception("trade log: reading new events failed")
                    await asyncio.sleep(1)
                    self._due.set()
            now = self.clock()
            for trade_id in [i for i in self._moves if now - self._stop_lines.get(i, now) >= self.stop_line_s]:
                self._write_moves(trade_id)

    async def _drain(self) -> None:
        while True:
            rows = await self.store.events_after(self._cursor, _BATCH)
            # The stored rows of the trades not at hand (and of the closed: the closing figures are the
            # stored row's, whose version can be ahead of the one published), in one read for the batch.
            wanted = {trade_id for _e, _a, trade_id, kind, _d in rows if trade_id is not None and (
                (held := self._trades.get(trade_id)) is None or (kind == "closed" and held.state is not TradeState.CLOSED))}
            stored = await self.store.db.read(lambda db: {i: Store.load_trade(db, i) for i in wanted}) if wanted else {}
            for event_id, _at_ms, trade_id, kind, data in rows:
                self._cursor = max(self._cursor, event_id)
                trade = self._trades.get(trade_id)
                if trade is None or (kind == "closed" and trade.state is not TradeState.CLOSED):
                    trade = stored.get(trade_id)
                if trade is not None:
                    self.event(trade, kind, json.loads(data) if isinstance(data, str) else data)
            if len(rows) < _BATCH:
                return

    # One event, one line ----------------------------------------------------------------------------
    def event(self, trade: TradeRecord, kind: str, data: dict[str, Any]) -> None:
        if kind == "stop_moved":
            self._stop_moved(trade, data)
            return
        if trade.id in self._moves:
            self._write_moves(trade.id)
        level, what = _KINDS.get(kind, (logging.DEBUG, kind.replace("_", " ")))
        if log.isEnabledFor(level):
            text, fields = self._describe(trade, kind, data)
            log.log(level, f"trade {trade.id} {what}{text}", extra=self._fields(trade, kind, fields))
        if kind == "exit_fill":
            self._exited[trade.id] = self._exited.get(trade.id, 0) + int(data.get("quantity") or 0)
        if kind in _FINAL:
            self._stop_lines.pop(trade.id, None)
            self._exited.pop(trade.id, None)

    def _describe(self, trade: TradeRecord, kind: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The message's tail and the line's fields beyond the trade's own."""
        entry_side, exit_side = ("BUY", "SELL") if trade.long else ("SELL", "BUY")
        quantity, price, reason = data.get("quantity"), data.get("price"), data.get("reason", "")
        if kind == "created":
            return (f": {trade.side} {trade.quantity or ''} {trade.tradingsymbol} (account {trade.account}, "
                    f"strategy {trade.strategy})").replace("  ", " "), {"quantity": trade.quantity}
        if kind in ("entry_sent", "entry_fill", "exit_sent", "exit_fill", "broker_stop_sent"):
            side = entry_side if kind.startswith("entry") else exit_side
            return (f": {side} {quantity} {trade.tradingsymbol} {_at(price)}",
                    {"quantity": quantity, "price": rupees(price)})
        if kind in ("armed", "rearmed"):
            stop, target = data.get("stop", trade.stop), data.get("target", trade.target)
            parts = [f"stop {rupees(stop):.2f}" if rupees(stop) else "no stop"]
            if rupees(target):
                parts.append(f"target {rupees(target):.2f}")
            if data.get("trailing"):
                parts.append("trailing")
            return f": {', '.join(parts)}", {"price": rupees(stop), "stop": rupees(stop), "target": rupees(target)}
        if kind == "exit_fired":
            last = f" (last price {rupees(data['tick_ltp']):.2f})" if rupees(data.get("tick_ltp")) else ""
            return (f": {reason} {_at(data.get('level'))}{last}",
                    {"quantity": trade.filled - self._exited.get(trade.id, 0), "price": rupees(data.get("level")),
                     "reason": reason})
        if kind == "closed":
            reason = data.get("exit_reason") or trade.reason
            pnl = rupees(trade.realised_pnl) or 0.0
            return (f": {trade.exited} {trade.tradingsymbol} out {_at(trade.exit_price)}, P&L {pnl:+.2f} ({reason})",
                    {"quantity": trade.exited, "price": rupees(trade.exit_price), "pnl": pnl, "reason": reason})
        if kind == "broker_stop_moved":
            return f": trigger {_at(data.get('trigger'))[3:]}", {"price": rupees(data.get("trigger"))}
        return (f": {reason}" if reason else "", {"quantity": quantity, "price": rupees(price), "reason": reason})

    @staticmethod
    def _fields(trade: TradeRecord, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"event": kind, "trade_id": trade.id, "symbol": trade.tradingsymbol, "exchange": trade.exchange,
                "side": trade.side, "quantity": fields.pop("quantity", None), "price": fields.pop("price", None),
                "reason": fields.pop("reason", ""), "account": trade.account,
                "strategy": trade.strategy, **fields}

    # Stop moves, folded ----------------------------------------------------------------------------
    def _stop_moved(self, trade: TradeRecord, data: dict[str, Any]) -> None:
        waiting = self._moves.get(trade.id)
        self._moves[trade.id] = _Moves(trade, data.get("stop"), (waiting.count if waiting else 0) + 1)
        last = self._stop_lines.get(trade.id)
        if last is None or self.clock() - last >= self.stop_line_s:
            self._write_moves(trade.id)

    def _write_moves(self, trade_id: int) -> None:
        moves = self._moves.pop(trade_id, None)
        if moves is None:
            return
        self._stop_lines[trade_id] = self.clock()
        stop = rupees(moves.stop)
        shown = "?" if stop is None else f"{stop:.2f}"
        folded = f" ({moves.count} moves)" if moves.count > 1 else ""
        log.info(f"trade {trade_id} stop moved to {shown}{folded}",
                 extra=self._fields(moves.trade, "stop_moved", {"price": stop, "stop": stop, "moves": moves.count,
                                                                 "quantity": moves.trade.open_quantity}))
