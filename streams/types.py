"""Domain values of the stop engine: all frozen msgspec structs, prices in integer paise.

`Tick` is built once per market-data packet, so it is a `gc=False` struct (about 55 ns to build,
a frozen dataclass costs over ten times that). Events and state changes are tagged so the store can
encode and decode the unions with msgspec as they are.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Literal, TypeAlias, TypeVar

import msgspec
from reactivex import Observable

__all__ = [
    "Amend",
    "Arm",
    "Armed",
    "Clock",
    "Close",
    "Command",
    "Confirm",
    "Disarm",
    "Disarmed",
    "DistanceType",
    "EntryWindow",
    "ExitIntent",
    "ExitReason",
    "Halted",
    "Input",
    "Instrument",
    "Operator",
    "Output",
    "Phase",
    "PluginFailed",
    "PluginWithheld",
    "Rearm",
    "Rearmed",
    "Reduce",
    "Refused",
    "RestoreDay",
    "Resumed",
    "Rules",
    "Scope",
    "SetLimit",
    "Side",
    "SizedFor",
    "StateChange",
    "StopRule",
    "StopState",
    "Tick",
    "Trade",
    "TrailMoved",
    "TrailRule",
]

A = TypeVar("A")
B = TypeVar("B")

Operator: TypeAlias = Callable[[Observable[A]], Observable[B]]
Scope: TypeAlias = Literal["account", "strategy"]


class Side(enum.StrEnum):
    LONG = "long"
    SHORT = "short"


class DistanceType(enum.StrEnum):
    POINTS = "points"  # rupees of price distance
    ENTRY_PCT = "entry_pct"  # percent of the entry price
    RUPEES = "rupees"  # rupees at risk for the whole position: distance = value / quantity
    FUND_PCT = "fund_pct"  # percent of the account's fund at risk: fund * value / 100 / quantity


class ExitReason(enum.StrEnum):
    STOP = "STOP"
    TRAIL = "TRAIL"  # the stop that fired had been moved by trailing
    TARGET = "TARGET"
    SQUARE_OFF = "SQUARE_OFF"
    RISK = "RISK"
    MANUAL = "MANUAL"  # the operator's close (dashboard, API, flatten)
    SIGNAL = "SIGNAL"  # an alert's close: sell under close_only, exit, position_size, reverse
    CUSTOM = "CUSTOM"  # emitted by a signal-stage plug-in
    BROKER_STOP = "BROKER_STOP"  # the broker-side backup stop triggered: tickguard takes the exit over


class Phase(enum.StrEnum):
    ARMED = "ARMED"
    EXITING = "EXITING"  # an exit intent is out; waiting for Confirm or Rearm


# -- market data and time ------------------------------------------------------------------------


class Tick(msgspec.Struct, frozen=True, gc=False):
    token: str
    exchange: str  # REST exchange code: NSE, NFO, BSE, BFO, MCX, CDS ...
    ltp: int  # paise
    exchange_ts_ms: int  # epoch milliseconds, the exchange's own time stamp
    bid: int | None = None
    ask: int | None = None
    volume: int | None = None


class Clock(msgspec.Struct, frozen=True, gc=False):
    """Wall time fed to the engine (epoch ms). The engine reads no other clock."""

    now_ms: int


# -- trades and their rules ------------------------------------------------------------------------


class Instrument(msgspec.Struct, frozen=True, gc=False):
    token: str
    exchange: str
    tick_size: int = 5  # paise


class StopRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    type: DistanceType
    value: Decimal
    # rupees/fund_pct only: divide by the fund-sized quantity (`Trade.sized_for`) instead of the filled
    # one — a rule from the account or the strategy on a trade whose quantity the alert fixed (§4).
    sized: bool = False


class TrailRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    type: DistanceType  # points | entry_pct
    value: Decimal  # the trail offset
    activation: StopRule | None = None  # points | entry_pct; none = trail from arming


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    stop: StopRule | None = None
    target: StopRule | None = None
    trail: TrailRule | None = None


class SizedFor(msgspec.Struct, frozen=True, gc=False):
    """The quantity tickguard would have sized for a trade before rounding: q* = budget ÷ price —
    the allocation (× leverage) in paise over what one unit takes (the alert price, or the premium);
    for a future, the allocation × lot size over the margin of one lot."""

    budget: Decimal
    price: int  # paise

    @property
    def quantity(self) -> Fraction:
        return Fraction(self.budget) / self.price


class Trade(msgspec.Struct, frozen=True, gc=False):
    """An open trade as the engine guards it: the filled quantity at the average fill price.

    Levels are computed on the basis instrument. When that is the traded instrument (the default),
    `basis_entry`/`basis_side` stay None. With `stop_basis: underlying` they carry the underlying's
    price at entry and the direction that hurts the trade (a long put is SHORT on the underlying).
    """

    id: int
    account: str
    strategy: str
    instrument: Instrument
    side: Side
    quantity: int
    entry: int  # average fill price, paise
    rules: Rules
    basis: Instrument | None = None
    basis_entry: int | None = None
    basis_side: Side | None = None
    fund: int | None = None  # the account's fund in paise, needed by fund_pct rules
    product: str = "INTRADAY"  # INTRADAY trades are squared off by the engine
    sized_for: SizedFor | None = None  # what `sized` rupees/fund_pct rules divide by
    # What rupees/fund_pct rules divide by when it is not `quantity`: the filled quantity of a trade
    # partly exited, whose levels stay where they were (they are price levels, not re-sized).
    rule_quantity: int | None = None


# -- trade events: the engine's commands ---------------------------------------------------------


class Arm(msgspec.Struct, frozen=True, tag=True):
    """Guard a filled trade. `resume_stop`/`resume_trailing` restore a persisted trailed stop after
    a restart; a resumed stop is only taken when it is tighter than the rule's."""

    trade: Trade
    resume_stop: int | None = None
    resume_trailing: bool = False


