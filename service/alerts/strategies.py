"""Strategies and the stop rules a trade gets from its alert, its strategy and its account (§4, §6).

`STRATEGIES_FILE` gives each strategy its policy (what a buy or sell does to open trades), default
stop, target and trail, its limits, and its word on the broker-side backup stop (`broker_stop`,
`broker_stop_buffer`). A trade's stop comes from the alert, else the strategy, else
the account (`stoplosstype` `number`: rupees of risk per trade; `percentage`: percent of the fund).
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import msgspec

from service.accounts.model import Account
from service.alerts.parse import Alert, DistanceSpec, TrailSpec
from service.alerts.policy import Policy
from service.errors import SettingsError

__all__ = ["Strategy", "account_stop", "fixes_quantity", "load_strategies", "resolve_rules"]

BUFFER_PATTERN = r"^\s*\d{1,6}(\.\d{1,4})?\s*%?\s*$"  # "0.2%" (of the stop price) or "1.50" (rupees)


class Strategy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    policy: Policy = Policy.CLOSE_ONLY
    stoploss: DistanceSpec | None = None
    target: DistanceSpec | None = None
    trail: TrailSpec | None = None
    max_daily_loss: Decimal | None = None  # rupees, across every account trading the strategy
    max_open_trades: int | None = None
    flatten_on_loss: bool = False  # also close the strategy's open trades when its loss limit is hit
    # The broker-side backup stop for the strategy's trades (BROKER_STOP, BROKER_STOP_BUFFER): None = the setting's
    broker_stop: bool | None = None
    broker_stop_buffer: Annotated[str, msgspec.Meta(pattern=BUFFER_PATTERN)] | None = None


def load_strategies(path: str) -> dict[str, Strategy]:
    """STRATEGIES_FILE: `{"name": {"policy", "stoploss", "target", "trail"}}`; empty path → none."""
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
        return msgspec.convert(raw, dict[str, Strategy])
    except (OSError, ValueError, msgspec.ValidationError) as exc:
        raise SettingsError([("STRATEGIES_FILE", f"{path}: {exc}")]) from None


def account_stop(account: Account) -> DistanceSpec | None:
    """The account's own default stop: rupees of risk (`number`) or percent of its fund (`percentage`)."""
    if account.stoploss is None or account.stoploss_type is None:
        return None
    kind = {"number": "rupees", "percentage": "fund_pct"}.get(account.stoploss_type)
    return DistanceSpec(kind, account.stoploss) if kind else None


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
        stop, source = account_stop(account), "account"
    target = alert.target or (strategy.target if strategy else None)
    trail = alert.trail or (strategy.trail if strategy else None)
    fixed = fixes_quantity(alert)
    rules: dict[str, Any] = {"stop": _rule(stop, fixed and source != "alert"),
                             "target": _rule(target, fixed and alert.target is None), "trail": None}
    if trail is not None:
        rules["trail"] = {"type": trail.type, "value": str(trail.value), "activation": _rule(trail.activation)}
    return rules, source if stop is not None else "none"
