"""Faults armed by the control API for the next N placements.

Order faults (`reject`, `partial`, `open`, `cancel_loses`) are applied by the fill engine to the order
they are attached to at acceptance. Transport faults (`timeout`, `error5xx`) are taken by the HTTP layer
before each placement with `take_transport()`. The two queues are independent, so "the next order
times out" and "the next order fills partially" can both be armed at once. Within a queue, faults
added later start once the earlier ones are used up.

Route holds (`RouteHolds`) are a third, separate control: every request to a held route (by its
SmartAPI name, `searchScrip`) is accepted and left unanswered until the hold is released, the way a
broker that stops answering one route looks from outside. A held request whose client gives up is
dropped, never handled afterwards; one still waiting when the hold is released is handled normally.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["Fault", "FaultPlan", "RouteHolds", "FAULT_KINDS", "ORDER_FAULTS", "TRANSPORT_FAULTS", "DEFAULT_REJECT_TEXT"]

ORDER_FAULTS = ("reject", "partial", "open", "cancel_loses")
TRANSPORT_FAULTS = ("timeout", "error5xx")
FAULT_KINDS = ORDER_FAULTS + TRANSPORT_FAULTS
DEFAULT_REJECT_TEXT = "Your order has been rejected by the exchange (paper fault)"


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault for the next `count` placements. Bad values raise ValueError.

    reject: the order turns "rejected" with `text`.
    partial: at its first match the order fills `fraction` of its quantity (rounded down to whole
        lots); the rest rests — a MARKET remainder rests until modified or cancelled.
    open: the order is accepted and stays open, never filling by itself until it is modified.
    cancel_loses: the order's cancel loses the race to a fill. When a cancel arrives while the order
        is still working, the exchange first fills all of its unfilled quantity (a LIMIT or a
        STOPLOSS_LIMIT, triggered first if it was waiting, at its limit price; a MARKET or
        STOPLOSS_MARKET at the ltp) and refuses the cancel as it refuses any cancel of a finished
        order; the fill's order update is pushed `update_after_s` seconds later, so the cancel's reply
        reaches the client first. It stays with the order across modifications (a trailed stop keeps it).
    timeout: the HTTP layer waits `seconds` before answering; the order is placed.
    error5xx: the HTTP layer answers HTTP `status`; `placed` says whether the order was placed anyway.
    A placed order of either is left out of the order book (and its details) for `listed_after_s`
    seconds: a broker whose book lags its order entry.
    """

    kind: str
    count: int = 1
    text: str = DEFAULT_REJECT_TEXT
    fraction: float = 0.5
    seconds: float = 8.0  # the SDK gives up after 7 s
    status: int = 500
    placed: bool = False
    listed_after_s: float = 0.0
    update_after_s: float = 0.2

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ValueError(problem)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        return cls(**body)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    def __init__(self) -> None:
        self._order: deque[list[Any]] = deque()  # [Fault, remaining]
        self._transport: deque[list[Any]] = deque()

    def add(self, fault: Fault) -> None:
        (self._order if fault.kind in ORDER_FAULTS else self._transport).append([fault, fault.count])

    def arm(self, kind: str, count: int = 1, **options: Any) -> Fault:
        fault = Fault(kind, count, **options)
        self.add(fault)
        return fault

    def take_order(self) -> Fault | None:
        """The order fault for the placement being accepted now, if one is armed (used by the engine)."""
        return _take(self._order)

    def take_transport(self) -> Fault | None:
        """The transport fault for the placement being handled now, if one is armed (used by the HTTP layer)."""
        return _take(self._transport)

    def clear(self) -> None:
        self._order.clear()
        self._transport.clear()

    def pending(self) -> list[dict[str, Any]]:
        """What is still armed, order faults first, with how many placements each has left."""
        return [{**fault.as_dict(), "remaining": left} for fault, left in (*self._order, *self._transport)]


class RouteHolds:
    """Routes held unanswered until released (see the module's docstring)."""

    def __init__(self) -> None:
        self.known: set[str] = set()  # the route names the HTTP layer serves (filled in by paper.app)
        self._held: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}

    def hold(self, route: str) -> None:
        """Hold every request to `route` from now on; ValueError for a route the exchange does not serve."""
        if route not in self.known:
            raise ValueError(f"no route {route!r}; expected one of {', '.join(sorted(self.known))}")
        self._held.setdefault(route, asyncio.Event())

    def release(self, route: str | None = None) -> list[str]:
        """Let `route`'s held requests (or every route's) through; the routes released."""
        routes = list(self._held) if route is None else [route] if route in self._held else []
        for name in routes:
            self._held.pop(name).set()
        return routes

    def held(self) -> dict[str, int]:
        """Each held route and how many of its requests are waiting now."""
        return {route: self._waiting.get(route, 0) for route in self._held}

    async def passage(self, route: str, client_gone: Callable[[], Awaitable[object]]) -> bool:
        """True at once for a route that is not held; else wait for the release (True) or for
        `client_gone` to return (False: the request is to be dropped)."""
        event = self._held.get(route)
        if event is None:
            return True
        self._waiting[route] = self._waiting.get(route, 0) + 1
        released = asyncio.ensure_future(event.wait())
        gone = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait((released, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (released, gone):
                waiter.cancel()
            await asyncio.gather(released, gone, return_exceptions=True)
            self._waiting[route] -= 1
        return released.done() and not released.cancelled()


def _take(queue: deque[list[Any]]) -> Fault | None:
    if not queue:
        return None
    entry = queue[0]
    entry[1] -= 1
    if entry[1] == 0:
        queue.popleft()
    return entry[0]


def _problems(fault: Fault) -> list[str]:
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    problems = []
    if fault.kind not in FAULT_KINDS:
        problems.append(f"unknown fault kind {fault.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    if isinstance(fault.count, bool) or not isinstance(fault.count, int) or fault.count < 1:
        problems.append(f"count must be a whole number >= 1, got {fault.count!r}")
    if not (isinstance(fault.text, str) and fault.text.strip()):
        problems.append("text must be a non-empty string")
    if not (number(fault.fraction) and 0 < fault.fraction < 1):
        problems.append(f"fraction must be between 0 and 1 (exclusive), got {fault.fraction!r}")
    if not (number(fault.seconds) and fault.seconds >= 0):
        problems.append(f"seconds must be a number >= 0, got {fault.seconds!r}")
    if isinstance(fault.status, bool) or not isinstance(fault.status, int) or not 500 <= fault.status <= 599:
        problems.append(f"status must be an HTTP status 500..599, got {fault.status!r}")
    if not (number(fault.listed_after_s) and fault.listed_after_s >= 0):
        problems.append(f"listed_after_s must be a number >= 0, got {fault.listed_after_s!r}")
    if not (number(fault.update_after_s) and fault.update_after_s >= 0):
        problems.append(f"update_after_s must be a number >= 0, got {fault.update_after_s!r}")
    if not isinstance(fault.placed, bool):
        problems.append(f"placed must be true or false, got {fault.placed!r}")
    return problems
