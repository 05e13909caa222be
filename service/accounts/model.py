"""Trading accounts and the stop rules they, their strategies and their alerts give (§4, §6).

An account follows the account service's contract (`accountId`, `pseudoAccountName`, `fund`,
`stoplosstype`, `stoploss`): `stoplosstype` `number` means rupees of risk per trade, `percentage`
means percent of the account's fund at risk. Until the account service is wired, paper mode trades
one demo account defined by settings.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from service.alerts.parse import Alert, DistanceSpec, TrailSpec
from service.errors import SettingsError
from service.alerts.policy import Policy

__all__ = ["Account", "Strategy", "fixes_quantity", "load_strategies", "resolve_rules"]


class Account(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    name: str
    fund: int  # paise per trade
    stoploss_type: str | None = None  # number | percentage
    stoploss: Decimal | None = None
    clientcode: str | None = None
    max_daily_loss: int | None = None  # paise; realised + open P&L below -this halts the account's entries
    max_open_trades: int | None = None

    def default_stop(self) -> DistanceSpec | None:
        if self.stoploss is None or self.stoploss_type is None:
            return None
        kind = {"number": "rupees", "percentage": "fund_pct"}.get(self.stoploss_type)
        return DistanceSpec(kind, self.stoploss) if kind else None


class Strategy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    policy: Policy = Policy.CLOSE_ONLY
    stoploss: DistanceSpec | None = None
    target: DistanceSpec | None = None
    trail: TrailSpec | None = None
    max_daily_loss: Decimal | None = None  # rupees, across every account trading the strategy
    max_open_trades: int | None = None
    flatten_on_loss: bool = False  # also close the strategy's open trades when its loss limit is hit


def load_strategies(path: str) -> dict[str, Strategy]:
    """STRATEGIES_FILE: `{"name": {"policy", "stoploss", "target", "trail"}}`; empty path → none."""
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
        return msgspec.convert(raw, dict[str, Strategy])
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise SettingsError([("STRATEGIES_FILE", f"{path}: {exc}")]) from None


def _rule(spec: DistanceSpec | None, sized: bool = False) -> dict[str, Any] | None:
    if spec is None:
        return None
    rule: dict[str, Any] = {"type": spec.type, "value": str(spec.value)}
    if sized and spec.type in ("rupees", "fund_pct"):
        rule["sized"] = True
    return rule


def fixes_quantity(alert: Alert) -> bool:
    """The alert sets the trade's quantity itself (`quantity`, `lots` or `position_size`)."""
    return alert.quantity is not None or alert.lots is not None or alert.position_size is not None


def resolve_rules(alert: Alert, strategy: Strategy | None, account: Account) -> tuple[dict[str, Any], str]:
    """The trade's rules as the engine takes them, and where the stop came from.

    A rupees/fund_pct rule from the strategy or the account on an alert that fixes the quantity is
    `sized`: it divides by the quantity tickguard would have sized (q*), so the stop sits at the same
    fraction of the entry as a fund-sized trade's; one written in the alert divides by its quantity (§4)."""
    stop, source = alert.stoploss, "alert"
    if stop is None and strategy is not None and strategy.stoploss is not None:
        stop, source = strategy.stoploss, "strategy"
    if stop is None:
        stop, source = account.default_stop(), "account"
    target = alert.target or (strategy.target if strategy else None)
    trail = alert.trail or (strategy.trail if strategy else None)
    fixed = fixes_quantity(alert)
    rules: dict[str, Any] = {"stop": _rule(stop, fixed and source != "alert"),
                             "target": _rule(target, fixed and alert.target is None), "trail": None}
    if trail is not None:
        rules["trail"] = {"type": trail.type, "value": str(trail.value), "activation": _rule(trail.activation)}
    return rules, source if stop is not None else "none"
