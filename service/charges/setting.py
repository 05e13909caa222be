"""The charges settings read: BROKERAGE as a plan, CHARGES_SCHEDULE as a schedule."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from service.charges.brokerage import ANGEL_ONE, BrokeragePlan, PercentOfOrder, flat_plan
from service.charges.errors import ChargesError
from service.charges.schedule import SEGMENTS, Schedule, load_schedule
from service.charges.trades import Charging

__all__ = ["charges_problems", "charging", "parse_plan"]

_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%(?:<=(\d+(?:\.\d+)?))?$")
_RUPEES = re.compile(r"^\d+(?:\.\d{1,2})?$")


def parse_plan(text: str) -> BrokeragePlan:
    """`angel-one`; `20` (Rs 20 an executed order, `0` for none); `0.03%` or `0.03%<=20` (percent of
    the order's value, at most Rs 20) — the same rule in every segment."""
    text = text.strip().lower()
    if text in ("angel-one", "angelone", "angel"):
        return ANGEL_ONE
    if _RUPEES.match(text):
        return flat_plan(Decimal(text))
    match = _PERCENT.match(text)
    if match:
        cap = match.group(2)
        try:
            cap_paise = None if cap is None else int(Decimal(cap) * 100)
            rule = PercentOfOrder(Decimal(match.group(1)), cap_paise=cap_paise)
        except (InvalidOperation, ChargesError) as bad:
            raise ChargesError(str(bad)) from bad
        return BrokeragePlan(f"{match.group(1)}%" + (f" up to Rs {cap}" if cap else ""),
                             {segment: rule for segment in SEGMENTS})
    raise ChargesError(f"expected angel-one, rupees an order (20) or a percentage with an optional cap "
                       f"(0.03% or 0.03%<=20), got {text!r}")


def charging(brokerage: str, schedule_path: str = "") -> Charging:
    schedule: Schedule = load_schedule(schedule_path) if schedule_path else load_schedule()
    return Charging(parse_plan(brokerage), schedule)


def charges_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        parse_plan(values.get("brokerage", "angel-one"))
    except ChargesError as bad:
        problems.append(("BROKERAGE", bad.reason if hasattr(bad, "reason") else str(bad)))
    path = values.get("charges_schedule", "")
    if path:
        try:
            load_schedule(path)
        except (ChargesError, OSError) as bad:
            problems.append(("CHARGES_SCHEDULE", str(bad)))
    return problems