class Amend(msgspec.Struct, frozen=True, tag=True):
    """Replace a trade's rules, quantity or entry (a later partial fill, a user edit)."""

    trade: Trade


class Disarm(msgspec.Struct, frozen=True, tag=True):
    trade_id: int


class Confirm(msgspec.Struct, frozen=True, tag=True):
    """The exit filled at `exit_price` (paise): the trade is closed and its P&L realised."""

    trade_id: int
    exit_price: int


class Reduce(msgspec.Struct, frozen=True, tag=True):
    """Part of the trade (`quantity` units) exited at `exit_price`: its P&L is realised, the rest stays
    guarded at the same levels. The last part leaves quantity 0 until `Confirm`."""

    trade_id: int
    quantity: int
    exit_price: int


class Rearm(msgspec.Struct, frozen=True, tag=True):
    """The exit did not happen (cancelled, refused for good): guard the trade again."""

    trade_id: int


class Close(msgspec.Struct, frozen=True, tag=True):
    """A close decided outside the stop rules: the operator's (MANUAL) or an alert's (SIGNAL)."""

    trade_id: int
    reason: ExitReason = ExitReason.MANUAL


class SetLimit(msgspec.Struct, frozen=True, tag=True):
    """Daily-loss limit (paise, positive) for an account or a strategy; None clears it."""

    scope: Scope
    key: str
    max_loss: int | None
    flatten: bool = False


class RestoreDay(msgspec.Struct, frozen=True, tag=True):
    """The day so far of an account or a strategy, as the service kept it across a restart: its
    realised P&L (paise) on IST day `day` (`streams.session.ist_day`) and whether a daily-loss limit
    had halted it. Taken only for the engine's current IST day (held until the first Clock names
    it); an earlier day's figures ended at its roll. A restored halt is not announced again."""

    scope: Scope
    key: str
    day: int
    realised: int
    halted: bool = False


# What the service tells the engine (not to be confused with a stored trade's history,
# `service.trades.TradeEvent`): arm, amend, disarm … a trade; set a limit, restore a day.
Command: TypeAlias = Arm | Amend | Disarm | Confirm | Reduce | Rearm | Close | SetLimit | RestoreDay


# -- outputs -------------------------------------------------------------------------------------


class ExitIntent(msgspec.Struct, frozen=True, tag=True):
    """Close this trade now. `level` is the stop/target that was crossed (None for square-off, risk,
    manual); `tick` is the tick that fired it, so slippage is fill - level."""

    trade_id: int
    reason: ExitReason
    level: int | None
    tick: Tick | None
    source: str = ""  # the plug-in's name for CUSTOM exits


class StopState(msgspec.Struct, frozen=True):
    trade_id: int
    phase: Phase
    stop: int | None
    target: int | None
    trail_active: bool
    trailed: bool


class Armed(msgspec.Struct, frozen=True, tag=True):
    state: StopState


class Rearmed(msgspec.Struct, frozen=True, tag=True):
    state: StopState


class TrailMoved(msgspec.Struct, frozen=True, tag=True):
    trade_id: int
    old_stop: int | None
    new_stop: int
    tick: Tick


class Disarmed(msgspec.Struct, frozen=True, tag=True):
    trade_id: int
    why: str  # "disarmed" | "closed"


class Refused(msgspec.Struct, frozen=True, tag=True):
    trade_id: int
    field: str
    reason: str


class Halted(msgspec.Struct, frozen=True, tag=True):
    scope: Scope
    key: str
    pnl: int
    max_loss: int
    at_ms: int


class Resumed(msgspec.Struct, frozen=True, tag=True):
    scope: Scope
    key: str
    at_ms: int


class EntryWindow(msgspec.Struct, frozen=True, tag=True):
    exchange: str
    open: bool
    at_ms: int


class PluginFailed(msgspec.Struct, frozen=True, tag=True):
    name: str
    stage: str
    error: str


class PluginWithheld(msgspec.Struct, frozen=True, tag=True):
    """A tick stage held back a tick whose raw price crossed an armed level; the rules ran on the
    raw tick instead."""

    name: str
    token: str
    tick: Tick


StateChange: TypeAlias = (
    Armed
    | Rearmed
    | TrailMoved
    | Disarmed
    | Refused
    | Halted
    | Resumed
    | EntryWindow
    | PluginFailed
    | PluginWithheld
)
Output: TypeAlias = ExitIntent | StateChange
Input: TypeAlias = Tick | Clock | Command
