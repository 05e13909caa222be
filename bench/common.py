"""What every benchmark module returns: figures measured against a baseline from the same run."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Figure", "best_rate"]


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None  # the same quantity for the baseline, measured in the same run
    goal: str = ""  # e.g. ">= 0.7x"; printed, not asserted

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def line(self) -> str:
        base = "-" if self.baseline is None else _number(self.baseline)
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        goal = f"  (goal {self.goal})" if self.goal else ""
        return f"{self.name:<48} {_number(self.value):>14} {self.unit:<10} {base:>14} {ratio:>8}{goal}"


def _number(value: float) -> str:
    """One decimal, two under 10 (a 0.14 ms latency is not 0.1 ms)."""
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def best_rate(work: Callable[[], int], repeats: int = 5) -> float:
    """Items per second of the fastest of `repeats` runs; `work` returns how many items it did."""
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        items = work()
        elapsed = time.perf_counter() - started
        best = max(best, items / elapsed)
    return best
