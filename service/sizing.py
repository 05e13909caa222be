"""How many units an alert trades for an account (trading-semantics §3). Pure; amounts in paise.

allocation = the account's fund per trade, capped by the broker's available margin (`net` of getRMS:
what the broker will let new orders use — `availablecash` ignores margin already blocked).
Equity: quantity = floor(allocation × leverage ÷ price); leverage is a per-product setting (default 1).
Options: lots = floor(allocation ÷ (premium × lot size)). An alert's own `quantity` or `lots`
overrides the sizing but is still capped by the margin. Fewer than one unit or lot is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Sized", "size_equity", "size_option"]


@dataclass(frozen=True)
class Sized:
    quantity: int  # units (lots × lot size for options)
    reason: str = ""  # why the quantity is 0

    @property
    def refused(self) -> bool:
        return self.quantity <= 0


def size_equity(*, fund: int, margin: int, price: int, leverage: Decimal = Decimal(1),
                quantity: int | None = None) -> Sized:
    if price <= 0:
        return Sized(0, "no price to size the order from")
    cap = int(Decimal(max(0, margin)) * leverage // price)
    if quantity is not None:
        if quantity > cap:
            return Sized(0, f"quantity {quantity} needs more margin than the {margin / 100:.2f} available (at most {cap})")
        return Sized(quantity)
    allocation = min(fund, max(0, margin))
    units = int(Decimal(allocation) * leverage // price)
    if units < 1:
        return Sized(0, f"allocation {allocation / 100:.2f} buys less than one share at {price / 100:.2f}")
    return Sized(units)


def size_option(*, fund: int, margin: int, premium: int, lot_size: int, lots: int | None = None) -> Sized:
    if premium <= 0 or lot_size <= 0:
        return Sized(0, "no premium or lot size to size the order from")
    per_lot = premium * lot_size
    cap = max(0, margin) // per_lot
    if lots is not None:
        if lots > cap:
            return Sized(0, f"{lots} lots need {lots * per_lot / 100:.2f}, more than the {margin / 100:.2f} available")
        return Sized(lots * lot_size)
    count = min(fund, max(0, margin)) // per_lot
    if count < 1:
        return Sized(0, f"one lot costs {per_lot / 100:.2f}, more than the allocation {min(fund, margin) / 100:.2f}")
    return Sized(count * lot_size)
