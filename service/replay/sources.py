"""Trades from a tickguard store, scheduled into a replay.

The store is opened read-only (`Store(path, read_only=True)`: nothing migrated or written, so the file
of a running tickguard, or a copy, is read as it stands) and read through its own read paths: every
trade (`Store.trades`), then each one's events (`Store.events`), folded into a `TradePlan`.

`schedule_trades` puts each plan into the replay for every variant: the entry fills arm (then amend)
the trade at their times with the variant's rules; the recorded manual, signal, risk and broker-stop
closes and the partial exits' fills follow at theirs, for as long as the variant still holds the trade.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.guard import engine_trade
from service.replay.errors import ReplayError
from service.replay.plans import TradePlan, plan_from_events
from service.replay.run import Replay, TradeRun, VariantRun
from service.replay.variants import Variant
from service.store import Store
from streams import Amend, Arm, Close, ExitReason, Reduce

__all__ = ["plans_from_store", "run_async", "schedule_trades"]

T = TypeVar("T")


async def _read_plans(path: Path) -> list[TradePlan]:
    store = Store(path, read_only=True)
    try:
        store.open()
    except (OSError, RuntimeError) as exc:
        raise ReplayError(str(path), str(exc)) from None
    try:
        plans = []
        for trade in sorted(await store.trades(), key=lambda t: t.id):
            plan = plan_from_events(await store.events(trade.id))
            if plan is not None:
                plans.append(plan)
        return plans
    finally:
        await store.close()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the store's reads to the end from plain code, also where this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def plans_from_store(path: str | Path) -> list[TradePlan]:
    """Every trade of the store whose entry filled, oldest first, as a plan."""
    return run_async(_read_plans(Path(path)))


def schedule_trades(replay: Replay, plans: Sequence[TradePlan], variants: Sequence[Variant]) -> None:
    by_name = {variant.name: variant for variant in variants}
    for plan in plans:
        _schedule(replay, plan, by_name)


def _open(run: VariantRun, trade_id: int) -> TradeRun | None:
    """The trade in this variant while the engine still holds it (armed, not exited, not refused)."""
    held = run.trades.get(trade_id)
    return held if held is not None and held.exit is None and held.refused is None else None


def _schedule(replay: Replay, plan: TradePlan, by_name: dict[str, Variant]) -> None:
    trade_id = plan.trade_id
    for n, ((at_ms, record), fill) in enumerate(zip(plan.arms, plan.entries)):
        if n == 0:
            def arm(run: VariantRun, record=record, fill=fill, at_ms=at_ms) -> None:
                armed = by_name[run.name].apply(record)
                trade = TradeRun(armed, at_ms, entries=[fill], recorded=plan.recorded)
                run.arm(trade, Arm(engine_trade(armed)))
            replay.at(at_ms, arm)
        else:
            def amend(run: VariantRun, record=record, fill=fill) -> None:
                held = _open(run, trade_id)
                if held is not None:
                    held.record = by_name[run.name].apply(record)
                    held.entries.append(fill)
                    run.command(Amend(engine_trade(held.record)))
            replay.at(at_ms, amend)
    for fill in plan.reductions:
        def reduce(run: VariantRun, fill=fill) -> None:
            held = _open(run, trade_id)
            if held is not None:
                held.reductions.append(fill)
                run.command(Reduce(trade_id, fill.quantity, fill.price))
        replay.at(fill.at_ms, reduce)
    for close in plan.closes:
        def inject(run: VariantRun, reason: str = close.reason) -> None:
            if _open(run, trade_id) is not None:
                run.command(Close(trade_id, ExitReason(reason)))
        replay.at(close.at_ms, inject)
