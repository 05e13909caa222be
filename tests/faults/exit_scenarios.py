"""Exit scenarios on the model broker, for the property test (`test_exit_property.py`) and `make faults`.

A scenario opens one or two trades on one instrument (same side), gives every placement a fault
(placement refused, rate-limited, in doubt having placed the order or not, fills that rest, come in
part or are rejected, updates prompt, late or lost, an order book that lags, a status that cannot
be read for a while) and fires exits in any order (the stop crossed, manual closes, repeated
intents, partial exits running in the background, pauses between them). Then it crosses the stop
once more and waits for every trade to settle. What must hold whatever the faults:

- exposure: at every change the broker saw, a trade's exits filled plus still working never exceed
  the entry quantity it filled — no two exits that together could sell more than the position;
- no flip: the broker's net position never crosses to the other side;
- settled: every trade ends CLOSED, UNPROTECTED, REJECTED or EXPIRED, and a CLOSED trade exited
  exactly what it filled.

The rule behind exits in doubt assumes the order book shows an order within DOUBT_SETTLE_S of its
placement, so a lagging book here always shows it sooner.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from service.broker import OrderRequest
from service.broker.model import Fault, ModelBroker
from service.trades import parse_tag
from streams import ExitIntent, ExitReason
from tests.faults.invariants import check, entries_done, play_in_tmp
from tests.support.rig import FAST, SBIN, trading_rig

__all__ = ["Scenario", "scenarios", "run", "STATS"]

ENTRY = 80_000  # 800.00
STOP_POINTS = 10
SETTLE_S = FAST.doubt_settle_s
STATS: Counter[str] = Counter()  # what the scenarios run so far did (the full run prints it)


@dataclass(frozen=True)
class Scenario:
    side: str
    quantities: tuple[int, ...]
    entry_faults: tuple[Fault, ...]
    exit_faults: tuple[Fault, ...]
    steps: tuple[tuple, ...]


def _faults(placements: list[str]) -> st.SearchStrategy[Fault]:
    return st.builds(
        Fault,
        placement=st.sampled_from(placements),
        fill=st.sampled_from(["match", "match", "partial", "rest", "reject"]),
        updates=st.sampled_from(["prompt", "prompt", "delayed", "lost"]),
        fraction=st.sampled_from([0.3, 0.5, 0.8]),
        delay_s=st.sampled_from([0.01, 0.05, 0.2]),
        latency_s=st.sampled_from([0.0, 0.0, 0.01, 0.05]),  # a timeout answers late, a 5xx at once
        listed_after_s=st.sampled_from([0.0, 0.0, 0.03, SETTLE_S * 0.8]),
        unreadable_s=st.sampled_from([0.0, 0.0, 0.0, 0.04]),
    )


EXIT_FAULTS = _faults(["ok", "ok", "refused", "rate_limited", "doubt_placed", "doubt_lost"])
ENTRY_FAULTS = _faults(["ok", "ok", "ok", "ok", "ok", "doubt_placed", "doubt_lost"]).map(
    lambda f: Fault(f.placement, "partial" if f.fill == "partial" else "match", f.updates, f.fraction, f.delay_s,
                    f.latency_s, f.listed_after_s, f.unreadable_s))  # an entry is a MARKET order: it never rests unfilled


@st.composite
def scenarios(draw) -> Scenario:
    trades = draw(st.integers(1, 2))
    step = st.one_of(
        st.just(("stop",)),
        st.tuples(st.just("close"), st.integers(0, trades - 1)),
        st.tuples(st.just("intent"), st.integers(0, trades - 1)),
        st.tuples(st.just("reduce"), st.integers(0, trades - 1), st.integers(1, 4)),  # a partial exit, in the background
        st.tuples(st.just("bounce"),),
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.01, 0.05, 0.15])),
    )
    return Scenario(
        side=draw(st.sampled_from(["LONG", "SHORT"])),
        quantities=tuple(draw(st.integers(1, 10)) for _ in range(trades)),
        entry_faults=tuple(draw(ENTRY_FAULTS) for _ in range(trades)),
        exit_faults=tuple(draw(st.lists(EXIT_FAULTS, max_size=8))),
        steps=tuple(draw(st.lists(step, min_size=1, max_size=6))),
    )


def run(scenario: Scenario) -> list[str]:
    """Play the scenario on a fresh store and model broker; what it broke (empty: nothing)."""
    return play_in_tmp(_play, scenario, "tickguard-exits-")


async def _play(scenario: Scenario, tmp: Path) -> list[str]:
    broker = ModelBroker({("NSE", SBIN): ENTRY})
    entry_faults = list(scenario.entry_faults)
    exit_faults = list(scenario.exit_faults)

    def fault_for(request: OrderRequest) -> Fault | None:
        parsed = parse_tag(request.tag)
        if parsed is not None and parsed[1] == "entry":
            return entry_faults.pop(0) if entry_faults else None
        return exit_faults.pop(0) if exit_faults else None

    broker.fault_for = fault_for
    long = scenario.side == "LONG"
    through = ENTRY - (STOP_POINTS + 1) * 100 if long else ENTRY + (STOP_POINTS + 1) * 100
    async with trading_rig(tmp, broker=broker) as rig:
        ids = [await rig.open_trade(quantity, side=scenario.side, stop_points=STOP_POINTS, armed=False)
               for quantity in scenario.quantities]
        await rig.until(entries_done(rig, ids), "the entries to settle", timeout=10)
        parts: list[asyncio.Task] = []
        for step in scenario.steps:
            await _step(rig, step, ids, through, parts)
        broker.set_price("NSE", SBIN, through)  # whatever happened, the stop is crossed in the end
        for trade_id in ids:
            await rig.trader.close(trade_id)
        violations = []
        for trade_id in ids:
            try:
                await rig.settled(trade_id, timeout=15)
            except AssertionError:
                violations.append(f"trade {trade_id} not settled: {await rig.trade(trade_id)}")
        await rig.until(lambda: not rig.trader.exiting, "every exit task to end", timeout=15)
        await rig.until(lambda: all(part.done() for part in parts), "every partial exit to end", timeout=15)
        trades = {trade_id: await rig.trade(trade_id) for trade_id in ids}
    violations += check(broker, trades, long)
    _count(broker, trades)
    return violations


async def _step(rig, step: tuple, ids: list[int], through: int, parts: list[asyncio.Task]) -> None:
    kind = step[0]
    if kind == "reduce":  # runs on while the next steps fire stops, closes and intents around it
        parts.append(asyncio.create_task(rig.trader.reduce(ids[step[1]], step[2])))
    if kind == "stop":
        rig.broker.set_price("NSE", SBIN, through)
    elif kind == "bounce":
        rig.broker.set_price("NSE", SBIN, ENTRY)
    elif kind == "close":
        await rig.trader.close(ids[step[1]])
    elif kind == "intent":
        rig.trader.on_exit_intent(ExitIntent(trade_id=ids[step[1]], reason=ExitReason.CUSTOM, level=None, tick=None,
                                             source="repeated intent"))
    elif kind == "wait":
        await asyncio.sleep(step[1])  # the scenario's own timeline, not a wait for a result


def _count(broker: ModelBroker, trades: dict) -> None:
    STATS["scenarios"] += 1
    STATS["trades"] += len(trades)
    for trade in trades.values():
        STATS[f"trades {trade.state.lower()}"] += 1
    for _, request, fault in broker.placements:
        role = parse_tag(request.tag)[1]
        STATS[f"{role} orders"] += 1
        if fault.placement != "ok" or fault.fill != "match" or fault.updates != "prompt" or fault.listed_after_s \
                or fault.unreadable_s or fault.latency_s:
            STATS["faults injected"] += 1
        if fault.placement.startswith("doubt"):
            STATS[f"{role} orders in doubt"] += 1
