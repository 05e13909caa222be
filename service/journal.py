"""The journal: what the stop engine decides, written down as trade events, and who hears of trades.

The engine (through the guard) reports state changes; those that change a trade become its events
here — `armed` (with the levels), `stop_moved` (a trail, also saved as the trade's resumable stop),
`unprotected` (rules refused at arming) — and a daily-loss halt or its lifting goes to the halts.
Every stored trade version and every service event (an alert accepted or refused, a halt) is then
handed to the listeners: the browser feed and the notifier. A listener is called on the event loop
after the change is stored and must not block (queue and return); a broken one is logged and skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from service.halts import Halts
from service.store import Store
from service.trades import Trade, TradeEvent, TradeState
from streams import Armed, Halted, Rearmed, Refused, Resumed, StateChange, StopState, TrailMoved

__all__ = ["Journal", "Listeners"]

log = logging.getLogger("tickguard.journal")


class Listeners:
    """Who else hears about trades and service events (the browser feed, notifications)."""

    def __init__(self) -> None:
        self.trade: list[Callable[[Trade], None]] = []
        self.event: list[Callable[[str, dict[str, Any]], None]] = []

    def trade_changed(self, trade: Trade) -> None:
        for listener in self.trade:
            try:
                listener(trade)
            except Exception:  # a broken listener must never stop execution
                log.exception("trade listener failed")

    def announce(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self.event:
            try:
                listener(kind, data)
            except Exception:
                log.exception("event listener failed")


class Journal:
    """Engine state changes → trade events. `record` stores one event and tells the listeners."""

    def __init__(self, store: Store, halts: Halts, listeners: Listeners, *, now_ms: Callable[[], int],
                 spawn: Callable[[Coroutine[Any, Any, Any], str], Any]) -> None:
        self.store = store
        self.halts = halts
        self.listeners = listeners
        self.now_ms = now_ms
        self.spawn = spawn

    async def record(self, trade_id: int, kind: str, **data: Any) -> Trade:
        trade = await self.store.record(trade_id, TradeEvent(kind=kind, at_ms=self.now_ms(), data=data))
        self.listeners.trade_changed(trade)
        return trade

    def on_change(self, change: StateChange) -> None:
        kind = type(change)
        if kind is TrailMoved:
            self.spawn(self._trail_moved(change), f"trail-{change.trade_id}")
        elif kind is Armed or kind is Rearmed:
            self.spawn(self._armed(change.state), f"armed-{change.state.trade_id}")
        elif kind is Refused:
            self.spawn(self._refused(change), f"refused-{change.trade_id}")
        elif kind is Halted:
            self.halts.halted(change)
        elif kind is Resumed:
            self.halts.resumed(change)

    async def _armed(self, state: StopState) -> None:
        await self.record(state.trade_id, "armed", stop=state.stop, target=state.target, trailing=state.trail_active)

    async def _refused(self, change: Refused) -> None:
        trade = await self.store.trade(change.trade_id)
        if trade is None or trade.state not in (TradeState.OPEN, TradeState.PENDING_ENTRY):
            return  # an event for a trade that is no longer guarded: nothing is left unprotected
        log.error("stop rules refused at arming: the trade is not guarded", extra={"trade_id": change.trade_id})
        await self.record(change.trade_id, "unprotected", reason=f"{change.field}: {change.reason}")

    async def _trail_moved(self, change: TrailMoved) -> None:
        now = self.now_ms()
        await self.record(change.trade_id, "stop_moved", stop=change.new_stop)
        await self.store.db.write(lambda db: Store.save_stop(db, change.trade_id, {"stop": change.new_stop, "trailed": True}, now))


