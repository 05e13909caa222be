"""Market-data faults: a stop crossed while the tick socket is dropped, stalled, or fed malformed and
truncated frames still fires.

A *missed stop* is a trade whose price crossed its level in session and that is not EXITING, CLOSED or
UNPROTECTED-and-reported within 1 s of the crossing tick — or, for a stall longer than
STREAM_STALL_S, within 1 s of the reconnection. Deadlines here are measured from the moment the paper
exchange has applied the crossing price:
- garbage frames: 1 s (the crossing tick itself arrives on the live socket);
- a dropped socket: 1 s + the first reconnect backoff (at most 0.5 s) — the crossing tick is the
  snapshot sent on resubscription;
- a stall: STREAM_STALL_S (the watchdog) + 1 s (the REST price fallback's period) + 1 s.
"""
from __future__ import annotations

import time

import pytest

from tests.faults.conftest import SBIN, wait_for

FIRED = ("EXITING", "CLOSED", "UNPROTECTED")
STALL_S = 1.0
FIRST_BACKOFF_S = 0.5


def fired_within(desk, trade_id: int, crossed_at: float, allowed_s: float, what: str) -> float:
    """Seconds from the crossing to the trade leaving OPEN; fails past `allowed_s` (a missed stop)."""
    wait_for(lambda: desk.trade(trade_id)["trade"]["state"] in FIRED, what, timeout=allowed_s + 0.2, every=0.01)
    took = time.monotonic() - crossed_at
    assert took <= allowed_s, f"{what}: fired after {took:.2f} s, allowed {allowed_s} s (a missed stop)"
    return took


def market_sockets(desk) -> int:
    return len(desk.control("GET", "/feed").json()["market"])


def cross(desk, ltp: float = 789) -> float:
    desk.price(ltp)
    return time.monotonic()


@pytest.mark.parametrize("kind", ["truncated", "binary", "text"])
def test_malformed_frames_are_dropped_and_the_next_crossing_still_fires(desk_factory, kind):
    desk = desk_factory()
    trade_id = desk.open_trade()
    body = {"kind": kind, "exchange": "NSE", "token": SBIN} if kind == "truncated" else {"kind": kind}
    for _ in range(3):
        assert desk.control("POST", "/feed/garbage", json=body).json()["sent"] >= 1
    fired_within(desk, trade_id, cross(desk), 1.0, f"stop after {kind} frames")
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit confirmed")


def test_garbage_between_ticks_never_costs_a_stop(desk_factory):
    desk = desk_factory()
    first = desk.open_trade()
    second = desk.open_trade(price=800, strategyname="second", stoploss={"type": "points", "value": 5})
    for kind in ("truncated", "binary", "text"):
        body = {"kind": kind, "exchange": "NSE", "token": SBIN} if kind == "truncated" else {"kind": kind}
        desk.control("POST", "/feed/garbage", json=body)
        desk.price(798)  # above both stops: nothing fires
    assert {desk.trade(t)["trade"]["state"] for t in (first, second)} == {"OPEN"}
    crossed = cross(desk, 794)  # crosses the second's stop (795) only
    fired_within(desk, second, crossed, 1.0, "the tighter stop after garbage")
    assert desk.trade(first)["trade"]["state"] == "OPEN"


@pytest.mark.parametrize("how", ["close", "abort"])
def test_a_stop_crossed_while_the_socket_is_dropped_fires_on_reconnection(desk_factory, how):
    desk = desk_factory()
    trade_id = desk.open_trade()
    wait_for(lambda: market_sockets(desk) >= 1, "the market socket")
    desk.control("POST", "/feed/drop", json={"socket": "market", "how": how})
    crossed = cross(desk)
    fired_within(desk, trade_id, crossed, 1.0 + FIRST_BACKOFF_S, f"stop crossed while the socket was dropped ({how})")
    wait_for(lambda: market_sockets(desk) >= 1, "the market socket back")


def test_repeated_drops_do_not_lose_the_subscription(desk_factory):
    desk = desk_factory()
    trade_id = desk.open_trade()
    for _ in range(3):
        wait_for(lambda: market_sockets(desk) >= 1, "the market socket")
        desk.control("POST", "/feed/drop", json={"socket": "market", "how": "abort"})
    wait_for(lambda: market_sockets(desk) >= 1, "the market socket after three drops")
    desk.price(795)
    desk.price(799)  # live ticks above the stop: still OPEN
    assert desk.trade(trade_id)["trade"]["state"] == "OPEN"
    fired_within(desk, trade_id, cross(desk), 1.0, "stop after repeated drops")


def test_a_stop_crossed_during_a_stall_fires_within_a_second_of_recovery(desk_factory):
    desk = desk_factory(STREAM_STALL_S=str(STALL_S))
    trade_id = desk.open_trade()
    desk.control("POST", "/feed/stall")
    try:
        crossed = cross(desk)
        fired_within(desk, trade_id, crossed, STALL_S + 1.0 + 1.0, "stop crossed during a stall")
    finally:
        desk.control("POST", "/feed/resume")
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit confirmed after the stall")


def test_a_stall_that_ends_before_the_watchdog_still_fires_on_the_resumed_tick(desk_factory):
    desk = desk_factory(STREAM_STALL_S="30")
    trade_id = desk.open_trade()
    desk.control("POST", "/feed/stall")
    desk.price(789)  # swallowed by the stall
    desk.control("POST", "/feed/resume")
    crossed = cross(desk, 788)
    fired_within(desk, trade_id, crossed, 1.0, "stop on the first tick after a short stall")
