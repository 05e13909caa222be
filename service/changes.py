"""The stop engine's state changes, written down: trade events for the trades they change, halts
for the daily-loss limits.

The engine (through the guard) reports `Armed`/`Rearmed` (the levels: an `armed` event),
`TrailMoved` (`stop_moved`, also saved as the trade's resumable stop), `Refused` (rules refused at
arming: the trade is `unprotected`), and `Halted`/`Resumed` (an account's or strategy's loss halt,
to `service.halts`). Events are recorded through execution's journal (`Trader.record`): stored,
folded into the trade and published to the listeners.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from service.halts import Halts
from service.store import Store
from service.trades import TradeRecord, TradeState
from streams import Armed, Halted, Rearmed, Refused, Resumed, StateChange, StopState, TrailMoved

__all__ = ["EngineChanges"]

log = logging.getLogger("tickguard.changes")

Record = Callable[..., Awaitable[TradeRecord]]  # record(trade_id, kind, **data): one trade event, stored and published


class EngineChanges:
    def __init__(self, store: Store, halts: Halts, *, record: Record, now_ms: Callable[[], int],
                 spawn: Callable[[Coroutine[Any, Any, Any], str], Any]) -> None:
        self.store = store
        self.halts = halts
        self.record = record
        self.now_ms = now_ms
        self.spawn = spawn

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


