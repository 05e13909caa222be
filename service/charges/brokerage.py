"""Brokerage as a plan: per segment, a flat fee per executed order or a percentage of its value.

Brokerage is the one charge the broker sets, so it is configuration, not schedule: a `BrokeragePlan`
maps each segment to a rule, applied to every executed order on its own (an order filled in parts
is one executed order; an order cancelled unfilled is none).

    FlatPerOrder(paise)                             the same fee for every order
    PercentOfOrder(percent, cap_paise, minimum_paise)
                                                    percent of the order's value, at most the cap
                                                    (if any), at least the minimum

`ANGEL_ONE` is one example: the lower of Rs 20 and 0.25 % (intraday, futures) or 0.1 % (delivery) of
the order's value, options Rs 20 an order. The broker also names a minimum per order without an
amount in the sources collected, so the preset has none: give it with `PercentOfOrder(minimum_paise=)`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from service.charges.errors import ChargesError
from service.charges.schedule import SEGMENTS

__all__ = ["ANGEL_ONE", "BrokeragePlan", "FlatPerOrder", "PercentOfOrder", "flat_plan"]


@dataclass(frozen=True)
class FlatPerOrder:
    paise: int

    def __post_init__(self) -> None:
        if self.paise < 0:
            raise ChargesError(f"a flat brokerage cannot be negative: {self.paise} paise")

    def for_order(self, value_paise: int) -> Fraction:
        return Fraction(self.paise)


@dataclass(frozen=True)
class PercentOfOrder:
    percent: Decimal
    cap_paise: int | None = None
    minimum_paise: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.percent, float):  # a float is not the rate written: 0.1 is 0.1000000000000000055...
            raise ChargesError(f"a brokerage percentage is a Decimal or a decimal string, not the float {self.percent}")
        object.__setattr__(self, "percent", Decimal(self.percent))
        if not self.percent.is_finite() or self.percent < 0:
            raise ChargesError(f"a brokerage percentage must be a non-negative number: {self.percent}")
        if self.minimum_paise < 0 or (self.cap_paise is not None and not 0 <= self.minimum_paise <= self.cap_paise):
            raise ChargesError(f"brokerage: need 0 <= minimum <= cap, got {self.minimum_paise} and {self.cap_paise} paise")

    def for_order(self, value_paise: int) -> Fraction:
        fee = Fraction(self.percent) / 100 * value_paise
        if self.cap_paise is not None:
            fee = min(fee, Fraction(self.cap_paise))
        return max(fee, Fraction(self.minimum_paise))


Rule = FlatPerOrder | PercentOfOrder


@dataclass(frozen=True)
class BrokeragePlan:
    name: str
    rules: Mapping[str, Rule]

    def __post_init__(self) -> None:
        missing = [segment for segment in SEGMENTS if segment not in self.rules]
        unknown = sorted(set(self.rules) - set(SEGMENTS))
        if missing or unknown:
            raise ChargesError(f"brokerage plan {self.name!r}: missing segments {missing}, unknown {unknown}")
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))

    def for_orders(self, segment: str, order_values_paise: tuple[int, ...]) -> Fraction:
        """The exact brokerage, in paise, on the executed orders of `segment` with these values."""
        rule = self.rules[segment]
        return sum((rule.for_order(value) for value in order_values_paise), Fraction(0))


def flat_plan(rupees: int | Decimal, name: str | None = None) -> BrokeragePlan:
    """The same flat fee per executed order in every segment (Rs 0: brokerage left out)."""
    paise = Decimal(rupees) * 100
    if paise != paise.to_integral_value():
        raise ChargesError(f"a flat brokerage is whole paise: Rs {rupees}")
    rule = FlatPerOrder(int(paise))
    return BrokeragePlan(name or f"flat Rs {rupees} an order", {segment: rule for segment in SEGMENTS})


_RS_20 = 2000
ANGEL_ONE = BrokeragePlan("Angel One", {
    "equity_intraday": PercentOfOrder(Decimal("0.25"), cap_paise=_RS_20),
    "equity_delivery": PercentOfOrder(Decimal("0.1"), cap_paise=_RS_20),
    "futures": PercentOfOrder(Decimal("0.25"), cap_paise=_RS_20),
    "options": FlatPerOrder(_RS_20),
})
