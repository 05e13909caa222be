"""How many units an alert trades for an account (trading-semantics §3). Pure; amounts in paise.

allocation = the account's fund per trade, capped by the broker's available margin (`net` of getRMS:
what the broker will let new orders use — `availablecash` ignores margin already blocked).
Equity: quantity = floor(allocation × leverage ÷ price); leverage is a per-product setting (default 1).
Options: lots = floor(allocation ÷ (premium × lot size)).
Futures: lots = floor(allocation ÷ margin per lot), the margin per lot quoted by the broker.
An alert's own `quantity` or `lots` overrides the sizing but is still capped by the margin: it trades
min(asked, what the margin allows) in whole units (whole lots for derivatives), and the `sized` event
records the asked figure beside the capped one. Fewer than one unit or lot is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["Sized", "allocation", "size_equity", "size_future", "size_option"]


@dataclass(frozen=True)
class Sized:
    quantity: int  # units (lots × lot size for derivatives)
    reason: str = ""  # why the quantity is 0, or why it is less than the alert asked for
    asked: int | None = None  # units the alert asked for, when the margin capped them

    @property
    def refused(self) -> bool:
        return self.quantity <= 0

    def event(self) -> dict[str, Any]:
        """The `sized` event's data: the quantity, and what was asked and why it was capped."""
        if self.asked is None:
            return {"quantity": self.quantity}
        return {"quantity": self.quantity, "asked": self.asked, "reason": self.reason}


def allocation(fund: int, margin: int) -> int:
    """What one trade may use: the account's fund, capped by the margin the broker still has."""
    return min(fund, max(0, margin))


def size_equity(*, fund: int, margin: int, price: int, leverage: Decimal = Decimal(1),
                quantity: int | None = None) -> Sized:
    if price <= 0:
        return Sized(0, "no price to size the order from")
    if quantity is not None:
        cap = int(Decimal(max(0, margin)) * leverage // price)
        return _asked(quantity, cap, 1, margin, "share")
    allocated = allocation(fund, margin)
    units = int(Decimal(allocated) * leverage // price)
    if units < 1:
        return Sized(0, f"allocation {allocated / 100:.2f} buys less than one share at {price / 100:.2f}")
    return Sized(units)


def size_option(*, fund: int, margin: int, premium: int, lot_size: int, lots: int | None = None) -> Sized:
    if premium <= 0 or lot_size <= 0:
        return Sized(0, "no premium or lot size to size the order from")
    return _in_lots(fund, margin, premium * lot_size, lot_size, lots, "costs")


def size_future(*, fund: int, margin: int, lot_margin: int, lot_size: int, lots: int | None = None) -> Sized:
    """Whole lots of a future; `lot_margin` is what the broker blocks for one lot (paise)."""
    if lot_margin <= 0 or lot_size <= 0:
        return Sized(0, "the broker quoted no margin for one lot")
    return _in_lots(fund, margin, lot_margin, lot_size, lots, "needs a margin of")


def _in_lots(fund: int, margin: int, per_lot: int, lot_size: int, lots: int | None, takes: str) -> Sized:
    if lots is not None:
        return _asked(lots, max(0, margin) // per_lot, lot_size, margin, "lot")
    allocated = allocation(fund, margin)
    count = allocated // per_lot
    if count < 1:
        return Sized(0, f"one lot {takes} {per_lot / 100:.2f}, more than the allocation {allocated / 100:.2f}")
    return Sized(count * lot_size)


def _asked(asked: int, cap: int, unit: int, margin: int, name: str) -> Sized:
    """The alert's own count of shares or lots (`unit` units each), capped by the `cap` the margin allows."""
    if asked < 1:
        return Sized(0, f"the alert asked for {asked} {name}s")
    if cap < 1:
        return Sized(0, f"the margin {max(0, margin) / 100:.2f} allows not one {name} of the {asked} asked")
    if asked <= cap:
        return Sized(asked * unit)
    return Sized(cap * unit, f"capped by margin: {max(0, margin) / 100:.2f} allows {cap} of the {asked} {name}s asked",
                 asked * unit)
