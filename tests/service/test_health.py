"""The once-a-second sampler: a sample that fails is logged and the next one is taken, so the gauges
never freeze silently, and ticks are counted once whether their sample failed or not."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from service.health import Sampler
from service.metrics import Metrics


class Store:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.db = SimpleNamespace(write=self._write)

    async def _write(self, work) -> None:
        return None

    async def open_counts(self) -> tuple[int, int]:
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        return 3, 1


def ticks_total(metrics: Metrics) -> float:
    return metrics.ticks_total._value.get()


async def test_a_failed_sample_is_logged_and_the_next_one_taken(caplog):
    guard = SimpleNamespace(ticks_seen=0, older_ticks=0, latest_tick_ms=None, records={})
    metrics = Metrics()
    maintained: list[bool] = []
    sampler = Sampler(guard=guard, store=Store(failures=2), metrics=metrics,
                      calendar_watch=SimpleNamespace(check=lambda: None),
                      heap=SimpleNamespace(maintain=lambda guarding: maintained.append(guarding)),
                      halted=lambda: False, now_ms=lambda: len(maintained) * 1000 + 10 ** 12, every_s=0.01)
    sampler.start()
    try:
        for _ in range(500):
            guard.ticks_seen += 7
            guard.latest_tick_ms = 10 ** 12
            await asyncio.sleep(0.002)
            if len(maintained) >= 2:
                break
    finally:
        await sampler.stop()
    assert len(maintained) >= 2, "the sampler stopped after its failures"
    assert [r.getMessage() for r in caplog.records if r.name == "tickguard.health"].count("metrics sample failed") == 2
    assert metrics.open_trades._value.get() == 2 and metrics.unprotected_trades._value.get() == 1
    assert ticks_total(metrics) <= guard.ticks_seen  # every tick counted once at most, failed samples included
    assert ticks_total(metrics) >= guard.ticks_seen - 7 * 10


def test_the_tick_stream_is_up_while_every_socket_is_and_says_which_one_is_down():
    from service.broker.smartapi.reconnect import StreamEvent
    from service.health import StreamHealth

    metrics = Metrics()
    health = StreamHealth(metrics, book=lambda login: None)

    def connected() -> float:
        return metrics.stream_connected.labels("ticks")._value.get()

    health.stream_event("ticks", StreamEvent("connected", "socket 1: ws://x", socket=1))
    health.stream_event("ticks", StreamEvent("connected", "socket 2: ws://x", socket=2))
    assert health.ticks == (True, "connected") and connected() == 1
    health.stream_event("ticks", StreamEvent("disconnected", "socket 2: connection closed", socket=2))
    assert health.ticks == (False, "disconnected: socket 2: connection closed") and connected() == 0
    health.stream_event("ticks", StreamEvent("recovered", "socket 1: frames flow again", socket=1))  # 2 still down
    assert health.ticks == (False, "disconnected: socket 2: connection closed") and connected() == 0
    health.stream_event("ticks", StreamEvent("subscribed", "socket 2: 500 instruments", socket=2))  # no news
    assert health.ticks[0] is False
    health.stream_event("ticks", StreamEvent("connected", "socket 2: ws://x", socket=2))
    assert health.ticks == (True, "connected") and connected() == 1
    assert health.tick_sockets == {1: (True, "recovered"), 2: (True, "connected")}
