"""The model broker's two streams: ticks from `ModelBroker.set_price`, and its order updates.

Both are plain reactivex subjects the model broker pushes into; they never connect, stall or drop on
their own (the model's `Fault.updates` does that per order).
"""
from __future__ import annotations

from collections.abc import Iterable

from reactivex import Observable
from reactivex.subject import Subject

from service.broker.port import ExpectTicks
from service.broker.types import OrderUpdate
from streams import Tick

__all__ = ["ModelOrderUpdates", "ModelTicks"]


class ModelTicks:
    """The tick stream: `ModelBroker.set_price` ticks the instruments subscribed."""

    def __init__(self) -> None:
        self._ticks: Subject = Subject()
        self._events: Subject = Subject()
        self.subscriptions: set[tuple[str, str]] = set()
        self.expect_ticks: ExpectTicks = lambda exchanges: True  # the port's: this stream never stalls, none asks

    @property
    def ticks(self) -> Observable[Tick]:
        return self._ticks

    @property
    def events(self) -> Observable:
        return self._events

    def subscribe(self, instruments: Iterable[tuple[str, str]]) -> None:
        self.subscriptions.update(instruments)

    def unsubscribe(self, instruments: Iterable[tuple[str, str]]) -> None:
        self.subscriptions.difference_update(instruments)

    def push(self, tick: Tick) -> None:
        """Deliver a tick, if its instrument is subscribed."""
        if (tick.exchange, tick.token) in self.subscriptions:
            self._ticks.on_next(tick)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class ModelOrderUpdates:
    """The order-update stream: every change of an order, unless its fault delays or loses it."""

    def __init__(self) -> None:
        self._updates: Subject = Subject()
        self._events: Subject = Subject()

    @property
    def updates(self) -> Observable[OrderUpdate]:
        return self._updates

    @property
    def events(self) -> Observable:
        return self._events

    def push(self, update: OrderUpdate) -> None:
        self._updates.on_next(update)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
