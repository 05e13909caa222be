"""INTRADAY trades found open when tickguard starts outside their segment's session (trading-semantics §8).

Outside the session no order reaches the exchange (SmartAPI keeps it as an after-market order that
runs at the next open), and the broker squares intraday positions off itself shortly before the
close. So a restart outside the session sends nothing for an INTRADAY trade; it asks the broker —
positions, trade book and order book of the trade's login — what became of it:

- its position is gone: the trade is CLOSED with reason `BROKER_SQUARE_OFF` at the broker's fill
  price, the average of the trade book's fills on that instrument in the exit's direction from
  orders that are not ours. Without one (the trade book holds one day: it is empty the next
  morning) at the last known price — the broker's LTP, else the entry — and the close records
  `estimated: true`. Its P&L counts for the day the trade was entered (`pnl_day`): an intraday
  position is squared off on its own day.
- its position is still there (or the broker could not be asked): the trade is UNPROTECTED (and
  notified as every UNPROTECTED trade is) and squared off at its segment's next open.

Several trades on one instrument of one login share its net position, oldest first. Other products
are not reconciled: a DELIVERY position that became a holding is not gone; those trades stay open
and guarded. "Outside the session" is per segment (the trade's exchange): MCX trades into the night.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import msgspec

from service.broker import Broker, BrokerError, MarketData
from service.broker.types import BrokerOrder, Fill, Position
from service.execution import Trader
from service.store import Store, ist_date
from service.trades import TradeEvent, TradeRecord, TradeState
from streams import SessionClock

__all__ = ["BROKER_SQUARE_OFF", "AfterHours", "Verdict", "judge", "settle_after_hours"]

log = logging.getLogger("tickguard.recovery")
BROKER_SQUARE_OFF = "BROKER_SQUARE_OFF"


class Verdict(msgspec.Struct, frozen=True):
    trade_id: int
    gone: bool
    price: int | None = None  # gone: the broker's fill price; None when the trade book has none


def judge(trades: Iterable[TradeRecord], positions: Iterable[Position], fills: Iterable[Fill],
          orders: Iterable[BrokerOrder]) -> list[Verdict]:
    """Gone or still there, for INTRADAY trades of one login: its positions, trade book and order book."""
    net: dict[tuple[str, str, str], int] = {}
    for p in positions:
        key = (p.exchange, p.token, p.product)
        net[key] = net.get(key, 0) + p.net_quantity
    book = {o.order_id: o for o in orders}
    verdicts = []
    for trade in sorted(trades, key=lambda t: t.id):  # the oldest trade holds the position first
        key = (trade.exchange, trade.token, trade.product)
        held = max(0, net.get(key, 0) if trade.long else -net.get(key, 0))
        if held > 0:
            taken = min(held, trade.open_quantity)
            net[key] -= taken if trade.long else -taken
            verdicts.append(Verdict(trade.id, gone=False))
            continue
        exit_side = "SELL" if trade.long else "BUY"
        theirs = [f for f in fills if f.exchange == trade.exchange and f.tradingsymbol == trade.tradingsymbol
                  and str(f.side) == exit_side and not _ours(book.get(f.order_id), trade.product)]
        quantity = sum(f.quantity for f in theirs)
        price = round(sum(f.quantity * f.price for f in theirs) / quantity) if quantity else None
        verdicts.append(Verdict(trade.id, gone=True, price=price))
    return verdicts


def _ours(order: BrokerOrder | None, product: str) -> bool:
    """A fill that is not the broker's square-off: one of our tagged orders, or another product's."""
    return order is not None and (order.tag.startswith("tg") or order.product != product)


@dataclass(frozen=True)
class AfterHours:
    """What the reconciliation works with: the store, execution (a trade's login, its listeners), the
    sessions, the market data (an LTP when the trade book has no fill) and the clock."""
    store: Store
    trader: Trader
    sessions: SessionClock
    market: Broker | MarketData
    now_ms: Callable[[], int]


async def settle_after_hours(parts: AfterHours, live_statuses: Collection[str]) -> tuple[dict[str, int], list[TradeRecord]]:
    """Reconcile every INTRADAY trade outside its session; returns counts and the trades left for the
    next open (UNPROTECTED: the caller guards them with a square-off waiting for the open)."""
    now = parts.now_ms()
    due: dict[str, list[TradeRecord]] = {}
    for trade in await parts.store.trades(states=[TradeState.OPEN, TradeState.EXITING, TradeState.UNPROTECTED]):
        if trade.product != "INTRADAY" or trade.open_quantity <= 0 or parts.sessions.is_open(trade.exchange, now):
            continue
        if trade.state is not TradeState.OPEN and any(
                o.role == "exit" and o.status in live_statuses for o in await parts.store.orders(trade.id)):
            continue  # an exit is working at the broker: recovery keeps watching it
        due.setdefault(trade.spec.login or "", []).append(trade)
    report = {"squared_off_by_broker": 0, "left_for_the_open": 0}
    held: list[TradeRecord] = []
    for trades in due.values():
        broker = parts.trader.broker_for(trades[0])
        try:
            verdicts = judge(trades, await broker.positions(), await broker.trade_book(), await broker.order_book())
        except BrokerError as exc:
            log.warning("the broker could not be asked about intraday trades outside the session",
                        extra={"error": exc.message, "trades": [t.id for t in trades]})
            verdicts = [Verdict(t.id, gone=False) for t in trades]
        by_id = {t.id: t for t in trades}
        for verdict in verdicts:
            trade = by_id[verdict.trade_id]
            if verdict.gone:
                await _closed_by_broker(parts, trade, verdict.price, now)
                report["squared_off_by_broker"] += 1
            else:
                held.append(await _left_for_the_open(parts, trade))
                report["left_for_the_open"] += 1
    return report, held


async def _closed_by_broker(parts: AfterHours, trade: TradeRecord, price: int | None, now: int) -> None:
    source = "trade_book"
    if price is None:
        source = "ltp"
        try:
            price = await parts.market.ltp(trade.exchange, trade.tradingsymbol, trade.token)
        except BrokerError:
            price, source = int(trade.entry_price or 0), "entry"
    priced = {"price": price, "estimated": source != "trade_book", "price_source": source}
    day = ist_date(trade.created_ms)  # the P&L realised by the fill counts for the day the trade was entered
    events = (
        TradeEvent(kind="exit_fired", at_ms=now, data={"reason": BROKER_SQUARE_OFF, "level": None,
                                                       "source": "position gone at the broker outside the session"}),
        TradeEvent(kind="exit_fill", at_ms=now, data={"quantity": trade.open_quantity, **priced, "pnl_day": day}),
        TradeEvent(kind="closed", at_ms=now, data={"reason": BROKER_SQUARE_OFF, **priced, "pnl_day": day}),
    )
    closed = await parts.trader.journal.write(trade.id, *events)
    log.warning("intraday trade squared off by the broker", extra={"trade_id": trade.id, **priced,
                                                                   "pnl_paise": closed.realised_pnl})


async def _left_for_the_open(parts: AfterHours, trade: TradeRecord) -> TradeRecord:
    reason = (f"INTRADAY position still open at the broker outside the {trade.exchange} session: nothing is sent"
              " before it opens; it is squared off at the next open")
    if trade.state is TradeState.UNPROTECTED and trade.reason == reason:
        return trade  # told at an earlier restart
    trade = await parts.trader.record(trade.id, "unprotected", reason=reason)
    log.error("intraday position still open outside the session: UNPROTECTED until the next open",
              extra={"trade_id": trade.id})
    return trade
