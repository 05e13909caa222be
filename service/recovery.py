"""Restart and reconciliation (trading-semantics §8).

On start, before any trade is shown as protected again:
1. every order not known to be finished is matched by its `ordertag` against the broker's order
   book: what filled while tickguard was down is applied (an entry fill arms its trade, an exit fill
   closes it);
2. an order the order book does not show is settled: an entry is expired (entering late is worse
   than not entering); an exit is in doubt (the book can lag a placement) and its resumed exit sends
   it again only once two order-book reads DOUBT_SETTLE_S apart lack it — capped by the broker's
   net position; an exit the broker has that the store never recorded (exits leave before their
   row is committed) is adopted: its trade is EXITING on that order, never given a second one;
   outside its segment's session an INTRADAY trade is settled with the broker instead, sending
   nothing (`service.afterhours`): closed if the broker squared it off, else left for the next open;
   a broker stop (`tg<id>B<n>`) that filled while tickguard was down closes its trade (`BROKER_STOP`,
   at the broker's price, nothing else sent); one the book no longer shows ended with its session
   (a CARRYFORWARD position overnight) and is placed again once its trade is armed; one whose trade
   is no longer open is an orphan: cancelled, and reported;
3. every armed trade is checked against what the market did while tickguard was down: one-minute
   candles of its basis instrument since the last tick seen (for an entry that filled while down:
   since its fill, as the broker stamps it), then the current price (the engine meets each armed
   trade with the first tick after subscribing). A level crossed while down fires the exit at once,
   even if the price has come back since.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.afterhours import AfterHours, settle_after_hours
from service.broker import LIVE_STATUSES, Broker, BrokerError, BrokerOrder, MarketData, OrderStatus
from service.execution import Trader
from service.execution.backstop_gtt import KIND as GTT
from service.guard import Guard
from service.store import Store
from service.trades import TradeState, parse_tag
from streams import ExitIntent, ExitReason, SessionClock

__all__ = ["RecoveryParts", "recover"]

log = logging.getLogger("tickguard.recovery")
IST = ZoneInfo("Asia/Kolkata")


@dataclass(frozen=True)
class RecoveryParts:
    """What a restart reconciles with: the store, every login's broker, execution, the guard, the sessions,
    the clock, the step that hands the engine today's P&L, loss halts and limits back before any trade
    is guarded again, and the market data (candles, prices; default: the first broker's)."""
    store: Store
    brokers: Sequence[Broker]
    trader: Trader
    guard: Guard
    sessions: SessionClock
    clock: Callable[[], float]
    restore_day: Callable[[], Awaitable[None]]
    # A cluster's executor (service/cluster/executor.py): an entry with no order yet is not expired (its
    # command waits on the bus and is sized on arrival), and the guard shards watch the market, not it.
    expire_unsent: bool = True
    check_crossed: bool = True
    market: MarketData | None = None

    @property
    def market_data(self) -> Broker | MarketData:
        return self.market if self.market is not None else self.brokers[0]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


async def recover(parts: RecoveryParts) -> dict[str, int]:
    report = {"orders_applied": 0, "entries_expired": 0, "exits_adopted": 0, "exits_resumed": 0, "crossed_while_down": 0,
              "broker_stops_ended": 0, "orphans_cancelled": 0}
    trader = parts.trader
    trader.stops.pause()  # broker stops wait for the whole picture: a stop found again is never placed twice
    try:
        book, login_of, entered = await _reconcile_orders(parts, report)
        for trade in await parts.store.trades(states=[TradeState.PENDING_ENTRY]) if parts.expire_unsent else ():
            orders = await parts.store.orders(trade.id)
            if not orders:  # stored and acknowledged, then down before the entry was even recorded
                await trader.record(trade.id, "expired", reason="tickguard stopped before the entry was sent")
                report["entries_expired"] += 1
        after_hours, held = await settle_after_hours(
            AfterHours(parts.store, trader, parts.sessions, parts.market_data, parts.now_ms), LIVE_STATUSES)
        report.update(after_hours)
        for tag, order in book.items():  # broker stops of trades no longer open (closed meanwhile, or unknown)
            parsed = parse_tag(tag)
            if parsed is not None and parsed[1] == "broker_stop" and not order.terminal:
                report["orphans_cancelled"] += await _cancel_orphan(parts, parsed[0], order, login_of[tag])
    finally:
        trader.stops.resume()
    await parts.restore_day()
    await rearm_open_trades(parts.store, parts.guard)
    for trade in held:  # UNPROTECTED while the market is shut; squared off when its segment opens
        parts.guard.arm(trade)
        parts.guard.close(trade.id, "SQUARE_OFF")
    waiting = {trade.id for trade in held}
    for trade in await parts.store.trades(states=[TradeState.EXITING, TradeState.UNPROTECTED]):
        if trade.id in waiting:
            continue
        live = [o for o in await parts.store.orders(trade.id) if o.role == "exit" and o.status in LIVE_STATUSES]
        trader.resume_exit(trade.id, live[-1] if live else None)
        report["exits_resumed"] += 1
    if parts.check_crossed:
        since_ms = (await parts.store.flags()).get("last_tick_ms")
        report["crossed_while_down"] = await _crossed_while_down(parts, since_ms, entered)
    log.info("recovered", extra=report)
    return report


async def _reconcile_orders(parts: RecoveryParts, report: dict[str, int]) -> tuple[dict, dict, dict[int, int]]:
    """Step 1 and 2 (the module's docstring): every unfinished order matched by its tag (a GTT rule by
    its id), exits the store never recorded adopted. The broker's tagged orders, each one's login, and
    when each entry that filled while tickguard was down filled (epoch ms, by trade id)."""
    trader = parts.trader
    book, login_of, entered = {}, {}, {}
    for broker in parts.brokers:
        for order in await broker.order_book():
            if order.tag.startswith("tg"):
                book[order.tag], login_of[order.tag] = order, broker
    for record in await parts.store.live_orders():
        if record.kind == GTT:  # a DELIVERY position's GTT rule: no tag at the broker, its rule id is the link
            trade = await parts.store.trade(record.trade_id)
            if trade is not None:
                outcome = await trader.stops.gtt.reconcile(trade, record)
                report["orphans_cancelled"] += outcome == "orphan"
            continue
        found = book.get(record.tag)
        if found is not None:
            if record.role == "entry" and found.filled > record.filled:
                entered[record.trade_id] = _stamped_ms(found.updated) or record.created_ms
            await trader.apply_order(found)
            report["orders_applied"] += 1
            continue
        if record.role == "entry":
            await trader.settle_unsent(record, "the entry never reached the broker before tickguard stopped")
            report["entries_expired"] += 1
        elif record.role == "broker_stop" and record.broker_order_id:  # acknowledged once: a day order that ended
            await trader.orders.move(record, was=record.status, status=OrderStatus.CANCELLED,
                                     text="not in the broker's order book at restart: ended with its session")
            report["broker_stops_ended"] += 1
        else:  # the book may lag a placement: in doubt until two reads DOUBT_SETTLE_S apart lack it
            await trader.exit_in_doubt(record, "not in the broker's order book at restart")
    for tag, order in book.items():  # exits sent but never committed: the broker's word is the record
        parsed = parse_tag(tag)
        if parsed is not None and parsed[1] == "exit" and await parts.store.order_by_tag(tag) is None:
            if await trader.adopt_exit(parsed[0], parsed[2], order):
                report["exits_adopted"] += 1
    return book, login_of, entered


def _stamped_ms(text: str) -> int | None:
    """The broker's order time ("20-Oct-2020 13:10:59", IST) in epoch ms; None when absent or unreadable."""
    try:
        return int(datetime.strptime(text, "%d-%b-%Y %H:%M:%S").replace(tzinfo=IST).timestamp() * 1000)
    except ValueError:
        return None


async def _cancel_orphan(parts: RecoveryParts, trade_id: int, order: BrokerOrder, broker: Broker) -> int:
    """A broker stop working at the broker for a trade that is no longer open (or unknown): cancelled
    and reported. 1 when it was."""
    trade = await parts.store.trade(trade_id)
    if trade is not None and trade.state in (TradeState.OPEN, TradeState.EXITING, TradeState.UNPROTECTED):
        return 0  # still guarded (an EXITING trade's resumed exit withdraws it first)
    try:
        await broker.cancel_order(order.order_id, order.variety or "STOPLOSS")
    except BrokerError as exc:
        log.error("orphaned broker stop not cancelled", extra={"tag": order.tag, "error": exc.message})
        return 0
    log.warning("orphaned broker stop cancelled", extra={"tag": order.tag, "trade_id": trade_id,
                                                         "state": trade.state if trade else "unknown"})
    return 1


async def rearm_open_trades(store: Store, guard: Guard) -> None:
    """Guard again every trade that was open when tickguard stopped (the full §8 check follows)."""
    stops = await store.stop_states()
    for trade in await store.trades(states=[TradeState.OPEN]):  # an EXITING trade's exit is resumed instead
        if trade.filled:
            state = stops.get(trade.id, {})
            guard.arm(trade, resume_stop=state.get("stop"), resume_trailing=bool(state.get("trailed")))


async def _crossed_while_down(parts: RecoveryParts, since_ms: int | None, entered: dict[int, int]) -> int:
    """Fire every armed trade whose stop or target the market crossed while tickguard was down:
    one candle request per basis instrument, however many trades stand on it. Each trade is checked
    from the minute it was last watched: the last tick seen, or its fill when that came later (an
    entry filled while down was never watched; the prices before its fill are not its risk)."""
    by_basis: dict[tuple[str, str], list] = {}
    for trade in await parts.store.trades(states=[TradeState.OPEN]):
        by_basis.setdefault(trade.basis_key, []).append(trade)
    fired = 0
    end = datetime.fromtimestamp(parts.clock(), IST) + timedelta(minutes=1)
    for (exchange, token), trades in by_basis.items():
        watched = {t.id: _minute(_watched_from(t, since_ms, entered)) for t in trades}
        try:
            candles = await parts.market_data.candles(exchange, token, "ONE_MINUTE", min(watched.values()), end)
        except BrokerError as exc:
            log.warning("no candles to check stops crossed while down", extra={"token": token, "error": exc.message})
            continue
        for trade in trades:
            since = watched[trade.id]
            if _fire_if_crossed(parts, trade, [c for c in candles if _started(c) >= since]):
                fired += 1
    return fired


def _watched_from(trade, since_ms: int | None, entered: dict[int, int]) -> int:
    filled = entered.get(trade.id)
    if filled is None:  # filled while tickguard ran: watched until the last tick it saw
        return since_ms if since_ms is not None else trade.created_ms
    return max(since_ms or 0, filled)


def _started(candle) -> datetime:
    start = datetime.fromisoformat(candle.start)
    return start if start.tzinfo else start.replace(tzinfo=IST)


def _minute(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, IST).replace(second=0, microsecond=0)


def _fire_if_crossed(parts: RecoveryParts, trade, candles) -> bool:
    state = parts.guard.stop_state(trade.id)
    if state is None:
        return False
    basis_side = trade.spec.basis_side
    long = trade.side == "LONG" if not basis_side else basis_side.upper() == "LONG"
    for candle in candles:
        hit = _crossing(long, state.stop, state.target, candle.low, candle.high)
        if hit is not None:
            reason, level = hit
            parts.guard.disarm(trade.id)  # the engine must not fire a second exit for it
            parts.trader.on_exit_intent(ExitIntent(trade_id=trade.id, reason=reason, level=level, tick=None,
                                                  source=f"candle {candle.start}"))
            return True
    return False


def _crossing(long: bool, stop: int | None, target: int | None, low: int, high: int) -> tuple[ExitReason, int] | None:
    if long:
        if stop is not None and low <= stop:
            return ExitReason.STOP, stop
        if target is not None and high >= target:
            return ExitReason.TARGET, target
    else:
        if stop is not None and high >= stop:
            return ExitReason.STOP, stop
        if target is not None and low <= target:
            return ExitReason.TARGET, target
    return None

