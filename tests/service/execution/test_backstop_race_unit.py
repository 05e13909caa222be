"""A race the broker-stop fault campaign (`python -m tests.faults.full --only backstop`) found: an exit
fired while the trade's broker stop is being placed.

`BrokerStops.withdraw` returns at once when the ledger knows no live broker stop of the trade — without
waiting for the trade's worker, which may be between its `held` check and the placement (reading the
attempt number in `_cover`, or writing the order's row before `send` remembers it). The exit then
goes ahead while the stop is placed behind it: the stop's unfilled quantity is reserved in the
position book, the exit finds no position to sell, and the trade is CLOSED ("no position left at the
broker") while the broker still holds it; the stop is cancelled afterwards, as the stop of a closed
trade. The campaign's round (seed 11, `racing+trail`, trade 25): killed while tickguard's cancel-first
withdrawal had cancelled B1 and before its exit was sent; at the restart the worker placed B2 while
the recovery's candle check fired the exit.

Here the interleaving is made deterministic: the worker is held inside `_cover` (its read of the
trade's orders) while the exit is fired, and the exit is held on the trade's ledger lock until the
new stop is at the broker.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from service.broker import OrderKind
from service.broker.model import Fault
from service.execution.backstop_levels import BackupConfig
from service.execution.config import ExecConfig
from service.trades import TradeState, tag_for
from streams import ExitIntent, ExitReason
from tests.service.execution.conftest import FAST, SBIN, Parts

STOP = 79_000


@pytest.fixture
def config() -> ExecConfig:
    return replace(FAST, backup=BackupConfig(mode="backup", min_s=0.0))


def live_stops(parts: Parts, trade_id: int) -> list:
    prefix = tag_for(trade_id, "broker_stop", 1)[:-1]
    return [o for o in parts.broker.orders(prefix) if not o.terminal]


async def test_an_exit_fired_while_the_broker_stop_is_being_placed_takes_the_whole_position(parts: Parts, monkeypatch):
    parts.broker.fault_for = lambda request: Fault(fill="rest") if request.kind is OrderKind.STOPLOSS_LIMIT else None
    trade = await parts.opened(5)
    await parts.orders.journal.record(trade.id, "armed", stop=STOP, target=None, trailing=False)
    [first] = await parts.until(lambda: live_stops(parts, trade.id), "the broker stop placed")

    gate, waiting = asyncio.Event(), asyncio.Event()
    reads = parts.store.orders

    async def held_read(trade_id: int):
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith("broker-stop-"):
            waiting.set()
            await gate.wait()
        return await reads(trade_id)

    monkeypatch.setattr(parts.store, "orders", held_read)
    await parts.broker.cancel_order(first.order_id, "STOPLOSS")  # the stop ends: the worker places another
    await asyncio.wait_for(waiting.wait(), 5)

    lock = parts.orders.lock(trade.id)
    await lock.acquire()  # the exit's first step waits here, as behind a slow store write
    started = asyncio.Event()
    withdraw = parts.stops.withdraw

    async def noted(trade_id: int) -> bool:
        started.set()
        return await withdraw(trade_id)

    monkeypatch.setattr(parts.stops, "withdraw", noted)
    parts.exits.on_exit_intent(ExitIntent(trade_id=trade.id, reason=ExitReason.STOP, level=STOP, tick=None, source="test"))
    await asyncio.wait_for(started.wait(), 5)  # the withdrawal has gone as far as it goes on its own
    gate.set()
    second = tag_for(trade.id, "broker_stop", 2)

    def worker_done() -> bool:  # the second stop placed, or the worker finished without placing it
        return any(request.tag == second for _, request, _ in parts.broker.placements) or \
            not any(task.get_name().startswith("broker-stop-") for task in parts.tasks.running)

    await parts.until(worker_done, "the broker-stop worker past its placement")
    lock.release()

    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    await parts.until(lambda: not live_stops(parts, trade.id), "no broker stop left")
    assert (closed.exited, parts.broker.net("NSE", SBIN)) == (5, 0)
