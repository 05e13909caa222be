"""SmartAPI's per-route request limits (per API key), as published on the SmartAPI forum."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["LIMITS", "RateLimiter"]

# route name -> (per second, per minute, per hour); None = no limit in that window
LIMITS: dict[str, tuple[int | None, int | None, int | None]] = {
    "loginByPassword": (1, None, None),
    "generateTokens": (1, None, 1000),
    "getProfile": (3, None, 1000),
    "logout": (1, None, None),
    "getRMS": (2, None, None),
    "placeOrder": (20, 500, 1000),
    "modifyOrder": (20, 500, 1000),
    "cancelOrder": (20, 500, 1000),
    "getOrderBook": (1, None, None),
    "getLtpData": (10, 500, 5000),
    "getPosition": (1, None, None),
    "getTradeBook": (1, None, None),
    "searchScrip": (1, None, None),
    "details": (10, 500, 5000),
    "getHolding": (1, None, None),
    "getAllHolding": (1, None, None),
    "quote": (10, 500, 5000),
    "getCandleData": (3, 500, 5000),
    "marginBatch": (10, 500, 5000),
    "createRule": (10, 500, 5000),
    "modifyRule": (10, 500, 5000),
    "cancelRule": (10, 500, 5000),
    "ruleDetails": (10, 500, 5000),
    "ruleList": (10, 500, 5000),
}

_WINDOWS = (1.0, 60.0, 3600.0)


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def allow(self, api_key: str, route: str) -> bool:
        """Count a call; False when it exceeds any of the route's windows (the call is not counted)."""
        limits = LIMITS.get(route)
        if limits is None:
            return True
        now = self.clock()
        calls = self._calls.setdefault((api_key, route), deque())
        while calls and now - calls[0] >= _WINDOWS[-1]:
            calls.popleft()
        for limit, window in zip(limits, _WINDOWS):
            if limit is not None and sum(1 for t in reversed(calls) if now - t < window) >= limit:
                return False
        calls.append(now)
        return True
