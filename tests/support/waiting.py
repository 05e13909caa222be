"""Waiting on a condition with a deadline — never a sleep standing in for an assertion."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["until", "wait_for"]


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


async def until(predicate: Callable[[], Any | Awaitable[Any]], what: str, timeout: float = 5, every: float = 0.005) -> Any:
    """`wait_for` on the event loop: `predicate()` (awaited if it is a coroutine) until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)
