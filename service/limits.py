"""Daily-loss limits handed to the stop engine (trading-semantics §4).

An account's `maxdailyloss` comes with the account list, a strategy's `max_daily_loss` (and whether
reaching it flattens the strategy) from `STRATEGIES_FILE`. The engine is told a limit when it is
first seen and whenever it changes — on every alert, for the accounts and strategy it names — and,
at start, before any trade is guarded again, it gets today's realised P&L and loss halts back.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Protocol

from service.accounts.model import Account
from service.guard import Guard
from service.halts import Halts
from streams import SetLimit

__all__ = ["EngineLimits", "StrategyLimits"]


class StrategyLimits(Protocol):
    """What a strategy (`service.alerts.strategies.Strategy`) says of its daily loss."""
    @property
    def max_daily_loss(self) -> Decimal | None: ...  # rupees
    @property
    def flatten_on_loss(self) -> bool: ...


class EngineLimits:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._limits: dict[tuple[str, str], tuple[int | None, bool]] = {}  # as the engine holds them

    def apply(self, accounts: Iterable[Account], name: str, strategy: StrategyLimits | None) -> None:
        """Hand the engine the daily-loss limits of these accounts and this strategy (when they change)."""
        wanted = {("account", a.account_id): (a.max_daily_loss, False) for a in accounts}
        if strategy is not None:
            loss = None if strategy.max_daily_loss is None else int(strategy.max_daily_loss * 100)
            wanted[("strategy", name)] = (loss, strategy.flatten_on_loss)
        for (scope, key), (loss, flatten) in wanted.items():
            if self._limits.get((scope, key), (None, False)) != (loss, flatten):
                self._limits[(scope, key)] = (loss, flatten)
                self.guard.set_limit(SetLimit(scope, key, loss, flatten))

    async def restore_day(self, halts: Halts, accounts: Iterable[Account], strategies: Mapping[str, StrategyLimits]) -> None:
        """Before any trade is guarded again: the engine gets today's realised P&L and loss halts per
        account and strategy back, then the limits of every strategy and of the accounts last known."""
        for restored in await halts.day_so_far():
            self.guard.restore_day(restored)
        accounts = list(accounts)
        for name, strategy in [*strategies.items(), ("", None)]:
            self.apply(accounts, name, strategy)
