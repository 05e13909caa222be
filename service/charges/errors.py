"""The charges package's errors.

    ChargesError                (reason)
    ├── ScheduleError           (path, problems): the schedule file is unreadable or wrong, every problem at once
    ├── NoRates                 (segment, exchange, trade_date): no version of the schedule covers the trade
    └── FillsError              (field, reason): buy or sell values that cannot be charged
"""
from __future__ import annotations

import datetime as dt

from service.errors import TickguardError

__all__ = ["ChargesError", "ScheduleError", "NoRates", "FillsError"]


class ChargesError(TickguardError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ScheduleError(ChargesError):
    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"charges schedule {path}:\n" + "\n".join(f"  {p}" for p in problems))


class NoRates(ChargesError):
    def __init__(self, segment: str, exchange: str, trade_date: dt.date, reason: str) -> None:
        self.segment = segment
        self.exchange = exchange
        self.trade_date = trade_date
        super().__init__(f"no charges for {segment} on {exchange} traded {trade_date.isoformat()}: {reason}")


class FillsError(ChargesError):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        super().__init__(f"{field}: {reason}")
