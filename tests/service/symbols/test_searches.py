"""BackgroundSearches: the broker's symbol search off the alert path, deduplicated and bounded."""
from __future__ import annotations

import asyncio

from service.symbols.searches import BackgroundSearches, Requested


class Runs:
    """A search that waits for `gate` (when given) and finds what `found` lists."""

    def __init__(self, found: set[str] = frozenset(), gate: asyncio.Event | None = None, hang: bool = False) -> None:
        self.found, self.gate, self.hang = found, gate, hang
        self.calls: list[str] = []

    async def __call__(self, key: str, ticker: str) -> bool:
        self.calls.append(key)
        if self.hang:
            await asyncio.Event().wait()
        if self.gate is not None:
            await self.gate.wait()
        return key in self.found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_requests_are_deduplicated_and_bounded():
    gate = asyncio.Event()
    runs = Runs(gate=gate)
    searches = BackgroundSearches(runs, limit=3)
    assert [searches.request(k, k) for k in ("A", "A", "B", "C", "D")] == [
        Requested.STARTED, Requested.RUNNING, Requested.STARTED, Requested.STARTED, Requested.FULL]
    assert len(searches) == 3
    gate.set()
    await searches.idle()
    assert runs.calls == ["A", "B", "C"] and len(searches) == 0
    assert searches.request("D", "D") is Requested.STARTED  # room again once the queue drains
    await searches.idle()
    await searches.close()


async def test_a_miss_is_remembered_for_a_while_and_a_find_is_not():
    clock = Clock()
    runs = Runs(found={"NEWCO"})
    searches = BackgroundSearches(runs, miss_hold_s=300, clock=clock)
    searches.request("NOSUCH", "NOSUCH")
    searches.request("NEWCO", "NEWCO")
    await searches.idle()
    clock.now += 299
    assert searches.request("NOSUCH", "NOSUCH") is Requested.MISSED and searches.missed_ago("NOSUCH") == 299
    assert searches.request("NEWCO", "NEWCO") is Requested.STARTED
    clock.now += 1
    assert searches.request("NOSUCH", "NOSUCH") is Requested.STARTED
    await searches.idle()
    assert runs.calls == ["NOSUCH", "NEWCO", "NEWCO", "NOSUCH"]


async def test_a_search_that_never_answers_is_cut_off_and_logged(caplog):
    runs = Runs(hang=True)
    searches = BackgroundSearches(runs, timeout_s=0.05)
    searches.request("A", "NSE:A")
    searches.request("B", "B")
    async with asyncio.timeout(10):
        await searches.idle()
    assert runs.calls == ["A", "B"] and searches.searched == 2
    assert "symbol search of NSE:A failed: no answer in 0.05 s" in caplog.text
    assert searches.request("A", "NSE:A") is Requested.STARTED  # a failure is not a miss: asked again
    await searches.close()


async def test_close_cancels_the_search_in_flight_and_refuses_new_ones():
    runs = Runs(hang=True)
    searches = BackgroundSearches(runs)
    searches.request("A", "A")
    searches.request("B", "B")
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await searches.close()
    assert runs.calls == ["A"] and len(searches) == 0
    assert searches.request("C", "C") is Requested.STOPPED
    await searches.idle()  # nothing left to wait for
