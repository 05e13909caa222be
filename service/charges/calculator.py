"""What a set of fills costs in charges, exactly, in integer paise.

For buy value B, sell value S and turnover T = B + S (options: premium × quantity):

    brokerage = the plan's fee on each executed order, summed
    STT       = rate × S (intraday, futures, options) or rate × (B + S) (delivery)
    exch_txn  = rate × T             the exchange's, by segment and exchange
    SEBI fee  = rate × T             Rs 10 a crore
    stamp     = rate × B             buy side only
    GST       = 18 % × (brokerage + exch_txn + SEBI fee)      never on STT, never on stamp duty
    total     = brokerage + STT + exch_txn + SEBI fee + stamp + GST

Rounding, one rule: each of brokerage, STT, exch_txn, SEBI fee and stamp is computed exactly (as a
fraction) over all the fills, then rounded half up to the paisa; GST is 18 % of those three rounded
charges, rounded half up to the paisa; the total is the sum of the rounded charges, so it adds up.
Contract notes may round STT to the rupee; the estimate here stays at the paisa, as SmartAPI's does.
Options exercised (STT on intrinsic value, on the buyer) are not modelled.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from service.charges.brokerage import BrokeragePlan
from service.charges.errors import FillsError
from service.charges.schedule import Rates, Schedule, load_schedule

__all__ = ["Breakdown", "Fills", "charges", "round_half_up"]

_HALF = Fraction(1, 2)


@dataclass(frozen=True)
class Fills:
    """The executed orders to charge: each order's value in paise (price × quantity), per side."""

    buys: tuple[int, ...] = ()
    sells: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for side in ("buys", "sells"):
            values = tuple(getattr(self, side))
            for position, value in enumerate(values):
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise FillsError(f"{side}[{position}]", f"an order's value is a positive whole number of paise, got {value!r}")
            object.__setattr__(self, side, values)

    @classmethod
    def round_trip(cls, quantity: int, buy_price_paise: int, sell_price_paise: int) -> Fills:
        """One buy order and one sell order of `quantity` (options: premium prices)."""
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise FillsError("quantity", f"a positive whole number, got {quantity!r}")
        return cls((quantity * buy_price_paise,), (quantity * sell_price_paise,))

    @property
    def buy_value(self) -> int:
        return sum(self.buys)

    @property
    def sell_value(self) -> int:
        return sum(self.sells)


@dataclass(frozen=True)
class Breakdown:
    """Charges in integer paise; `unverified` names the charges computed from a rate no source states."""

    brokerage: int
    stt: int
    exchange_txn: int
    sebi: int
    stamp: int
    gst: int
    total: int
    unverified: tuple[str, ...] = ()


def round_half_up(paise: Fraction) -> int:
    """To the nearest paisa, halves up (charges are never negative)."""
    return math.floor(paise + _HALF)


def charges(fills: Fills, segment: str, exchange: str, trade_date: dt.date, plan: BrokeragePlan,
            schedule: Schedule | None = None) -> Breakdown:
    """The charges on `fills` in `segment` on `exchange`, at the rates in force on `trade_date`."""
    rates: Rates = (schedule or _shipped()).rates(segment, exchange, trade_date)
    bought, sold = fills.buy_value, fills.sell_value
    turnover = bought + sold
    stt_base = {"buy": bought, "sell": sold, "both": turnover}[rates.stt_side]
    brokerage = round_half_up(plan.for_orders(segment, fills.buys + fills.sells))
    stt = round_half_up(rates.stt.fraction * stt_base)
    exchange_txn = round_half_up(rates.exchange_txn.fraction * turnover)
    sebi = round_half_up(rates.sebi.fraction * turnover)
    stamp = round_half_up(rates.stamp.fraction * bought)
    gst = round_half_up(rates.gst.fraction * (brokerage + exchange_txn + sebi))
    total = brokerage + stt + exchange_txn + sebi + stamp + gst
    return Breakdown(brokerage, stt, exchange_txn, sebi, stamp, gst, total, rates.unverified)


@functools.cache
def _shipped() -> Schedule:
    return load_schedule()
