"""Charges on Indian trades: the statutory and exchange rates as versioned data, brokerage as a plan,
and a calculator that turns fills into a breakdown in integer paise (see `calculator.py`)."""
from __future__ import annotations

from service.charges.brokerage import ANGEL_ONE, BrokeragePlan, FlatPerOrder, PercentOfOrder, flat_plan
from service.charges.calculator import Breakdown, Fills, charges, round_half_up
from service.charges.errors import ChargesError, FillsError, NoRates, ScheduleError
from service.charges.segments import Uncharged, segment_of
from service.charges.schedule import EXCHANGES, SEGMENTS, SHIPPED, Rate, Rates, Schedule, load_schedule

__all__ = [
    "ANGEL_ONE", "BrokeragePlan", "FlatPerOrder", "PercentOfOrder", "flat_plan",
    "Breakdown", "Fills", "charges", "round_half_up",
    "ChargesError", "FillsError", "NoRates", "ScheduleError",
    "Uncharged", "segment_of",
    "EXCHANGES", "SEGMENTS", "SHIPPED", "Rate", "Rates", "Schedule", "load_schedule",
]
