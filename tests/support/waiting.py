"""Waiting on a condition with a deadline — never a sleep standing in for an assertion."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_for"]


def wait_for(predicate: Callable[[], Any], what: str = "condition", timeout: float = 15, every: float = 0.02) -> Any:
    """The first truthy value of `predicate()`; AssertionError naming `what` once `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
