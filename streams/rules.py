"""From a trade's rules to integer levels on its basis price (trading-semantics §4).

Distances are computed exactly (Fraction, from the rule's Decimal value) and rounded once:
- a stop or a target rounds to the tick *towards the entry* (the tighter side) and stays at least
  one tick away from the entry;
- the trail offset rounds down to whole ticks, at least one tick;
- the activation is a condition, not a level, so it is not rounded to the tick: trailing starts on
  the first price p with p - entry >= activation (long) / entry - p >= activation (short).
A rule that would put a stop at or below zero, or a distance at or beyond the entry, is refused
with a `RuleError(field, reason)` so the alert can be answered with a 422.
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import msgspec

from .errors import RuleError
from .types import DistanceType, Side, SizedFor, StopRule, Trade

__all__ = ["Levels", "ceil_tick", "distance", "floor_tick", "levels", "trail_stop"]

_TRAIL_TYPES = (DistanceType.POINTS, DistanceType.ENTRY_PCT)


class Levels(msgspec.Struct, frozen=True):
    """Where the basis price must go for each rule, in paise. None = no such rule."""

    side: Side  # the side on the basis price
    entry: int  # the basis entry price
    stop: int | None
    target: int | None
    trail_offset: int | None
    activation_price: int | None  # long: trailing starts at ltp >= this; short: ltp <= this


def floor_tick(price: Fraction | int, tick: int) -> int:
    """The largest multiple of `tick` at or below `price` (integer arithmetic: no Fraction built)."""
    if isinstance(price, int):
        return price // tick * tick
    return price.numerator // (price.denominator * tick) * tick


def ceil_tick(price: Fraction | int, tick: int) -> int:
    """The smallest multiple of `tick` at or above `price`."""
    if isinstance(price, int):
        return -(-price // tick) * tick
    return -(-price.numerator // (price.denominator * tick)) * tick


def _value(rule_value: object, field: str) -> Fraction:
    try:
        # str() first so a float 0.1 from JSON means 0.1, not its binary neighbour.
        value = Fraction(Decimal(str(rule_value)))
    except (ArithmeticError, ValueError, TypeError):
        raise RuleError(field, f"value {rule_value!r} is not a number") from None
    return value


def distance(
    rule: StopRule, *, entry: int, quantity: int, fund: int | None, field: str, allow_zero: bool = False,
    sized_for: SizedFor | None = None,
) -> Fraction:
    """The rule's price distance in paise, exact. A `sized` rupees/fund_pct rule divides by the
    fund-sized quantity q* when the trade has one, else by the filled quantity."""
    try:
        kind = DistanceType(rule.type)
    except ValueError:
        raise RuleError(field, f"unknown type {rule.type!r}") from None
    value = _value(rule.value, field)
    if value < 0 or (value == 0 and not allow_zero):
        raise RuleError(field, "value must be > 0")
    if kind is DistanceType.POINTS:
        return value * 100
    if kind is DistanceType.ENTRY_PCT:
        return entry * value / 100
    per: Fraction | int = quantity
    if rule.sized and sized_for is not None:
        if sized_for.budget <= 0 or sized_for.price <= 0:
            raise RuleError("quantity", f"{kind} needs a fund-sized quantity > 0")
        per = sized_for.quantity
    if per <= 0:
        raise RuleError("quantity", f"{kind} needs a filled quantity > 0")
    if kind is DistanceType.RUPEES:
        return value * 100 / per
    if fund is None or fund <= 0:
        raise RuleError("fund", "fund_pct needs the account's fund")
    return fund * value / 100 / per


def _check_distance(d: Fraction, entry: int, field: str) -> None:
    if d >= entry:
        raise RuleError(field, f"distance {float(d) / 100:.2f} is at or beyond the entry {entry / 100:.2f}")


def levels(trade: Trade) -> Levels:
    """Compute (and validate) the trade's levels. Raises RuleError."""
    side = Side(trade.basis_side or trade.side)
    entry = trade.basis_entry if trade.basis_entry is not None else trade.entry
    tick = (trade.basis or trade.instrument).tick_size
    if tick <= 0:
        raise RuleError("tick_size", "must be > 0")
    if entry <= 0:
        raise RuleError("entry", "must be > 0")
    if trade.quantity < 0 or (trade.rule_quantity or trade.quantity) <= 0:
        raise RuleError("quantity", "must be > 0")
    rules = trade.rules
    per = trade.rule_quantity or trade.quantity  # a partly exited trade keeps the levels of its filled size
    sized = {"entry": entry, "quantity": per, "fund": trade.fund, "sized_for": trade.sized_for}
    long = side is Side.LONG

    stop = None
    if rules.stop is not None:
        d = distance(rules.stop, field="stoploss", **sized)
        _check_distance(d, entry, "stoploss")
        if long:
            stop = min(ceil_tick(entry - d, tick), floor_tick(entry - tick, tick))
        else:
            stop = max(floor_tick(entry + d, tick), ceil_tick(entry + tick, tick))
        if stop <= 0:
            raise RuleError("stoploss", "the stop would be at or below zero")

    target = None
    if rules.target is not None:
        d = distance(rules.target, field="target", **sized)
        if long:
            target = max(floor_tick(entry + d, tick), ceil_tick(entry + tick, tick))
        else:
            _check_distance(d, entry, "target")
            target = min(ceil_tick(entry - d, tick), floor_tick(entry - tick, tick))
            if target <= 0:
                raise RuleError("target", "the target would be at or below zero")

    offset = activation_price = None
    if rules.trail is not None:
        trail = rules.trail
        if DistanceType(trail.type) not in _TRAIL_TYPES:
            raise RuleError("trail", "type must be points or entry_pct")
        d = distance(StopRule(trail.type, trail.value), field="trail", **sized)
        _check_distance(d, entry, "trail")
        offset = max(tick, floor_tick(d, tick))
        activation = Fraction(0)
        if trail.activation is not None:
            if DistanceType(trail.activation.type) not in _TRAIL_TYPES:
                raise RuleError("trail.activation", "type must be points or entry_pct")
            activation = distance(trail.activation, field="trail.activation", allow_zero=True, **sized)
        if long:
            activation_price = math.ceil(entry + activation)
        else:
            _check_distance(activation, entry, "trail.activation")
            activation_price = math.floor(entry - activation)
    return Levels(side, entry, stop, target, offset, activation_price)


def trail_stop(long: bool, best: int, offset: int, tick_size: int) -> int:
    """best -/+ offset, rounded to the tick on the tighter side (towards the best price)."""
    if long:
        return -((offset - best) // tick_size) * tick_size
    return (best + offset) // tick_size * tick_size
