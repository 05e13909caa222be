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
