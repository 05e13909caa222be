"""The entry queue: accepted entries sized and sent in arrival order (trading-semantics §3, §5).

One runner per trader takes the queue a batch at a time: one read of the batch's trades, one margin
read (getRMS) per login, each entry sized against what that margin has left after the entries
before it, the `sized` (or `rejected`) events written in one transaction, then the orders sent
through the broker's pacer. The next batch starts once these have left (or after a second, the
time a batch takes at the exchanges' 10 orders/s), so entries wait here rather than pile up in the
pacer with their order rows written.

An entry still queued `entry_ttl_s` after its alert expires with an `expired` event instead of
trading late: a second task wakes when the oldest entry turns late and expires the late ones, a
few dozen to a transaction so that alerts' writes go in between. The pacer's own time-to-live
covers the wait for an order slot after that. Entries queued when tickguard stops are expired by
recovery (no order was sent for them).

Each entry order goes through the order ledger; one still unconfirmed after `confirm_after_s` is
looked up at the broker, and one in doubt is settled by the doubt rule before the next slice goes.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from service.broker import (
    TERMINAL_STATUSES,
    Broker,
    BrokerError,
    MarginLeg,
    OrderKind,
    OrderSide,
    OrderStatus,
    Priority,
    expired_reason,
)
from service.execution.config import ExecConfig
from service.execution.doubt import DoubtRule
from service.execution.journal import BrokerFor, Journal, Spawn
from service.execution.orders import OrderLedger
from service.execution.sizing import Sized, allocation, size_equity, size_future, size_option
from service.store import Store
from service.trades import TradeEvent, TradeRecord, TradeState
from streams import SizedFor

__all__ = ["ENTRY_BATCH", "EntryQueue", "Queued"]

ENTRY_BATCH = 10  # entries sized on one margin read: a second of orders at the exchanges' 10/s
BATCH_WAIT_S = 1.0  # how long a batch's orders may hold back the next batch
EXPIRE_CHUNK = 32  # late entries expired in one transaction


@dataclass(frozen=True, slots=True)
class Queued:
    trade_id: int
    fund: int  # the account's fund per trade, paise
    quantity: int | None  # asked for by the alert (units), else sized from the fund
    queued_at: float  # time.monotonic() when the alert was accepted
    resize: bool = False  # sized before by a process that stopped before sending it: size it again


class EntryQueue:
    def __init__(self, orders: OrderLedger, doubt: DoubtRule, config: ExecConfig, *, broker_for: BrokerFor,
                 ltp: Callable[[str, str, str], Awaitable[int]], spawn: Spawn,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.orders = orders
        self.journal: Journal = orders.journal
        self.store = orders.store
        self.doubt = doubt
        self.config = config
        self.broker_for = broker_for
        self.ltp = ltp  # a premium, from the default login's market data
        self.spawn = spawn
        self.clock = clock
        self.waiting: deque[Queued] = deque()
        self._runner: asyncio.Task | None = None
        self._expirer: asyncio.Task | None = None
        self._expired = asyncio.Event()  # set whenever the expirer has taken late entries off the queue
        self._held: dict[Broker, int] = {}  # per login: margin of entries sized here, not yet at the broker

    def submit(self, trade_ids: list[int], fund: int, requested: dict[int, int | None], age_s: float = 0.0,
               resize: bool = False) -> None:
        """Queue entries accepted `age_s` ago (a cluster's command may have waited on the bus); `resize`: the
        caller knows no order of theirs was written, so one sized before (by a process killed before sending
        it) is sized again rather than skipped."""
        now = self.clock() - max(0.0, age_s)
        self.waiting.extend(Queued(trade_id, fund, requested.get(trade_id), now, resize) for trade_id in trade_ids)
        if self._runner is None or self._runner.done():
            self._runner = self.spawn(self._run(), "entries")
        if self._expirer is None or self._expirer.done():
            self._expirer = self.spawn(self._expire_due(), "entries-expiry")

    def _late(self, now: float) -> bool:
        return now - self.waiting[0].queued_at >= self.config.entry_ttl_s

    async def _run(self) -> None:
        while self.waiting:
            now = self.clock()
            batch: list[Queued] = []
            while self.waiting and len(batch) < ENTRY_BATCH and not self._late(now):
                batch.append(self.waiting.popleft())
            if batch:
                await self._enter(batch)
            else:  # the oldest entry is late: the expirer takes it
                self._expired.clear()
                await self._expired.wait()

    async def _expire_due(self) -> None:
        """Expire entries as they turn late, EXPIRE_CHUNK to a transaction so alerts' writes go between."""
        while self.waiting:
            now = self.clock()
            late: list[Queued] = []
            while self.waiting and len(late) < EXPIRE_CHUNK and self._late(now):
                late.append(self.waiting.popleft())
            if late:
                await self._expire(late, now)
                self._expired.set()
            elif self.waiting:
                await asyncio.sleep(self.waiting[0].queued_at + self.config.entry_ttl_s - now)
        self._expired.set()

    async def _expire(self, late: list[Queued], now: float) -> None:
        at_ms = self.journal.now_ms()

        def work(db) -> list[TradeRecord]:
            expired = []
            for entry in late:
                trade = Store.load_trade(db, entry.trade_id, for_update=True)  # another process may be at it
                if trade is None or trade.state is not TradeState.PENDING_ENTRY or (trade.quantity and not entry.resize):
                    continue  # closed by the operator while it waited (or sized and sent meanwhile)
                event = TradeEvent(kind="expired", at_ms=at_ms, data={"reason": expired_reason(now - entry.queued_at)})
                expired.append(Store.apply(db, entry.trade_id, event))
            return expired

        for trade in await self.store.db.write(work):
            self.orders.count("entry", "expired")
            self.journal.publish(trade)

    async def _enter(self, batch: list[Queued]) -> None:
        ids = [entry.trade_id for entry in batch]
        trades = await self.store.db.read(lambda db: {i: Store.load_trade(db, i) for i in ids})
        by_login: dict[Broker, list[tuple[Queued, TradeRecord]]] = {}
        for entry in batch:
            trade = trades[entry.trade_id]
            if trade is not None and trade.state is TradeState.PENDING_ENTRY and (not trade.quantity or entry.resize):
                by_login.setdefault(self.broker_for(trade), []).append((entry, trade))
        margins = await asyncio.gather(*(self._margin(broker) for broker in by_login))
        decided: list[tuple[TradeRecord, str, dict, int, int]] = []  # (trade, kind, event data, quantity, margin used)
        for (broker, entries), margin in zip(by_login.items(), margins):
            for entry, trade in entries:
                if isinstance(margin, BrokerError):
                    decided.append((trade, *_rejected(f"cannot read the broker's margin: {margin.message}")))
                    continue
                kind, data, quantity, cost = await self._size(trade, entry, margin)
                margin -= cost
                decided.append((trade, kind, data, quantity, cost))
        if not decided:
            return
        at_ms = self.journal.now_ms()

        def work(db) -> list[TradeRecord]:
            return [Store.apply(db, trade.id, TradeEvent(kind=kind, at_ms=at_ms, data=data))
                    for trade, kind, data, *_ in decided]

        sends = []
        for trade, (_, kind, _, quantity, cost) in zip(await self.store.db.write(work), decided):
            self.journal.publish(trade)
            if kind == "sized":
                broker = self.broker_for(trade)
                self._held[broker] = self._held.get(broker, 0) + cost
                sends.append(self.spawn(self._send(trade, quantity, broker, cost), f"entry-{trade.id}"))
        if sends:
            await asyncio.wait(sends, timeout=BATCH_WAIT_S)

    async def _margin(self, broker: Broker) -> int | BrokerError:
        """What the login may still use: the broker's `net`, less what entries sized here and not yet
        sent will take (the broker counts an order only once it has it)."""
        try:
            net = (await broker.funds()).net
        except BrokerError as exc:
            return exc
        return net - self._held.get(broker, 0)

    async def _size(self, trade: TradeRecord, entry: Queued, margin: int) -> tuple[str, dict, int, int]:
        """("sized", event data, quantity, margin it takes) or ("rejected", {"reason": …}, 0, 0).

        The `sized` event also records q* (`sized_for`) — the quantity a fund-sized trade would have
        before rounding, allocation (× leverage) ÷ price — which stop rules from the account or the
        strategy divide by when the alert fixed the quantity (trading-semantics §4)."""
        if trade.spec.is_future:
            return await self._size_future(trade, entry, margin)
        allocated = allocation(entry.fund, margin)
        if trade.spec.is_option:
            try:
                premium = await self.ltp(trade.exchange, trade.tradingsymbol, trade.token)
            except BrokerError as exc:
                return _rejected(f"no premium for {trade.tradingsymbol}: {exc.message}")
            lot = trade.spec.lot_size or 1
            sized = size_option(fund=entry.fund, margin=margin, premium=premium, lot_size=lot,
                                lots=None if entry.quantity is None else entry.quantity // lot)
            sized_for = _sized_for(allocated, premium)
            if not sized.refused:
                probe = trade
                if sized_for:  # the rules judged as they will be armed: with q*
                    spec = msgspec.structs.replace(trade.spec, sized_for=msgspec.convert(sized_for["sized_for"], SizedFor))
                    probe = msgspec.structs.replace(trade, spec=spec)
                refusal = _rules_refusal(probe, premium, sized.quantity)
                if refusal:
                    return _rejected(refusal)
            cost = sized.quantity * premium
        else:
            price = trade.spec.alert_price or 0
            leverage = self.config.leverage.get(trade.product, Decimal(1))
            sized = size_equity(fund=entry.fund, margin=margin, price=price, leverage=leverage, quantity=entry.quantity)
            sized_for = _sized_for(allocated * leverage, price)
            cost = _ceil(Decimal(sized.quantity * price) / leverage) if not sized.refused else 0
        return _outcome(sized, cost, **sized_for)

    async def _size_future(self, trade: TradeRecord, entry: Queued, margin: int) -> tuple[str, dict, int, int]:
        """Whole lots: floor(allocation ÷ the broker's margin for one lot), asked of the trade's login
        at the alert's price (a NIFTY1! alert carries the future's own price)."""
        lot = trade.spec.lot_size or 1
        one_lot = MarginLeg(exchange=trade.exchange, token=trade.token, quantity=lot,
                            price=trade.spec.alert_price or 0, product=trade.product,
                            side=OrderSide.BUY if trade.long else OrderSide.SELL)
        try:
            lot_margin = await self.broker_for(trade).margin([one_lot])
        except BrokerError as exc:
            return _rejected(f"cannot read the margin for one lot of {trade.tradingsymbol}: {exc.message}")
        sized = size_future(fund=entry.fund, margin=margin, lot_margin=lot_margin, lot_size=lot,
                            lots=None if entry.quantity is None else entry.quantity // lot)
        # q* = allocation ÷ (margin per lot ÷ lot size) units
        sized_for = _sized_for(allocation(entry.fund, margin) * lot, lot_margin)
        return _outcome(sized, sized.quantity // lot * lot_margin, lot_margin=lot_margin, **sized_for)

    async def _send(self, trade: TradeRecord, quantity: int, broker: Broker, cost: int) -> None:
        """The entry's orders: one, or slices of whole lots within the exchange's freeze quantity; the
        next slice goes only once the broker has taken this one (not while its placement is in doubt)."""
        try:
            async with self.orders.lock(trade.id):
                side = OrderSide.BUY if trade.long else OrderSide.SELL
                lot = trade.spec.lot_size or 1
                freeze = trade.spec.freeze_qty or quantity
                freeze = max(lot, freeze // lot * lot)
                left, slice_no = quantity, 1
                while left > 0:
                    part = min(left, freeze)
                    record = await self.orders.send(trade, "entry", slice_no, side, part, OrderKind.MARKET, 0,
                                                    Priority.ENTRY)
                    if record is None:
                        return
                    self.spawn(self._confirm(trade.id, record.tag), f"confirm-{record.tag}")
                    if record.status == OrderStatus.IN_DOUBT:
                        return
                    left -= part
                    slice_no += 1
        finally:
            self._held[broker] -= cost

    async def _confirm(self, trade_id: int, tag: str) -> None:
        """An entry still unconfirmed after `confirm_after_s` is looked up rather than waited for; one
        in doubt is settled first (the doubt rule), and refused if it was never placed."""
        while True:
            record = self.orders.get(tag)
            if record is not None and record.status == OrderStatus.IN_DOUBT:
                trade = await self.store.trade(trade_id)
                if trade is None:
                    return
                if not await self.doubt.settle(trade, tag):
                    await self.orders.refuse_entry(trade_id, "the entry was never placed (its placement was in doubt)")
                    return
                continue
            await asyncio.sleep(self.config.confirm_after_s)
            record = self.orders.get(tag)
            trade = await self.store.trade(trade_id)
            if record is None or trade is None or record.status in TERMINAL_STATUSES or trade.state is not TradeState.PENDING_ENTRY:
                return
            await self.orders.refresh(trade, record)


def _sized_for(budget: int | Decimal, price: int) -> dict[str, Any]:
    """q* = budget ÷ price as the `sized` event records it (nothing when there is no q* to speak of)."""
    if budget <= 0 or price <= 0:
        return {}
    return {"sized_for": {"budget": str(budget), "price": price}}


def _outcome(sized: Sized, cost: int, **extra: Any) -> tuple[str, dict, int, int]:
    if sized.refused:
        return _rejected(sized.reason)
    return "sized", {**sized.event(), **extra}, sized.quantity, cost


def _rejected(reason: str) -> tuple[str, dict, int, int]:
    return "rejected", {"reason": reason}, 0, 0


def _ceil(amount: Decimal) -> int:
    return int(-(-amount // 1))


def _rules_refusal(trade: TradeRecord, premium: int, quantity: int) -> str | None:
    """Why the trade's rules cannot guard it at this premium (a stop at or below zero…), or None."""
    from service.guard import engine_trade
    from streams import RuleError, levels

    probe = msgspec.structs.replace(trade, filled=max(1, quantity), entry_price=premium, entry_value=premium * max(1, quantity))
    try:
        levels(engine_trade(probe))
    except RuleError as exc:
        return f"stop rules at premium {premium / 100:.2f}: {exc.field}: {exc.reason}"
    return None
