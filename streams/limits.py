"""Daily-loss limits per account and per strategy: realised + open P&L against a max loss.

Every open trade (armed or exiting) belongs to two groups, its account and its strategy (a strategy
group spans accounts). Open P&L is marked to the last gated tick of the trade's *instrument* (the
option, even when the stop is on the underlying) and kept incrementally:

    group.open == sum(sign * quantity * (price[token] - entry)) over the group's open trades

so a tick moves each exposed group by `net_quantity * (new - old)`, whatever the number of trades.
Only tokens held by a group with a limit are marked (the engine `watch`es their books); the others
keep their last price, which keeps the sum exact. Realised P&L resets at the IST day roll, and so
does a halt.
"""
from __future__ import annotations

from typing import TypeAlias

from .types import Scope, Side, Trade

__all__ = ["Group", "LossLimits"]

Key: TypeAlias = tuple[str, str]  # (exchange, token): tokens are unique only within an exchange


class Group:
    __slots__ = ("flatten", "halted", "key", "max_loss", "net", "open", "realised", "scope", "trades")

    def __init__(self, scope: Scope, key: str) -> None:
        self.scope: Scope = scope
        self.key = key
        self.max_loss: int | None = None
        self.flatten = False
        self.halted = False
        self.realised = 0
        self.open = 0
        self.net: dict[Key, int] = {}  # instrument -> signed open quantity
        self.trades: dict[int, Trade] = {}

    @property
    def pnl(self) -> int:
        return self.realised + self.open

    def breached(self) -> bool:
        return self.max_loss is not None and not self.halted and self.pnl <= -self.max_loss


def _key(trade: Trade) -> Key:
    return (trade.instrument.exchange, trade.instrument.token)


def _signed(trade: Trade) -> int:
    return trade.quantity if trade.side is Side.LONG else -trade.quantity


class LossLimits:
    def __init__(self) -> None:
        self.groups: dict[tuple[Scope, str], Group] = {}
        self.prices: dict[Key, int] = {}
        self._holders: dict[Key, dict[Group, None]] = {}  # instrument -> groups holding it (ordered)

    def groups_of(self, trade: Trade) -> tuple[Group, Group]:
        return self._group("account", trade.account), self._group("strategy", trade.strategy)

    def _group(self, scope: Scope, key: str) -> Group:
        group = self.groups.get((scope, key))
        if group is None:
            group = self.groups[(scope, key)] = Group(scope, key)
        return group

    def watched(self, token: Key) -> bool:
        return any(group.max_loss is not None for group in self._holders.get(token, ()))

    def open_trade(self, trade: Trade, price: int | None) -> None:
        token = _key(trade)
        mark = self.prices.setdefault(token, trade.entry if price is None else price)
        signed = _signed(trade)
        for group in self.groups_of(trade):
            group.trades[trade.id] = trade
            group.net[token] = group.net.get(token, 0) + signed
            group.open += signed * (mark - trade.entry)
            self._holders.setdefault(token, {})[group] = None

    def close_trade(self, trade: Trade, exit_price: int | None) -> list[Group]:
        """Drop an open trade; with an exit price its P&L is realised. Returns breached groups."""
        token = _key(trade)
        signed = _signed(trade)
        breached = []
        for group in self.groups_of(trade):
            if group.trades.pop(trade.id, None) is None:
                continue
            group.open -= signed * (self.prices[token] - trade.entry)
            group.net[token] -= signed  # may be 0 while a long and a short are both open
            if not any(_key(other) == token for other in group.trades.values()):
                del group.net[token]
                self._holders[token].pop(group, None)
            if exit_price is not None:
                group.realised += signed * (exit_price - trade.entry)
            if group.breached():
                breached.append(group)
        return breached

    def reduce(self, trade: Trade, rest: Trade, exit_price: int) -> list[Group]:
        """Part of `trade` exited at `exit_price`, `rest` still open: the part's P&L is realised.
        Returns breached groups."""
        token = _key(trade)
        part = _signed(trade) - _signed(rest)
        breached = []
        for group in self.groups_of(trade):
            if group.trades.get(trade.id) is None:
                continue
            group.trades[trade.id] = rest
            group.open -= part * (self.prices[token] - trade.entry)
            group.net[token] -= part
            group.realised += part * (exit_price - trade.entry)
            if group.breached():
                breached.append(group)
        return breached

    def mark(self, token: Key, price: int) -> list[Group]:
        """A gated price for an instrument: move the open P&L. Returns newly breached groups."""
        old = self.prices.get(token)
        if old is None or old == price:
            return []
        self.prices[token] = price
        move = price - old
        breached = []
        for group in self._holders.get(token, ()):
            group.open += group.net[token] * move
            if group.breached():
                breached.append(group)
        return breached

    def set_limit(self, scope: Scope, key: str, max_loss: int | None, flatten: bool) -> Group:
        group = self._group(scope, key)
        group.max_loss = max_loss
        group.flatten = flatten
        return group

    def restore(self, scope: Scope, key: str, realised: int, halted: bool) -> Group:
        """The day so far, kept by the service across a restart: its realised P&L replaces the group's
        (nothing of the day was realised here before it), and a halt it had holds until the roll."""
        group = self._group(scope, key)
        group.realised = realised
        group.halted = group.halted or halted
        return group

    def new_day(self) -> list[Group]:
        """Reset realised P&L and lift halts. Returns the groups that were halted."""
        lifted = []
        for group in self.groups.values():
            group.realised = 0
            if group.halted:
                group.halted = False
                lifted.append(group)
        return lifted

    def flattening(self, trade: Trade) -> bool:
        return any(group.halted and group.flatten for group in self.groups_of(trade))
