"""Where an accepted alert's decision goes once it is decided: the entries, closes and part-exits.

`LocalDispatch` hands them to this process's execution after the commit (`tickguard serve`). A
cluster's intake writes them as order commands into the outbox inside the alert's own transaction
(`service.cluster.intake`), so that they are committed with the alert or not at all.
"""
from __future__ import annotations

from typing import Any, Protocol

import msgspec

from service.accounts.model import Account
from service.alerts.plan import Plan
from service.alerts.policy import Refusal
from service.execution import Trader

__all__ = ["Accepted", "Dispatch", "LocalDispatch", "Opened", "asked_quantity"]


class Accepted(msgspec.Struct, frozen=True):
    """An alert committed with what it decided (`service.alerts.intake`'s outcome)."""
    alert_id: int
    trades: list[int]
    closing: list[int]
    reducing: list[tuple[int, int]]  # (trade id, units) exited of a trade kept open
    refused: list[tuple[str, Refusal]]  # (account, the leg it may not take)
    notes: list[str]


Opened = list[tuple[int, Account, int | None]]  # (trade id, its account, the quantity the policy decided or None)


class Dispatch(Protocol):
    def in_transaction(self, db: Any, plan: Plan, accepted: Accepted, opened: Opened, now_ms: int) -> None:
        """Inside the alert's write transaction, after its trades are inserted."""

    def after_commit(self, plan: Plan, accepted: Accepted, opened: Opened) -> None:
        """Once the alert's transaction has committed."""


def asked_quantity(plan: Plan, target_quantity: int | None) -> int | None:
    """The units an entry asks for: the policy's own, else the alert's quantity or lots, else None (sized)."""
    if target_quantity is not None:
        return target_quantity
    if plan.alert.lots is not None:
        return plan.alert.lots * plan.symbol.lotsize
    return plan.alert.quantity


class LocalDispatch:
    """This process's execution: entries sized and sent, closes and part-exits, after the commit."""

    def __init__(self, trader: Trader) -> None:
        self.trader = trader

    def in_transaction(self, db: Any, plan: Plan, accepted: Accepted, opened: Opened, now_ms: int) -> None:
        return None

    def after_commit(self, plan: Plan, accepted: Accepted, opened: Opened) -> None:
        trader = self.trader
        for trade_id, account, target_quantity in opened:  # position_size decides the quantity itself
            trader.submit([trade_id], fund=account.fund, requested={trade_id: asked_quantity(plan, target_quantity)})
        for trade_id in accepted.closing:
            trader.spawn(trader.close(trade_id, "SIGNAL"), f"close-{trade_id}")
        for trade_id, units in accepted.reducing:
            trader.spawn(trader.reduce(trade_id, units, "SIGNAL"), f"reduce-{trade_id}")
