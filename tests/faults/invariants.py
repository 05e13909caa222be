"""What the exit and broker-stop scenarios check, replayed over the model broker's journal, and how they run.

- no double exit: per trade, the units its broker stops and its exits filled never exceed what its
  entry filled;
- exposure: those fills plus what its working exits and broker stops could still fill never exceed
  it either (a broker stop is working until cancelled, filled or rejected);
- no flip: the broker's net position never crosses to the other side;
- settled: a CLOSED trade exited exactly what it filled, as the store and the broker both count it;
  with every trade closed the net is flat; no broker stop stays working for a trade no longer open.
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from service.broker import OrderSide
from service.broker.model import ModelBroker
from service.trades import TradeState, parse_tag

__all__ = ["check", "entries_done", "play_in_tmp", "stops_left"]


def play_in_tmp(play: Callable[[Any, Path], Awaitable[list[str]]], scenario: Any, prefix: str) -> list[str]:
    """`play(scenario, tmp)` on a fresh event loop and a temporary directory, removed after."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return asyncio.run(play(scenario, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def entries_done(rig, ids):
    async def done() -> bool:
        for trade_id in ids:
            trade = await rig.trade(trade_id)
            if trade.state is TradeState.PENDING_ENTRY or (trade.state is TradeState.OPEN and not rig.guard.armed(trade_id)):
                return False
        return True
    return done


def stops_left(broker: ModelBroker, trades: dict) -> list[str]:
    """Broker stops still working for trades no longer open."""
    done = {t.id for t in trades.values() if t.state in (TradeState.CLOSED, TradeState.REJECTED, TradeState.EXPIRED)}
    return [o.tag for o in broker.orders("tg") if not o.terminal
            and (p := parse_tag(o.tag)) is not None and p[1] == "broker_stop" and p[0] in done]


def check(broker: ModelBroker, trades: dict, long: bool) -> list[str]:
    """The invariants, replayed over every change the broker saw, then the end state."""
    found: list[str] = []
    latest: dict[str, object] = {}
    net = 0
    for at, order in broker.journal:
        previous = latest.get(order.order_id)
        net += (order.filled - (previous.filled if previous else 0)) * (1 if order.side is OrderSide.BUY else -1)
        latest[order.order_id] = order
        if (long and net < 0) or (not long and net > 0):
            found.append(f"positions flipped: net {net} after {order.tag} {order.status} at {at:.3f}")
        parsed = parse_tag(order.tag)
        if parsed is None:
            continue
        entered, filled, exposed = _counts(latest.values(), parsed[0])
        if filled > entered:
            found.append(f"exits filled beyond position: trade {parsed[0]} exit fills {filled} > entered {entered} "
                         f"after {order.tag} {order.status} at {at:.3f}")
        elif exposed > entered:
            found.append(f"exits beyond position: trade {parsed[0]} fills and working exits/broker stops {exposed} > "
                         f"entered {entered} after {order.tag} {order.status} at {at:.3f}")
    for trade in trades.values():
        entered, filled, _ = _counts(latest.values(), trade.id)
        if trade.state is TradeState.CLOSED and not (trade.exited == trade.filled == entered == filled):
            found.append(f"trades not settled: {trade.id} CLOSED with filled {trade.filled} exited {trade.exited}, "
                         f"the broker's entry fills {entered} and exit fills {filled}")
    for tag in stops_left(broker, trades):
        found.append(f"broker stop left working: {tag} for a trade no longer open")
    if all(t.state in (TradeState.CLOSED, TradeState.REJECTED, TradeState.EXPIRED) for t in trades.values()) and net:
        found.append(f"trades not settled: every trade closed, net {net} left at the broker")
    return list(dict.fromkeys(found))  # one line per distinct violation


def _counts(orders, trade_id: int) -> tuple[int, int, int]:
    """(entry fills, exit-side fills — broker stops and exits —, those fills plus what the working
    exits and broker stops could still fill) of one trade."""
    entered = filled = working = 0
    for order in orders:
        parsed = parse_tag(order.tag)
        if parsed is None or parsed[0] != trade_id:
            continue
        if parsed[1] == "entry":
            entered += order.filled
        else:
            filled += order.filled
            working += 0 if order.terminal else order.unfilled
    return entered, filled, filled + working


