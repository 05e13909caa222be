"""Order pacing on virtual time (the pacers read the loop's clock): priorities, entry expiry, the hourly
reserve for exits."""
from __future__ import annotations

import asyncio

import pytest

from service.broker import EntryExpired
from service.broker.smartapi.pacing import OrderPacer, RoutePacer, Window
from service.broker.types import Priority
from tests.support.clocks import on_virtual_time


def loop_time() -> float:
    return asyncio.get_running_loop().time()


async def released(pacer: OrderPacer, jobs: list[tuple[str, str, Priority, float | None]]) -> tuple[list[str], dict]:
    order: list[str] = []
    failures: dict[str, BaseException] = {}

    async def run(name, segment, priority, ttl):
        try:
            await pacer.acquire(segment, priority, ttl)
            order.append(name)
        except EntryExpired as exc:
            failures[name] = exc

    tasks = []
    for job in jobs:
        tasks.append(asyncio.create_task(run(*job)))
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    await pacer.close()
    return order, failures


@on_virtual_time
async def test_an_exit_overtakes_queued_entries():
    pacer = OrderPacer(per_segment_per_s=2, clock=loop_time)
    jobs = [(f"entry{n}", "NSE", Priority.ENTRY, None) for n in range(6)] + [("exit", "NSE", Priority.EXIT, None)]
    order, _ = await released(pacer, jobs)
    assert order.index("exit") <= 2, order
    assert sorted(order) == sorted(name for name, *_ in jobs)


@on_virtual_time
async def test_entries_waiting_past_their_ttl_expire_and_exits_never_do():
    pacer = OrderPacer(per_segment_per_s=1, clock=loop_time)
    jobs = [("e1", "NSE", Priority.ENTRY, 0.3), ("e2", "NSE", Priority.ENTRY, 0.3), ("x1", "NSE", Priority.EXIT, 0.3)]
    order, failures = await released(pacer, jobs)
    assert order == ["e1", "x1"]
    assert set(failures) == {"e2"} and failures["e2"].waited_s >= 0.3


@on_virtual_time
async def test_the_hourly_reserve_is_kept_for_exits():
    pacer = OrderPacer(per_segment_per_s=100, limits=(100, 100, 4), exit_reserve=2, clock=loop_time)
    jobs = [(f"e{n}", "NSE", Priority.ENTRY, 0.2) for n in range(3)] + [("x1", "NSE", Priority.EXIT, None), ("x2", "NFO", Priority.EXIT, None)]
    order, failures = await released(pacer, jobs)
    assert order[:2] == ["e0", "e1"] and set(order[2:]) == {"x1", "x2"}
    assert set(failures) == {"e2"}


@on_virtual_time
async def test_a_full_segment_does_not_hold_back_another_segment():
    pacer = OrderPacer(per_segment_per_s=1, clock=loop_time)
    started = loop_time()
    order, _ = await released(pacer, [("nse1", "NSE", Priority.ENTRY, None), ("nse2", "NSE", Priority.ENTRY, None),
                                      ("nfo1", "NFO", Priority.ENTRY, None)])
    assert order == ["nse1", "nfo1", "nse2"]
    assert loop_time() - started >= 0.9


def test_window_counts_a_sliding_period():
    window = Window(2, 1.0)
    window.record(0.0)
    window.record(0.5)
    assert window.wait(0.6) == pytest.approx(0.4)
    assert window.wait(1.0) == 0.0


@on_virtual_time
async def test_route_pacer_spaces_calls_to_the_route_limit():
    pacer = RoutePacer(clock=loop_time)
    started = loop_time()
    for _ in range(3):
        await pacer.acquire("getOrderBook")  # 1/s
    assert loop_time() - started >= 1.9
    await pacer.acquire("no-such-route")


@on_virtual_time
async def test_an_order_with_a_free_slot_and_nobody_ahead_goes_without_queueing():
    pacer = OrderPacer(per_segment_per_s=2, clock=loop_time)
    await pacer.acquire("NSE", Priority.EXIT)
    await pacer.acquire("NSE", Priority.ENTRY, 5)
    assert pacer._dispatcher is None  # neither waited for the dispatcher's turn of the loop
    third = asyncio.create_task(pacer.acquire("NSE", Priority.ENTRY, 5))  # the segment's 2/s are used: it queues
    await asyncio.sleep(0.01)
    assert not third.done() and pacer.queued == 1
    await third
    await pacer.close()
