"""One tick stream, several holders: a pair stays subscribed while anyone holds it."""
from __future__ import annotations

import pytest

from service.broker.model_streams import ModelTicks
from service.live_data import SharedTicks
from streams import Tick


class RefusingTicks(ModelTicks):
    """A stream with room for `room` instruments, refusing past it as the smart-stream does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def subscribe(self, instruments) -> None:
        wanted = set(instruments)
        if len(self.subscriptions | wanted) > self.room:
            raise ValueError("past the subscription limit")
        super().subscribe(wanted)


def test_the_guard_letting_go_leaves_a_pair_the_relay_holds():
    stream = ModelTicks()
    shared = SharedTicks(stream)
    guard, relay = shared.holder(), shared.holder()
    guard.subscribe([("NSE", "3045"), ("NSE", "99926000")])
    relay.subscribe([("NSE", "3045"), ("NFO", "43650")])
    assert stream.subscriptions == {("NSE", "3045"), ("NSE", "99926000"), ("NFO", "43650")}
    guard.unsubscribe([("NSE", "3045"), ("NSE", "99926000")])
    assert stream.subscriptions == {("NSE", "3045"), ("NFO", "43650")}
    relay.unsubscribe([("NSE", "3045")])
    assert stream.subscriptions == {("NFO", "43650")} and shared.held() == {("NFO", "43650"): 1}


def test_a_holder_counts_a_pair_once_however_often_it_asks():
    stream = ModelTicks()
    shared = SharedTicks(stream)
    guard, relay = shared.holder(), shared.holder()
    relay.subscribe([("NSE", "3045")])
    guard.subscribe([("NSE", "3045"), ("NSE", 3045)])
    guard.subscribe([("NSE", "3045")])
    guard.unsubscribe([("NSE", "3045")])
    assert stream.subscriptions == {("NSE", "3045")}
    relay.unsubscribe([("NSE", "3045"), ("NSE", "3045")])
    guard.unsubscribe([("NSE", "3045")])  # nothing held: nothing released twice
    assert stream.subscriptions == set() and shared.held() == {}


def test_a_refused_subscription_holds_nothing():
    stream = RefusingTicks(room=1)
    shared = SharedTicks(stream)
    holder = shared.holder()
    holder.subscribe([("NSE", "3045")])
    with pytest.raises(ValueError):
        holder.subscribe([("NSE", "1594")])
    assert holder.held == {("NSE", "3045")} and shared.held() == {("NSE", "3045"): 1}


def test_every_holder_sees_the_streams_ticks_events_and_clock_judge():
    stream = ModelTicks()
    shared = SharedTicks(stream)
    guard, relay = shared.holder(), shared.holder()
    seen: list[tuple[str, int]] = []
    guard.ticks.subscribe(lambda tick: seen.append(("guard", tick.ltp)))
    relay.ticks.subscribe(lambda tick: seen.append(("relay", tick.ltp)))
    relay.subscribe([("NSE", "3045")])
    stream.push(Tick("3045", "NSE", 81_250, 1))
    assert seen == [("guard", 81_250), ("relay", 81_250)]
    guard.expect_ticks = lambda exchanges: "MCX" in exchanges
    assert stream.expect_ticks({"NSE"}) is False and relay.expect_ticks({"MCX"}) is True
    assert guard.events is stream.events and guard.subscriptions == {("NSE", "3045")}
