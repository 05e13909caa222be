"""Start-up's waits: capped, jittered backoff; a refused login is final, an unreachable broker is not."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.broker.errors import BrokerUnavailable, LoginFailed
from service.errors import LoginRefused
from service.startup import Backoff, Readiness


@given(tries=st.integers(1, 200), draw=st.floats(0, 1))
def test_every_wait_is_within_its_jitter_band_and_the_cap(tries, draw):
    backoff = Backoff(first_s=0.5, cap_s=30, jitter=0.5)
    ceiling = min(30, 0.5 * 2 ** (tries - 1))
    wait = backoff.delay(tries, lambda: draw)
    assert ceiling * 0.5 - 1e-9 <= wait <= ceiling + 1e-9 and wait <= 30


def test_waits_double_until_the_cap():
    backoff = Backoff(first_s=0.5, cap_s=30, jitter=0)
    assert [backoff.delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def run(coroutine):
    return asyncio.run(coroutine)


def test_an_unreachable_broker_is_tried_until_it_answers():
    slept: list[float] = []
    failures = [BrokerUnavailable("cannot reach the broker: refused", route="loginByPassword")] * 3
    readiness = Readiness(backoff=Backoff(jitter=0))
    states: list[str] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        states.append(f"{readiness.state}: {readiness.reason}")

    async def connect() -> None:
        if failures:
            raise failures.pop()

    readiness.sleep = sleep
    run(readiness.reach("P0001", connect))
    assert slept == [0.5, 1, 2] and readiness.waiting.is_set() and readiness.state == "starting"
    assert states[0] == ("waiting: broker unreachable for P0001: cannot reach the broker: refused (loginByPassword) "
                         "(try 1, next in 0.5 s)")


def test_a_refused_login_is_final():
    readiness = Readiness()

    async def connect() -> None:
        raise LoginFailed("Invalid totp", "AB1050", route="loginByPassword")

    with pytest.raises(LoginRefused) as refused:
        run(readiness.reach("P0001", connect))
    assert str(refused.value) == "the broker refused the login of P0001: Invalid totp [AB1050] (loginByPassword)"
    assert not readiness.waiting.is_set()
