"""Broker-stop scenarios on the model broker, for the property test (`test_backstop_property.py`).

A scenario opens one or two trades on one instrument (same side, long or short), each guarded by
tickguard's trailing stop with a broker-side backup stop behind it (BROKER_STOP=backup), its entry
perhaps in slices or filled in parts (so the broker stop is grown), and plays random steps:

- price moves that trail the stop up, come back, cross tickguard's stop only, gap through both
  stops (the broker's stop-limit fills) or past its limit (it triggers and rests);
- faults on the broker stops (placement refused or in doubt, fills in part or resting, updates late
  or lost, a cancel or a modify that loses the race to a fill, its news after the refusal) and on
  the exits;
- manual closes, partial exits running in the background, the market filling an entry's rest;
- kills at any point (also right after a cross, mid-exit, with the writes not yet committed lost),
  with price moves while tickguard is down, and restarts reconciled by `service.recovery`.

Then tickguard is restarted if it is down, the stops are crossed once more, every trade is closed
and waited for. What must hold, replayed over every change of every order the broker saw (the
model's journal):

- no double exit: per trade, the units its broker stops and its exits filled never exceed what its
  entry filled;
- exposure: per trade, those fills plus what its working exits and its working broker stops could
  still fill never exceed what its entry filled — a broker stop is working (trigger pending,
  triggered or resting) until it is cancelled, filled or rejected, and tickguard's own exit goes
  out only once it is final, so the two can never both fill beyond the position (the issue's
  "never both fill");
- no flip: the broker's net position never crosses to the other side;
- settled: every trade ends CLOSED, UNPROTECTED, REJECTED or EXPIRED; a CLOSED one exited exactly
  what it filled, as the store and the broker both count it; with every trade closed the net is
  flat; and no broker stop stays working for a trade that is no longer open.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from service.broker import OrderKind, OrderRequest
from service.broker.model import Fault, ModelBroker
from service.execution.backstop_levels import BackupConfig
from service.trades import TradeState, parse_tag
from tests.faults.invariants import check, entries_done, play_in_tmp, stops_left
from tests.support.rig import FAST, SBIN, trading_rig

__all__ = ["Scenario", "scenarios", "run", "check", "STATS"]

ENTRY = 80_000  # ₹800.00
STOP_POINTS = 10  # tickguard's stop ₹10 away, trailing ₹10 behind the best price since arming
RULES = {"stop": {"type": "points", "value": STOP_POINTS}, "trail": {"type": "points", "value": STOP_POINTS}}
# The broker's stop 0.2 % behind tickguard's (a long's at ₹790: trigger ₹788.40, limit ₹784.45),
# trailed at most every 50 ms.
CONFIG = dataclasses.replace(FAST, backup=BackupConfig(mode="backup", min_s=0.05))
# Where the price goes, in paise from the entry against a long (a short's mirror): +800 trails the
# stop to ₹798 (the broker's trigger to ₹796.40); -1050 crosses tickguard's first stop only; -1250
# gaps through both (the stop-limit fills); -2000 gaps past the broker's limit (it rests triggered).
LEVELS = (800, 500, 200, 0, -600, -1050, -1250, -1400, -2000)
FINAL = -1300  # the last cross: through tickguard's stop and the broker's first trigger
STATS: Counter[str] = Counter()  # what the scenarios run so far did


@dataclass(frozen=True)
class Scenario:
    side: str
    quantities: tuple[int, ...]
    freeze: int | None  # the exchange's freeze quantity: entries, stops and exits in slices
    entry_faults: tuple[Fault, ...]
    stop_faults: tuple[Fault, ...]
    exit_faults: tuple[Fault, ...]
    steps: tuple[tuple, ...]


ENTRY_FAULTS = st.builds(
    Fault,
    placement=st.sampled_from(["ok", "ok", "ok", "doubt_placed"]),
    fill=st.sampled_from(["match", "match", "partial"]),  # a MARKET order: it never rests unfilled
    updates=st.sampled_from(["prompt", "prompt", "delayed", "lost"]),
    fraction=st.sampled_from([0.3, 0.5]),
    delay_s=st.sampled_from([0.01, 0.05]),
)
STOP_FAULTS = st.builds(
    Fault,
    placement=st.sampled_from(["ok", "ok", "ok", "ok", "refused", "doubt_placed", "doubt_lost"]),
    fill=st.sampled_from(["match", "match", "partial", "rest"]),
    updates=st.sampled_from(["prompt", "prompt", "delayed", "lost"]),
    cancel=st.sampled_from(["ok", "ok", "loses"]),
    modify=st.sampled_from(["ok", "ok", "loses"]),
    fraction=st.sampled_from([0.3, 0.5]),
    delay_s=st.sampled_from([0.01, 0.05, 0.2]),
    race_delay_s=st.sampled_from([0.0, 0.05, 0.2]),
    latency_s=st.sampled_from([0.0, 0.0, 0.01]),
)
EXIT_FAULTS = st.builds(
    Fault,
    placement=st.sampled_from(["ok", "ok", "ok", "doubt_placed", "rate_limited"]),
    fill=st.sampled_from(["match", "match", "partial", "rest"]),
    updates=st.sampled_from(["prompt", "prompt", "delayed", "lost"]),
    cancel=st.sampled_from(["ok", "ok", "loses"]),
    delay_s=st.sampled_from([0.01, 0.05]),
    race_delay_s=st.sampled_from([0.0, 0.05]),
)


@st.composite
def scenarios(draw) -> Scenario:
    trades = draw(st.integers(1, 2))
    level = st.sampled_from(LEVELS)
    step = st.one_of(
        st.tuples(st.just("price"), level),
        st.tuples(st.just("price"), level),
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.02, 0.08, 0.2])),
        st.tuples(st.just("close"), st.integers(0, trades - 1)),
        st.tuples(st.just("reduce"), st.integers(0, trades - 1), st.integers(1, 4)),  # in the background
        st.tuples(st.just("fill_rest"),),
        st.tuples(st.just("kill"), st.booleans()),  # (lose the writes not yet committed)
        st.tuples(st.just("crash"), level, st.sampled_from([0.0, 0.003, 0.02])),  # a move, then killed soon after
        st.tuples(st.just("restart"),),
    )
    return Scenario(
        side=draw(st.sampled_from(["LONG", "SHORT"])),
        quantities=tuple(draw(st.integers(1, 8)) for _ in range(trades)),
        freeze=draw(st.sampled_from([None, None, 3])),
        entry_faults=tuple(draw(st.lists(ENTRY_FAULTS, max_size=3))),
        stop_faults=tuple(draw(st.lists(STOP_FAULTS, max_size=8))),
        exit_faults=tuple(draw(st.lists(EXIT_FAULTS, max_size=4))),
        steps=tuple(draw(st.lists(step, min_size=1, max_size=8))),
    )


def run(scenario: Scenario) -> list[str]:
    """Play the scenario on a fresh store and model broker; what it broke (empty: nothing)."""
    return play_in_tmp(_play, scenario, "tickguard-backstops-")


def price_at(offset: int, long: bool) -> int:
    return ENTRY + offset if long else ENTRY - offset


async def _play(scenario: Scenario, tmp: Path) -> list[str]:
    broker = ModelBroker({("NSE", SBIN): ENTRY})
    faults = {"entry": list(scenario.entry_faults), "broker_stop": list(scenario.stop_faults),
              "exit": list(scenario.exit_faults)}

    def fault_for(request: OrderRequest) -> Fault | None:
        parsed = parse_tag(request.tag)
        waiting = faults[parsed[1]] if parsed is not None else []
        return waiting.pop(0) if waiting else None

    broker.fault_for = fault_for
    long = scenario.side == "LONG"
    spec = {"freeze_qty": scenario.freeze} if scenario.freeze else {}
    violations: list[str] = []
    async with trading_rig(tmp, broker=broker, config=CONFIG, record_changes=True) as rig:
        ids = [await rig.open_trade(quantity, side=scenario.side, rules=RULES, armed=False, **spec)
               for quantity in scenario.quantities]
        await rig.until(entries_done(rig, ids), "the entries to settle", timeout=10)
        for step in scenario.steps:
            await _step(rig, step, ids, long)
        if not rig.alive:
            await _restart(rig)
        broker.set_price("NSE", SBIN, price_at(FINAL, long))  # whatever happened, the stops are crossed in the end
        for trade_id in ids:
            await rig.trader.close(trade_id)
        for trade_id in ids:
            try:
                await rig.settled(trade_id, timeout=30)
            except AssertionError:
                violations.append(f"trades not settled: {trade_id} is {(await rig.trade(trade_id)).state}")
        await rig.until(lambda: not rig.trader.exiting, "every exit task to end", timeout=30)
        trades = {trade_id: await rig.trade(trade_id) for trade_id in ids}
        try:
            await rig.until(lambda: not stops_left(broker, trades), "the closed trades' broker stops to end", timeout=5)
        except AssertionError:
            pass  # reported by `check`
    violations += check(broker, trades, long)
    _count(broker, trades, scenario)
    return violations


async def _restart(rig) -> None:
    await rig.restart()
    ltp = rig.broker.prices[("NSE", SBIN)]
    rig.broker.set_price("NSE", SBIN, ltp)  # the feed's first tick after subscribing: where the market is


async def _step(rig, step: tuple, ids: list[int], long: bool) -> None:
    kind = step[0]
    if kind == "price":
        rig.broker.set_price("NSE", SBIN, price_at(step[1], long))
    elif kind == "wait":
        await asyncio.sleep(step[1])  # the scenario's own timeline, not a wait for a result
    elif kind == "fill_rest":
        _fill_entry_rests(rig.broker)
    elif kind == "restart":
        STATS["restarts"] += 1
        await _restart(rig)
    elif not rig.alive:
        return  # nothing of tickguard's own happens while it is down: the market alone moves
    elif kind == "close":
        await rig.trader.close(ids[step[1]])
    elif kind == "reduce":  # runs on while the next steps move the price, close, kill around it
        rig.trader.spawn(rig.trader.reduce(ids[step[1]], step[2]), f"test-reduce-{ids[step[1]]}")
    elif kind == "kill":
        STATS["kills"] += 1
        await rig.kill(lose_unsaved=step[1])
    elif kind == "crash":
        rig.broker.set_price("NSE", SBIN, price_at(step[1], long))
        await asyncio.sleep(step[2])
        STATS["kills"] += 1
        await rig.kill()


def _fill_entry_rests(broker: ModelBroker) -> None:
    """The market fills what an entry left resting (the trade's broker stop must grow to cover it)."""
    for order in broker.orders("tg"):
        parsed = parse_tag(order.tag)
        if parsed is None or parsed[1] != "entry" or order.terminal or order.unfilled <= 0:
            continue
        STATS["entry rests filled"] += 1
        broker.exchange.modify(order.order_id, OrderRequest(
            exchange=order.exchange, tradingsymbol=order.tradingsymbol, token=order.token, side=order.side,
            quantity=order.quantity, kind=OrderKind.MARKET, product=order.product, tag=order.tag))


def _count(broker: ModelBroker, trades: dict, scenario: Scenario) -> None:
    STATS["scenarios"] += 1
    STATS["trades"] += len(trades)
    for trade in trades.values():
        STATS[f"trades {trade.state.lower()}"] += 1
        if trade.state is TradeState.CLOSED:
            STATS[f"closed by {trade.reason or 'exit'}"] += 1
    for order in broker.orders("tg"):
        parsed = parse_tag(order.tag)
        if parsed is not None and parsed[1] == "broker_stop":
            STATS["broker stops placed"] += 1
            STATS[f"broker stops {str(order.status).lower()}"] += 1
            if order.filled:
                STATS["broker stops filled (some)"] += 1
    for _, request, fault in broker.placements:
        if fault.cancel == "loses" or fault.modify == "loses":
            STATS["races armed"] += 1
    if scenario.freeze:
        STATS["scenarios in slices"] += 1
