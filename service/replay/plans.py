"""What a replay plays: each trade's entry, and the exits the engine cannot decide from ticks.

A stored trade becomes a `TradePlan` through `plan_from_events` (pure: the trade's events in order):

- `arms`: the trade as it stood after each entry fill (`service.trades.fold` of its events), at
  that fill's time. The first arms it in the engine; later ones amend it (a partly filled entry).
- `closes`: the exits the engine only carries out — the operator's (MANUAL), an alert's (SIGNAL), a
  daily-loss flatten (RISK, not modelled by the replay) and the broker's own stop (BROKER_STOP) — at
  the time they fired. Every STOP, TRAIL, TARGET, SQUARE_OFF and CUSTOM exit is left to the engine.
- `reductions`: the fills of partial exits (an alert closing a part), at their times and prices.
- `recorded`: the exit as it happened, to compare the replay with.

An alert replay builds its plans as the ticks go (`service.replay.alerts`); its `arms` are empty and
`entry_alert` says what to open.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from service.trades import TradeEvent, TradeRecord, fold

__all__ = ["INJECTED_REASONS", "Fill", "Injected", "RecordedExit", "TradePlan", "plan_from_events"]

# Exits decided outside the engine's rules: replayed as recorded (`Close(reason)` at their time).
INJECTED_REASONS = frozenset({"MANUAL", "SIGNAL", "RISK", "BROKER_STOP"})


@dataclass(frozen=True, slots=True)
class Fill:
    at_ms: int
    quantity: int
    price: int  # paise
    order: str = ""  # the order's tag: fills of one order are one executed order for brokerage


@dataclass(frozen=True, slots=True)
class Injected:
    at_ms: int
    reason: str  # MANUAL | SIGNAL | RISK | BROKER_STOP


@dataclass(frozen=True, slots=True)
class RecordedExit:
    """How the trade left, as stored: the engine's trigger tick where there was one."""

    at_ms: int
    reason: str
    level: int | None = None
    tick_ltp: int | None = None
    tick_ts_ms: int | None = None
    price: int | None = None  # the average exit fill, paise
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class TradePlan:
    trade_id: int
    first: TradeRecord  # the trade after its first entry fill: instrument, side, product, spec (rules)
    arms: tuple[tuple[int, TradeRecord], ...] = ()  # (at_ms, the trade after that entry fill)
    entries: tuple[Fill, ...] = ()
    closes: tuple[Injected, ...] = ()
    reductions: tuple[Fill, ...] = ()
    recorded: RecordedExit | None = None

    @property
    def entry_ms(self) -> int:
        return self.arms[0][0] if self.arms else 0

    @property
    def basis_key(self) -> tuple[str, str]:
        return self.first.basis_key

    @property
    def traded_key(self) -> tuple[str, str]:
        return (self.first.exchange, self.first.token)


def plan_from_events(events: Iterable[dict[str, Any]]) -> TradePlan | None:
    """A stored trade's plan from its events (`{"at_ms", "kind", "data"}`, oldest first, the first
    `created`), or None for a trade whose entry never filled."""
    events = list(events)
    if not events or events[0]["kind"] != "created":
        return None
    trade = msgspec.convert(events[0]["data"]["trade"], TradeRecord)
    arms: list[tuple[int, TradeRecord]] = []
    entries: list[Fill] = []
    closes: list[Injected] = []
    reductions: list[Fill] = []
    partial = False  # inside a partial exit: its fills are replayed as recorded
    fired: dict[str, Any] | None = None
    fired_ms = 0
    for event in events[1:]:
        kind, at_ms, data = event["kind"], int(event["at_ms"]), event["data"]
        trade = fold(trade, TradeEvent(kind=kind, at_ms=at_ms, data=data))
        if kind == "entry_fill":
            entries.append(Fill(at_ms, int(data["quantity"]), int(data["price"]), str(data.get("tag", ""))))
            arms.append((at_ms, trade))
        elif kind == "partial_exit_fired":
            partial = True
        elif kind in ("partial_exit_done", "partial_exit_failed"):
            partial = False
        elif kind == "exit_fill" and partial and fired is None:
            reductions.append(Fill(at_ms, int(data["quantity"]), int(data["price"]), str(data.get("tag", ""))))
        elif kind == "exit_fired" and fired is None:
            fired, fired_ms = data, at_ms
            if str(data.get("reason", "")) in INJECTED_REASONS:
                closes.append(Injected(at_ms, str(data["reason"])))
        elif kind == "closed" and fired is None and data.get("exit_reason"):
            # the broker's stop filled before any exit of ours fired: replayed as that close
            fired, fired_ms = {"reason": str(data["exit_reason"])}, at_ms
            if fired["reason"] in INJECTED_REASONS:
                closes.append(Injected(at_ms, fired["reason"]))
    if not arms:
        return None
    recorded = None
    if fired is not None:
        exited = trade.exited - sum(fill.quantity for fill in reductions)
        recorded = RecordedExit(
            at_ms=fired_ms, reason=str(fired.get("reason", "")), level=fired.get("level"),
            tick_ltp=fired.get("tick_ltp"), tick_ts_ms=fired.get("tick_ts_ms"),
            price=trade.exit_price if trade.exited else None, quantity=max(0, exited))
    return TradePlan(trade.id, arms[0][1], tuple(arms), tuple(entries), tuple(closes), tuple(reductions), recorded)
