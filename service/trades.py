"""A trade as tickguard keeps it: the fold of its events.

Every state change of a trade is an event; the trade row is `fold(trade, event)` applied in order,
so the row can always be rebuilt from the events (the store checks this in its tests).

    PENDING_ENTRY ──entry filled──▶ OPEN ──exit fired──▶ EXITING ──exit filled──▶ CLOSED
         │                          ▲                      │
         ├─ entry rejected ─▶ REJECTED                     ├─ exit keeps failing ─▶ UNPROTECTED
         └─ entry too late ─▶ EXPIRED                      └─ rearmed ─▶ OPEN
"""
from __future__ import annotations

import enum
import re
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from streams import SizedFor

__all__ = ["DEFAULT_TICK_PAISE", "OPEN_STATES", "Basis", "TradeEvent", "TradeRecord", "TradeSpec", "TradeState", "fold",
           "parse_tag", "tag_for"]

DEFAULT_TICK_PAISE = 5  # NSE's tick for most equities (₹0.05), for a trade that names none


class TradeState(enum.StrEnum):
    PENDING_ENTRY = "PENDING_ENTRY"
    OPEN = "OPEN"
    EXITING = "EXITING"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNPROTECTED = "UNPROTECTED"


OPEN_STATES = frozenset({TradeState.PENDING_ENTRY, TradeState.OPEN, TradeState.EXITING, TradeState.UNPROTECTED})


class Basis(msgspec.Struct, frozen=True, gc=False):
    """The instrument an option's stop is watched on (its underlying), when the alert says so."""
    exchange: str
    token: str
    tick_size: int


