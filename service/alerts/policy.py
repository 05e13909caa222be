"""What a signal does to a strategy's position on a symbol (trading-semantics §2).

Pure: given the alert and the strategy's open trades on the instrument, `decide` returns which
trades to close and what to open. The webhook applies the decision in the same transaction that
stores the alert, so two alerts can never both act on the same open trade.

Policies for the opposite signal, per strategy:
    close_only (default)  sell closes an open long and never opens a short; buy closes an open
                          short (opened with the Chartink word `short`) and otherwise opens a long
    reverse               close the other side, then open this side
    open_new              open this side regardless of the other
`exit` always just closes. `short` opens or adds a short under every policy (it says so); `cover`
only closes shorts. `position_size` (TradingView's target net position) overrides all of it.

Closing part of a position: `exit`, `cover` and a `close_only` `sell` take `quantity`, `lots` or
`percent` (rounded down to whole units/lots, at least one, at most what is open), and `position_size`
may reduce a position. The part comes from the oldest trades first: whole trades while they fit, then
part of the next (`Decision.reduce`), whose rest keeps its entry and its levels. A trade whose entry
has not filled yet is only ever closed whole.

Some positions can never be short: a cash equity outside INTRADAY, and an option contract (tickguard
never writes options). `forbid_short` keeps a decision's closes and turns its opening short leg into
a refusal the reply names; a named contract's `sell` closes the long in that contract under every
policy (`decide_contract`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from service.alerts.parse import Alert, Signal
from service.trades import TradeRecord

__all__ = ["Policy", "Decision", "Refusal", "decide", "decide_contract", "forbid_short"]


class Policy(enum.StrEnum):
    CLOSE_ONLY = "close_only"
    REVERSE = "reverse"
    OPEN_NEW = "open_new"


@dataclass(frozen=True)
class Refusal:
    leg: str  # the leg not taken: open_short
    reason: str
    field: str  # the alert field a 422 names when nothing else happens


@dataclass(frozen=True)
class Decision:
    close: list[int] = field(default_factory=list)  # trade ids to exit
    open_side: str | None = None  # LONG | SHORT
    open_quantity: int | None = None  # units; None = size it from the account
    note: str = ""  # why nothing happens, when nothing does
    refused: Refusal | None = None  # a leg the decision would have taken but may not
    reduce: list[tuple[int, int]] = field(default_factory=list)  # (trade id, units) to exit of a trade kept open

    @property
    def empty(self) -> bool:
        return not self.close and not self.reduce and self.open_side is None


def forbid_short(decision: Decision, reason: str, field: str) -> Decision:
    """The decision without its opening short leg, which becomes a refusal."""
    if decision.open_side != "SHORT":
        return decision
    return Decision(close=decision.close, reduce=decision.reduce, refused=Refusal("open_short", reason, field))


def decide_contract(alert: Alert, held: list[TradeRecord], policy: Policy = Policy.CLOSE_ONLY, lot_size: int = 1) -> Decision:
    """A named option contract, only ever bought: `sell` closes the long in it under every policy, and
    any opening short leg (`short`, a `sell` with nothing to close, `position_size` below zero) is refused."""
    reason = "tickguard never writes (sells to open) options"
    if alert.position_size is None and alert.signal is Signal.SELL and not alert.chartink_word:
        longs = [t for t in held if t.side == "LONG"]
        if longs:
            return _closing(alert, longs, lot_size)
        return Decision(refused=Refusal("open_short", f"no open long in this contract to sell: {reason}", "signal"))
    return forbid_short(decide(alert, held, policy, lot_size), reason, "signal")


def _side(signal: Signal) -> str:
    return "LONG" if signal is Signal.BUY else "SHORT"


def decide(alert: Alert, open_trades: list[TradeRecord], policy: Policy = Policy.CLOSE_ONLY, lot_size: int = 1) -> Decision:
    if alert.position_size is not None:
        return _target(alert, open_trades, lot_size)
    if alert.signal is Signal.EXIT:
        if not open_trades:
            return Decision(note="no open trade to exit")
        return _closing(alert, open_trades, lot_size)
    longs = [t for t in open_trades if t.side == "LONG"]
    shorts = [t for t in open_trades if t.side == "SHORT"]
    side = _side(alert.signal)
    other = shorts if side == "LONG" else longs
    if alert.chartink_word:
        if alert.signal is Signal.BUY:  # cover
            return _closing(alert, shorts, lot_size) if shorts else Decision(note="no open short to cover")
        return Decision(open_side="SHORT")  # short
    if policy is Policy.OPEN_NEW:
        return Decision(open_side=side)
    if policy is Policy.REVERSE:
        return Decision(close=[t.id for t in other], open_side=side)
    if other and side == "SHORT":  # close_only sell: all of the long, or the part the alert names
        return _closing(alert, longs, lot_size)
    if other:
        return Decision(close=[t.id for t in other])
    if side == "SHORT":
        return Decision(note="sell with no open long: close_only never opens a short")
    return Decision(open_side=side)


def _target(alert: Alert, open_trades: list[TradeRecord], lot_size: int) -> Decision:
    """Move the net position to `position_size` (units; lots for options and futures, whose `lot_size`
    the caller passes — 1 for cash)."""
    assert alert.position_size is not None
    target = int(alert.position_size) * lot_size
    if target == 0:
        return Decision(close=[t.id for t in open_trades]) if open_trades else Decision(note="already flat")
    net = sum(_held(t) if t.side == "LONG" else -_held(t) for t in open_trades)
    if target == net:
        return Decision(note=f"already at position size {alert.position_size}")
    side = "LONG" if target > 0 else "SHORT"
    same_way = [t for t in open_trades if t.side == side]
    close = [t.id for t in open_trades if t.side != side]
    held = sum(_held(t) for t in same_way)
    want = abs(target)
    more_close, reduce, held = _take(same_way, max(0, held - want), held)
    close += more_close
    if held < want:
        return Decision(close=close, reduce=reduce, open_side=side, open_quantity=want - held)
    return Decision(close=close, reduce=reduce)


def _part(alert: Alert, total: int, lot_size: int) -> int:
    """Units of the open `total` the alert closes: its quantity, lots or percent (whole lots, at least
    one lot, at most `total`), else all of it."""
    unit = max(1, lot_size)
    if alert.percent is not None:
        units = int(total * alert.percent / 100) // unit * unit
        return min(total, max(unit, units))
    if alert.lots is not None:
        return min(total, alert.lots * unit)
    if alert.quantity is not None:
        return min(total, alert.quantity)
    return total


def _closing(alert: Alert, trades: list[TradeRecord], lot_size: int) -> Decision:
    """Close all of `trades`, or the part the alert names, oldest first."""
    total = sum(_held(t) for t in trades)
    close, reduce, _ = _take(trades, _part(alert, total, lot_size), total)
    return Decision(close=close, reduce=reduce)


def _take(trades: list[TradeRecord], units: int, held: int) -> tuple[list[int], list[tuple[int, int]], int]:
    """(whole trades to close, (trade, units) to reduce, units held after) for taking `units` off,
    oldest trade first. A trade not yet filled is closed whole or not at all."""
    close: list[int] = []
    reduce: list[tuple[int, int]] = []
    for trade in sorted(trades, key=lambda t: t.id):
        if units <= 0:
            break
        size = _held(trade)
        if size <= units or not trade.filled:
            close.append(trade.id)
            units -= size
            held -= size
        else:
            reduce.append((trade.id, units))
            held -= units
            units = 0
    return close, reduce, held


def _held(trade: TradeRecord) -> int:
    """Units the trade holds, or will hold once its entry fills."""
    return trade.open_quantity if trade.filled else trade.quantity
