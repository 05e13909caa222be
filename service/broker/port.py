"""The broker port: everything tickguard asks of a broker, as one async Protocol.

An adapter implements `Broker` (REST-shaped calls) and hands out two streams, `TickStream` and
`OrderUpdateStream`, whose values arrive as reactivex observables — the service never polls a
price. The SmartAPI adapter (`service.broker.smartapi`) serves live trading and the paper exchange
alike; only its URLs and credentials differ.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from reactivex import Observable

from service.broker.types import (
    BrokerOrder,
    Candle,
    ChargeLeg,
    EstimatedCharges,
    Fill,
    Funds,
    GttRequest,
    GttRule,
    GttStatus,
    MarginLeg,
    OrderAck,
    OrderRequest,
    OrderUpdate,
    Position,
    Priority,
    SearchHit,
)
from streams import Tick

__all__ = ["Broker", "ExpectTicks", "TickStream", "OrderUpdateStream", "StreamEvent", "Progress"]

Progress = Callable[[int, int | None], None]  # bytes so far, total bytes when known
ExpectTicks = Callable[[Collection[str]], bool]  # exchanges -> whether ticks are due from them now


class StreamEvent(Protocol):
    """What a stream reports about itself: connected, disconnected, stalled, resubscribed…

    `socket`: which of a tick stream's sockets it is about (1, 2, 3), 0 for a stream of one socket."""

    kind: str
    detail: str
    socket: int


@runtime_checkable
class TickStream(Protocol):
    expect_ticks: ExpectTicks
    """Whether a quiet feed of instruments on these exchanges is suspicious right now; set by the
    service from its session calendar (outside their sessions silence is a closed market, not a
    stall). A stream that watches for stalls asks it, for the exchanges that one socket carries,
    before calling one; it starts as "always"."""

    @property
    def ticks(self) -> Observable[Tick]: ...

    @property
    def events(self) -> Observable[StreamEvent]: ...

    @property
    def subscriptions(self) -> Collection[tuple[str, str]]:
        """The (exchange, token) pairs subscribed now."""

    def subscribe(self, instruments: Iterable[tuple[str, str]]) -> None:
        """Start receiving ticks for (exchange, token) pairs; kept across reconnects."""

    def unsubscribe(self, instruments: Iterable[tuple[str, str]]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class OrderUpdateStream(Protocol):
    @property
    def updates(self) -> Observable[OrderUpdate]: ...

    @property
    def events(self) -> Observable[StreamEvent]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Broker(Protocol):
    async def connect(self) -> None:
        """Log in (or confirm the session) before anything else."""

    async def close(self) -> None: ...

    async def place_order(self, request: OrderRequest, priority: Priority = Priority.ENTRY) -> OrderAck:
        """Never sent twice blindly: after a timeout or 5xx the order is looked up by its tag, and one
        not found (it may still appear) raises `PlacementUnknown` rather than being sent again for an exit."""

    async def modify_order(self, order_id: str, request: OrderRequest, priority: Priority = Priority.EXIT) -> OrderAck: ...

    async def cancel_order(self, order_id: str, variety: str = "NORMAL", priority: Priority = Priority.EXIT) -> OrderAck: ...

    async def order_book(self) -> list[BrokerOrder]: ...

    # GTT rules (SmartAPI's gtt/v1): a stop that lives across days, for DELIVERY positions
    async def create_gtt(self, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        """The new rule's id."""

    async def modify_gtt(self, rule_id: str, request: GttRequest, priority: Priority = Priority.EXIT) -> str: ...

    async def cancel_gtt(self, rule_id: str, exchange: str, token: str, priority: Priority = Priority.EXIT) -> None: ...

    async def gtt_rule(self, rule_id: str) -> GttRule | None: ...

    async def gtt_rules(self, statuses: Sequence[GttStatus] = (GttStatus.NEW, GttStatus.ACTIVE)) -> list[GttRule]:
        """The login's rules in these states (every page of ruleList)."""

    async def order(self, unique_order_id: str) -> BrokerOrder | None: ...

    async def find_orders(self, tag: str) -> list[BrokerOrder]: ...

    async def trade_book(self) -> list[Fill]: ...

    async def positions(self) -> list[Position]: ...

    async def funds(self) -> Funds: ...

    async def margin(self, legs: Sequence[MarginLeg]) -> int:
        """Paise the broker would block for these positions together (SmartAPI's margin batch)."""

    async def estimate_charges(self, legs: Sequence[ChargeLeg]) -> EstimatedCharges:
        """What the broker says these executed orders cost in charges (SmartAPI's estimateCharges)."""

    async def ltp(self, exchange: str, tradingsymbol: str, token: str) -> int: ...

    async def circuit_limits(self, exchange: str, token: str) -> tuple[int, int] | None:
        """Today's (lower, upper) price band in paise, or None where the segment has none."""

    async def candles(self, exchange: str, token: str, interval: str, start: datetime, end: datetime) -> list[Candle]: ...

    async def search(self, exchange: str, text: str) -> list[SearchHit]: ...

    async def instrument_master(self, progress: Progress | None = None) -> bytes: ...

    def tick_stream(self) -> TickStream: ...

    def order_update_stream(self) -> OrderUpdateStream: ...
