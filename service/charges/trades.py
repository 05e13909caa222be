"""A trade's charges and its P&L net of them.

The executed orders are the trade's own (`TradeRecord.entry_orders` / `exit_orders`: filled value per
order). For a trade still open the quantity still held is charged as one exit order at the latest
price, as its P&L counts it at that price: gross, charges and net are then what closing now would
give. A trade is charged at the rates in force on the IST day it was opened.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from service.charges.brokerage import ANGEL_ONE, BrokeragePlan
from service.charges.calculator import Breakdown, Fills, charges
from service.charges.errors import ChargesError
from service.charges.schedule import Schedule
from service.charges.segments import segment_of
from service.trades import OPEN_STATES, TradeRecord

__all__ = ["Charging", "TradeCharges", "trade_day"]

_IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
BREAKDOWN_FIELDS = ("brokerage", "stt", "exchange_txn", "sebi", "stamp", "gst", "total")


@dataclass(frozen=True, slots=True)
class TradeCharges:
    gross: int | None  # paise: realised + open at the latest price; None without a fill or a price
    breakdown: Breakdown | None  # None: no order executed yet, no price for what is open, or not charged
    net: int | None
    why: str | None = None  # why there is no breakdown, when there is a reason worth saying

    def view(self) -> dict[str, Any]:
        """As JSON builtins: `charges` {each component, `total`, `unverified`} or null, `charges_why`."""
        charged = None
        if self.breakdown is not None:
            charged = {name: getattr(self.breakdown, name) for name in BREAKDOWN_FIELDS}
            charged["unverified"] = list(self.breakdown.unverified)
        return {"gross_pnl": self.gross, "charges": charged, "net_pnl": self.net, "charges_why": self.why}


def trade_day(trade: TradeRecord) -> dt.date:
    return dt.datetime.fromtimestamp(trade.created_ms / 1000, _IST).date()


@dataclass(frozen=True)
class Charging:
    """The brokerage plan and the rate schedule a service charges its trades with."""

    plan: BrokeragePlan = ANGEL_ONE
    schedule: Schedule | None = None  # None: the shipped schedule (loaded once, by the calculator)

    def fills(self, trade: TradeRecord, ltp: int | None) -> Fills | None:
        """The trade's executed orders as buys and sells, plus what is open as an exit at `ltp`;
        None when something open has no price."""
        entries = list(trade.entry_orders.values()) or ([trade.entry_value] if trade.entry_value else [])
        exits = list(trade.exit_orders.values()) or ([trade.exit_value] if trade.exit_value else [])
        open_quantity = trade.open_quantity
        if open_quantity and trade.state in OPEN_STATES:
            if ltp is None:
                return None
            exits.append(open_quantity * ltp)
        entries = [value for value in entries if value > 0]
        exits = [value for value in exits if value > 0]
        return Fills(tuple(entries), tuple(exits)) if trade.long else Fills(tuple(exits), tuple(entries))

    def breakdown(self, trade: TradeRecord, ltp: int | None, day: dt.date | None = None) -> Breakdown | None:
        """The charges on the trade's orders (and what is open at `ltp`), at the rates of `day` (default:
        the IST day the trade opened); raises ChargesError when the schedule does not cover it."""
        fills = self.fills(trade, ltp)
        if fills is None or not (fills.buys or fills.sells):
            return None
        segment, exchange = segment_of(trade.exchange, trade.product, option=trade.spec.is_option,
                                       future=trade.spec.is_future)
        return charges(fills, segment, exchange, day or trade_day(trade), self.plan, self.schedule)

    def of(self, trade: TradeRecord, gross: int | None, ltp: int | None) -> TradeCharges:
        """Gross (as the caller computed it), charges and net of the trade."""
        try:
            breakdown = self.breakdown(trade, ltp)
        except ChargesError as refused:
            return TradeCharges(gross, None, None, str(refused))
        if breakdown is None:
            why = "no price yet for the quantity open" if trade.open_quantity and ltp is None else None
            return TradeCharges(gross, None, None, why)
        net = None if gross is None else gross - breakdown.total
        return TradeCharges(gross, breakdown, net)
