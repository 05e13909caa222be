"""The operator's switch (`POST /halt`, the dashboard): halt new entries everywhere, optionally
flattening every open trade, or lift the halt — kept in the store with its reason and time."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.execution import Trader
from service.halts import Halts
from service.metrics import Metrics
from service.store import Store
from service.trades import OPEN_STATES

__all__ = ["OperatorSwitch"]


class OperatorSwitch:
    def __init__(self, *, store: Store, halts: Halts, trader: Trader, metrics: Metrics,
                 announce: Callable[[str, dict[str, Any]], None]) -> None:
        self.store = store
        self.halts = halts
        self.trader = trader
        self.metrics = metrics
        self.announce = announce

    async def set_halt(self, halted: bool, flatten: bool = False, reason: str = "") -> list[int]:
        """Halt (or lift the halt); with `flatten`, close every open trade. The trades being closed."""
        await self.halts.set_operator(halted, reason)
        self.metrics.set_halted(halted)
        operator = self.halts.operator
        self.announce("halt", {"halted": halted, "flatten": flatten, "reason": operator.reason if operator else ""})
        closing: list[int] = []
        if halted and flatten:
            for trade in await self.store.trades(states=OPEN_STATES):
                closing.append(trade.id)
                self.trader.spawn(self.trader.close(trade.id), f"flatten-{trade.id}")
        return closing
