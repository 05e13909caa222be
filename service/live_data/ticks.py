"""One tick stream held by several parts: an instrument stays subscribed while any of them holds it.

The guard subscribes the basis instruments of its armed trades and lets each go with its last trade;
the paper relay (`relay.py`) subscribes every instrument the paper exchange trades for as long as the
service runs. On one socket, the guard letting go must not end the relay's ticks, so each part gets a
`TickHolder` of the same stream, and the stream is asked to unsubscribe a pair only once no holder
holds it.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

from reactivex import Observable

from service.broker.port import ExpectTicks, StreamEvent, TickStream
from streams import Tick

__all__ = ["SharedTicks", "TickHolder"]

Pair = tuple[str, str]


class SharedTicks:
    def __init__(self, stream: TickStream) -> None:
        self.stream = stream
        self._holders: Counter[Pair] = Counter()

    def holder(self) -> TickHolder:
        return TickHolder(self)

    def held(self) -> dict[Pair, int]:
        """How many holders hold each subscribed pair."""
        return dict(self._holders)

    def _take(self, pairs: list[Pair]) -> None:
        """Hold `pairs` once more; a subscription the stream refuses (past its limit) holds nothing."""
        new = [pair for pair in pairs if not self._holders[pair]]
        if new:
            self.stream.subscribe(new)
        self._holders.update(pairs)

    def _release(self, pairs: list[Pair]) -> None:
        gone = []
        for pair in pairs:
            self._holders[pair] -= 1
            if self._holders[pair] <= 0:
                del self._holders[pair]
                gone.append(pair)
        if gone:
            self.stream.unsubscribe(gone)


class TickHolder:
    """A `TickStream` over the shared one: its own subscriptions, everything else the stream's."""

    def __init__(self, shared: SharedTicks) -> None:
        self._shared = shared
        self._held: set[Pair] = set()

    @property
    def expect_ticks(self) -> ExpectTicks:
        return self._shared.stream.expect_ticks

    @expect_ticks.setter
    def expect_ticks(self, judge: ExpectTicks) -> None:
        self._shared.stream.expect_ticks = judge

    @property
    def ticks(self) -> Observable[Tick]:
        return self._shared.stream.ticks

    @property
    def events(self) -> Observable[StreamEvent]:
        return self._shared.stream.events

    @property
    def subscriptions(self) -> Collection[Pair]:
        """What the socket is subscribed to now, whoever holds it: the exchanges in use, for the stall
        watch and the calendar, are the stream's."""
        return self._shared.stream.subscriptions

    @property
    def held(self) -> frozenset[Pair]:
        return frozenset(self._held)

    def subscribe(self, instruments: Iterable[Pair]) -> None:
        new = list(dict.fromkeys(pair for pair in ((e, str(t)) for e, t in instruments) if pair not in self._held))
        self._shared._take(new)
        self._held.update(new)

    def unsubscribe(self, instruments: Iterable[Pair]) -> None:
        gone = []
        for exchange, token in instruments:
            pair = (exchange, str(token))
            if pair in self._held:
                self._held.discard(pair)
                gone.append(pair)
        self._shared._release(gone)

    async def start(self) -> None:
        await self._shared.stream.start()

    async def stop(self) -> None:
        await self._shared.stream.stop()
