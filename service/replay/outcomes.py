"""A replayed trade's figures: exit price under a slippage assumption, P&L, charges and net, in paise.

Pricing. An exit the engine decided is priced on the latest tick of the traded instrument when it
fired — for a stop, target or trail on the instrument itself that is the trigger tick, so a gap
through the stop fills at the gap's price, not at the level — moved against the trade by the
slippage assumption (`Slippage`). A trade still open when the recording ends is marked at the last
tick of its instrument (reason `OPEN`). Partial exits keep their recorded fills.

P&L gross is `service.trades.realised` of the replayed fills (the stored trades' own formula):
(exit − entry) × quantity, negated for a short. Charges are `service.charges.charges` on the entry
orders and the exit orders (each stored order one executed order; the replayed exit one more), in
the segment the trade's exchange, product and kind name, at the rates of the entry's IST date. Net =
gross − charges. A trade the schedule does not cover (MCX, CDS) has no charges and no net.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from service.charges import Breakdown, BrokeragePlan, ChargesError, flat_plan
from service.charges.trades import Charging
from service.charges.setting import parse_plan
from service.replay.errors import ReplayError
from service.replay.run import TradeRun
from service.store import ist_date
from service.trades import TradeRecord, realised

__all__ = ["Outcome", "Slippage", "brokerage_plan", "outcome_of"]


@dataclass(frozen=True)
class Slippage:
    """How far an exit (and an alert's entry) fills from the price it is priced on, against the trade:
    `ticks` whole ticks of the instrument, or `pct` percent of the price (rounded out to the tick)."""

    kind: str = "ticks"  # ticks | pct
    value: Decimal = Decimal(0)

    @classmethod
    def parse(cls, text: str) -> Slippage:
        match = re.fullmatch(r"\s*(ticks|pct):\s*(\d+(?:\.\d+)?)\s*", text or "") if text != "none" else None
        if text == "none":
            return cls()
        if match is None or (match[1] == "ticks" and "." in match[2]):
            raise ReplayError("--slippage", f"expected ticks:N (whole ticks) or pct:X, got {text!r}")
        return cls(match[1], Decimal(match[2]))

    def paise(self, price: int, tick_size: int) -> int:
        if self.kind == "ticks":
            return int(self.value) * tick_size
        return math.ceil(price * self.value / 100 / tick_size) * tick_size

    def fill(self, price: int, tick_size: int, buying: bool) -> int:
        """The fill of an order priced on `price`: dearer when buying, cheaper when selling."""
        slip = self.paise(price, tick_size)
        return price + slip if buying else max(tick_size, price - slip)

    def __str__(self) -> str:
        if self.kind == "ticks":
            return "none" if not self.value else f"{self.value} tick{'s' if self.value != 1 else ''}"
        return f"{self.value}%"


def brokerage_plan(text: str) -> BrokeragePlan:
    """As the BROKERAGE setting reads it (`angel-one`, `20` an order, `0.03%<=20`), or `none`."""
    if text == "none":
        return flat_plan(0, "no brokerage")
    try:
        return parse_plan(text)
    except ChargesError as bad:
        raise ReplayError("--brokerage", f"{bad.reason}; or none") from None


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """One row of `replay.csv`: a trade in a variant. Prices and money in paise; times epoch ms."""

    variant: str
    trade_id: int
    account: str
    strategy: str
    symbol: str
    exchange: str
    token: str
    side: str
    quantity: int
    entry_ms: int
    entry_price: int | None
    exit_ms: int | None
    reason: str  # STOP | TRAIL | TARGET | SQUARE_OFF | SIGNAL | MANUAL | RISK | CUSTOM | BROKER_STOP | OPEN | REFUSED
    level: int | None  # the stop or target crossed
    exit_price: int | None
    trigger_ltp: int | None  # the tick that fired the exit
    trigger_ts_ms: int | None  # its exchange time stamp
    trigger_seq: int | None  # its place in the recording
    slippage: str
    gross: int | None
    brokerage: int | None = None
    stt: int | None = None
    exchange_txn: int | None = None
    sebi: int | None = None
    stamp: int | None = None
    gst: int | None = None
    charges: int | None = None
    net: int | None = None
    note: str = ""
    recorded_reason: str = ""  # the stored exit, for comparison
    recorded_trigger_ltp: int | None = None
    recorded_trigger_ts_ms: int | None = None
    recorded_exit_price: int | None = None


def _exit_price(run: TradeRun, slippage: Slippage) -> tuple[int | None, str]:
    record = run.record
    tick_size = record.spec.tick_size
    if run.exit is None:
        return None, ""
    traded = run.exit.traded
    if traded is None:
        return None, "no tick of the traded instrument recorded to price the exit on"
    return slippage.fill(traded.ltp, tick_size, buying=not record.long), ""


def _by_order(fills) -> dict[str, int]:
    """Filled value per executed order (a fill without an order id is an order of its own)."""
    orders: dict[str, int] = {}
    for n, fill in enumerate(fills):
        key = fill.order or f"#{n}"
        orders[key] = orders.get(key, 0) + fill.quantity * fill.price
    return orders


def _charges(run: TradeRun, shaped: TradeRecord, exit_qty: int, exit_price: int | None,
             plan: BrokeragePlan) -> tuple[Breakdown | None, str]:
    """The replayed trade charged as a stored one is (`Charging`): its orders, the replayed exit one more,
    at the rates of the day it was armed."""
    exit_orders = _by_order(run.reductions)
    if exit_qty and exit_price is not None:
        exit_orders["replayed exit"] = exit_qty * exit_price
    shaped = msgspec.structs.replace(shaped, entry_orders=_by_order(run.entries), exit_orders=exit_orders)
    try:
        return Charging(plan).breakdown(shaped, None, dt.date.fromisoformat(ist_date(run.armed_ms))), ""
    except ChargesError as exc:
        return None, f"no charges: {exc}"


def outcome_of(variant: str, run: TradeRun, *, slippage: Slippage, plan: BrokeragePlan,
               last_tick_price: int | None = None) -> Outcome:
    """The row of one trade in one variant. `last_tick_price`: the traded instrument's last recorded
    price, which marks a trade still open at the end of the recording."""
    record = run.record
    filled = sum(f.quantity for f in run.entries)
    entry_value = sum(f.quantity * f.price for f in run.entries)
    reduced = sum(f.quantity for f in run.reductions)
    rest = max(0, filled - reduced)
    exit_ms = reason = level = trigger = None
    notes: list[str] = []
    if run.refused is not None:
        reason, exit_price = "REFUSED", None
        notes.append(run.refused)
        rest = 0
    elif run.exit is not None:
        intent = run.exit.intent
        reason, level, exit_ms, trigger = str(intent.reason), intent.level, run.exit.at_ms, intent.tick
        exit_price, note = _exit_price(run, slippage)
        notes.append(note)
    else:
        reason, exit_price = "OPEN", last_tick_price
        notes.append("still open when the recording ends: marked at its last tick")
    gross = breakdown = None
    if run.refused is None and (exit_price is not None or rest == 0):
        exit_value = sum(f.quantity * f.price for f in run.reductions) + rest * (exit_price or 0)
        shaped = msgspec.structs.replace(record, filled=filled, entry_value=entry_value, exited=reduced + rest,
                                         exit_value=exit_value)
        gross = realised(shaped)
        breakdown, note = _charges(run, shaped, rest, exit_price, plan)
        notes.append(note)
    recorded = run.recorded
    costs = {} if breakdown is None else {
        "brokerage": breakdown.brokerage, "stt": breakdown.stt, "exchange_txn": breakdown.exchange_txn,
        "sebi": breakdown.sebi, "stamp": breakdown.stamp, "gst": breakdown.gst, "charges": breakdown.total,
        "net": None if gross is None else gross - breakdown.total}
    return Outcome(
        variant=variant, trade_id=record.id, account=record.account, strategy=record.strategy,
        symbol=record.tradingsymbol, exchange=record.exchange, token=record.token, side=record.side,
        quantity=filled, entry_ms=run.armed_ms, entry_price=round(entry_value / filled) if filled else None,
        exit_ms=exit_ms, reason=reason, level=level, exit_price=exit_price,
        trigger_ltp=trigger.ltp if trigger is not None else None,
        trigger_ts_ms=trigger.exchange_ts_ms if trigger is not None else None,
        trigger_seq=run.exit.seq if run.exit is not None and trigger is not None else None,
        slippage=str(slippage), gross=gross, **costs, note="; ".join(n for n in notes if n),
        recorded_reason=recorded.reason if recorded else "",
        recorded_trigger_ltp=recorded.tick_ltp if recorded else None,
        recorded_trigger_ts_ms=recorded.tick_ts_ms if recorded else None,
        recorded_exit_price=recorded.price if recorded else None,
    )
