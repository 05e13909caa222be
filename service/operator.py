"""The operator's switch (`POST /halt`, the dashboard): halt new entries everywhere, optionally
flattening every open trade, or lift the halt — kept in the store with its reason, time and the
operator who pulled it (a halt's reason names them; each flattened trade gets a `close_requested`
event with their name)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.execution import Trader
from service.halts import Halts
from service.metrics import Metrics
from service.store import Store
from service.trades import OPEN_STATES, TradeEvent

__all__ = ["OperatorSwitch"]


class OperatorSwitch:
    def __init__(self, *, store: Store, halts: Halts, trader: Trader, metrics: Metrics,
                 announce: Callable[[str, dict[str, Any]], None]) -> None:
        self.now_ms = halts.now_ms
        self.store = store
        self.halts = halts
        self.trader = trader
        self.metrics = metrics
        self.announce = announce

    async def set_halt(self, halted: bool, flatten: bool = False, reason: str = "", *, operator: str = "") -> list[int]:
        """Halt (or lift the halt); with `flatten`, close every open trade. The trades being closed."""
        await self.halts.set_operator(halted, reason, operator)
        self.metrics.set_halted(halted)
        record = self.halts.operator
        self.announce("halt", {"halted": halted, "flatten": flatten, "reason": record.reason if record else "",
                               "operator": operator})
        closing: list[int] = []
        if halted and flatten:
            now = self.now_ms()
            for trade in await self.store.trades(states=OPEN_STATES):
                closing.append(trade.id)
                await self.store.record(trade.id, TradeEvent(kind="close_requested", at_ms=now,
                                                             data={"operator": operator, "flatten": True}))
                self.trader.spawn(self.trader.close(trade.id), f"flatten-{trade.id}")
        return closing