class TradeSpec(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a trade was opened with beyond its columns: its rules and the instrument's sizes, for
    the guard, sizing and the exits. Kept with the trade (JSON, in this field order); a field a
    trade does not have is left out (`UNSET`), an explicit None is kept."""
    rules: dict[str, Any] = msgspec.field(default_factory=dict)  # the engine's rules: stop, target, trail
    rule_source: str = ""  # where the stop came from: alert | strategy | account | none
    tick_size: int = DEFAULT_TICK_PAISE  # paise
    lot_size: int = 1
    alert_price: int | None = None  # paise; None for an option (the alert priced its underlying)
    fund: int | None = None  # paise: the account's fund per trade
    login: str | None = None  # the account's own login (client code); None: the default login
    instrumenttype: str | UnsetType = UNSET  # futures: FUTIDX | FUTSTK | …
    right: str | UnsetType = UNSET  # options: CE | PE
    underlying: str | UnsetType = UNSET  # options: the underlying's name
    underlying_price: int | UnsetType = UNSET  # options: the alert's price of the underlying, paise
    freeze_qty: int | None | UnsetType = UNSET  # derivatives: the exchange's largest order
    basis: Basis | UnsetType = UNSET  # options with stop_basis=underlying
    basis_entry: int | UnsetType = UNSET
    basis_side: str | UnsetType = UNSET  # LONG | SHORT: the underlying's side the option stands for
    sized_for: SizedFor | UnsetType = UNSET  # q*, recorded by the `sized` event
    # The broker-side backup stop (service/execution/backstop.py): the account's or the strategy's word
    # (`broker_stop_from` says whose; unset: the BROKER_STOP setting decides) and the strategy's buffer.
    broker_stop: bool | UnsetType = UNSET
    broker_stop_from: str | UnsetType = UNSET  # account | strategy
    broker_stop_buffer: str | UnsetType = UNSET  # "0.2%" or rupees, as BROKER_STOP_BUFFER

    @property
    def is_future(self) -> bool:
        return isinstance(self.instrumenttype, str) and self.instrumenttype.startswith("FUT")

    @property
    def is_option(self) -> bool:
        return bool(self.right)


class TradeRecord(msgspec.Struct, kw_only=True, gc=False):  # untracked: one per trade, never in a cycle
    id: int
    alert_id: int | None
    account: str
    strategy: str
    exchange: str
    token: str
    tradingsymbol: str
    side: str  # LONG | SHORT
    product: str
    state: TradeState = TradeState.PENDING_ENTRY
    quantity: int = 0  # intended entry quantity (units)
    filled: int = 0  # entry quantity filled
    entry_price: int | None = None  # average entry fill, paise
    entry_value: int = 0  # sum of entry fill quantity x price, paise: P&L is computed from it exactly
    exited: int = 0  # exit quantity filled
    exit_price: int | None = None  # average exit fill, paise
    exit_value: int = 0
    # Filled value (paise) per executed order, by its tag (the broker's own square-off, untagged: by its
    # time): brokerage is charged per executed order, so charges need the orders, not only the sums.
    entry_orders: dict[str, int] = msgspec.field(default_factory=dict)
    exit_orders: dict[str, int] = msgspec.field(default_factory=dict)
    realised_pnl: int | None = None  # paise
    stop: int | None = None  # current stop level, paise
    target: int | None = None
    spec: TradeSpec = msgspec.field(default_factory=TradeSpec)
    reason: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    version: int = 0  # events folded so far

    @property
    def open_quantity(self) -> int:
        return max(0, self.filled - self.exited)

    @property
    def basis_key(self) -> tuple[str, str]:
        """(exchange, token) of the instrument its stop watches: the underlying (`stop_basis: underlying`) or itself."""
        basis = self.spec.basis
        return (basis.exchange, basis.token) if basis else (self.exchange, self.token)

    @property
    def long(self) -> bool:
        return self.side == "LONG"


class TradeEvent(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    at_ms: int
    data: dict[str, Any] = msgspec.field(default_factory=dict)


def fold(trade: TradeRecord, event: TradeEvent) -> TradeRecord:
    """The trade after `event`. Unknown kinds only bump the version (they are history, not state)."""
    data = event.data
    kind = event.kind
    changes: dict[str, Any] = {"updated_ms": event.at_ms, "version": trade.version + 1}
    if kind == "sized":  # `asked`/`reason` (capped by margin) and `lot_margin` (futures) are history only
        changes["quantity"] = int(data["quantity"])
        if data.get("sized_for"):  # q*, for the rules that divide by it
            changes["spec"] = msgspec.structs.replace(trade.spec,
                                                      sized_for=msgspec.convert(data["sized_for"], SizedFor))
    elif kind == "entry_fill":
        qty, price = int(data["quantity"]), int(data["price"])
        changes["filled"] = trade.filled + qty
        changes["entry_value"] = trade.entry_value + qty * price
        changes["entry_price"] = round(changes["entry_value"] / changes["filled"])
        changes["entry_orders"] = _add_order(trade.entry_orders, event, qty * price)
        if trade.state is TradeState.PENDING_ENTRY:
            changes["state"] = TradeState.OPEN
    elif kind == "armed":
        changes["stop"] = data.get("stop")
        changes["target"] = data.get("target")
    elif kind == "stop_moved":
        changes["stop"] = data.get("stop")
    elif kind == "exit_fired":
        changes["state"] = TradeState.EXITING
        changes["reason"] = str(data.get("reason", ""))
    elif kind == "exit_fill":
        qty, price = int(data["quantity"]), int(data["price"])
        changes["exited"] = trade.exited + qty
        changes["exit_value"] = trade.exit_value + qty * price
        changes["exit_price"] = round(changes["exit_value"] / changes["exited"])
        changes["exit_orders"] = _add_order(trade.exit_orders, event, qty * price)
        # P&L is realised part by part: a partial exit's fills count at once
        changes["realised_pnl"] = realised(msgspec.structs.replace(trade, exited=changes["exited"],
                                                                   exit_value=changes["exit_value"]))
    elif kind == "closed":
        changes["state"] = TradeState.CLOSED
        changes["realised_pnl"] = realised(trade)
        if data.get("exit_reason"):  # closed by what the broker did (its stop filled), not by an exit fired here
            changes["reason"] = str(data["exit_reason"])
    elif kind == "rearmed":
        changes["state"] = TradeState.OPEN
    elif kind in ("rejected", "expired", "unprotected"):
        changes["state"] = TradeState(kind.upper())
        changes["reason"] = str(data.get("reason", ""))
    return msgspec.structs.replace(trade, **changes)


def _add_order(orders: dict[str, int], event: TradeEvent, value: int) -> dict[str, int]:
    key = str(event.data.get("tag") or f"@{event.at_ms}")
    return {**orders, key: orders.get(key, 0) + value}


def realised(trade: TradeRecord) -> int:
    """Realised P&L of the exited quantity, in paise, from the exact fill values."""
    if not trade.exited or not trade.filled:
        return 0
    cost = trade.entry_value * min(trade.exited, trade.filled) / trade.filled
    move = trade.exit_value - cost
    return round(move if trade.long else -move)


def tag_for(trade_id: int, role: str, attempt: int) -> str:
    """The ordertag of every order tickguard sends: `tg` + trade id in base 36 + E (entry) | X (exit) |
    B (the broker-side backup stop) + attempt."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    n, text = trade_id, ""
    while True:
        n, r = divmod(n, 36)
        text = digits[r] + text
        if n == 0:
            break
    tag = f"tg{text}{_LETTERS[role]}{attempt}"
    if len(tag) >= 20:
        raise ValueError(f"ordertag {tag!r} would exceed SmartAPI's limit")
    return tag


def parse_tag(tag: str) -> tuple[int, str, int] | None:
    """(trade id, "entry" | "exit" | "broker_stop", attempt) of a tag `tag_for` made; None for any other text."""
    match = _TAG.fullmatch(tag)
    if match is None:
        return None
    return int(match[1], 36), _ROLES[match[2]], int(match[3])


_LETTERS = {"entry": "E", "exit": "X", "broker_stop": "B"}
_ROLES = {letter: role for role, letter in _LETTERS.items()}
_TAG = re.compile(r"tg([0-9a-z]+)([EXB])([1-9][0-9]*)")
