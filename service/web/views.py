"""What the API and the feed show of a trade and an order: the stored row as JSON builtins, with the
latest price, the open P&L, the exit's reason and every money field also in rupees.

Money stays integer paise; beside each money field `X` the view puts `X_rupees`, a decimal string
(`"812.35"`, `"-0.40"`), or null where `X` is null. Rupees are made here only, at the edge.
"""
from __future__ import annotations

from typing import Any

import msgspec

from service.charges.trades import BREAKDOWN_FIELDS, Charging
from service.store import OrderRecord
from service.trades import OPEN_STATES, TradeRecord, TradeState

__all__ = ["MONEY_FIELDS", "exit_reason", "open_pnl", "order_view", "pnl", "rupees", "trade_view", "with_rupees"]

_SHIPPED = Charging()  # the Angel One plan at the shipped rates, for a view built without the service's own
MONEY_FIELDS = ("entry_price", "exit_price", "stop", "target", "realised_pnl", "ltp", "open_pnl", "gross_pnl",
                "net_pnl")


def rupees(paise: int | None) -> str | None:
    """Paise as a rupee string with two decimals (`-40` → `"-0.40"`), exactly: no float on the way."""
    if paise is None:
        return None
    whole, part = divmod(abs(paise), 100)
    return f"{'-' if paise < 0 else ''}{whole}.{part:02d}"


def with_rupees(view: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """`view` with `X_rupees` set beside each money field `X` of `fields` (in place; returned)."""
    for name in fields:
        view[f"{name}_rupees"] = rupees(view.get(name))
    return view


def pnl(trade: TradeRecord, ltp: int | None) -> int | None:
    """Realised plus unrealised P&L of the trade, in paise, at `ltp` for the quantity still open."""
    if not trade.filled:
        return None
    open_quantity = trade.open_quantity
    if open_quantity and ltp is None:
        return None
    # exited + open = filled, so the cost of both is the whole entry value.
    move = trade.exit_value + open_quantity * (ltp or 0) - trade.entry_value
    return round(move if trade.long else -move)


def open_pnl(trade: TradeRecord, ltp: int | None) -> int | None:
    """The open quantity's P&L at `ltp`, in paise: open quantity × (ltp − entry), signed by side; null
    with nothing open or no price. The entry is the exact average (entry value ÷ filled), not the rounded one."""
    open_quantity = trade.open_quantity
    if not open_quantity or ltp is None:
        return None
    move = open_quantity * ltp - trade.entry_value * open_quantity / trade.filled
    return round(move if trade.long else -move)


def exit_reason(trade: TradeRecord) -> str | None:
    """Why the trade is exiting or was closed (STOP, TARGET, TRAIL, SQUARE_OFF, SIGNAL, MANUAL,
    BROKER_STOP …: the `exit_fired` reason, or the broker's when its stop closed the trade); else null."""
    if trade.state in (TradeState.EXITING, TradeState.CLOSED) and trade.reason:
        return trade.reason
    return None


def gross_pnl(trade: TradeRecord, ltp: int | None) -> int | None:
    """An open trade's P&L with what is open at `ltp`; a finished trade's realised P&L."""
    return pnl(trade, ltp) if trade.state in OPEN_STATES else trade.realised_pnl


def trade_view(trade: TradeRecord, broker_stop: dict[str, Any] | None = None, ltp: int | None = None,
               charging: Charging | None = None) -> dict[str, Any]:
    """The stored trade, its open quantity and — for an open trade — its broker-side backup stop:
    `{"trigger", "limit", "quantity", "status", "tags"}` while one is working, `{"why"}` when none is;
    `ltp` (the latest tick held for its instrument), `open_pnl`, `exit_reason`, `gross_pnl`, `charges`
    (the breakdown, for an open trade with what is open charged as an exit at `ltp`), `net_pnl` and the
    rupee strings."""
    view = msgspec.to_builtins(trade)
    del view["entry_orders"], view["exit_orders"]  # in `charges`; the orders themselves are /trades/{id}'s
    view["open_quantity"] = trade.open_quantity
    view["broker_stop"] = broker_stop
    view["ltp"] = ltp
    view["open_pnl"] = open_pnl(trade, ltp) if trade.state in OPEN_STATES else None
    view["exit_reason"] = exit_reason(trade)
    view.update((charging or _SHIPPED).of(trade, gross_pnl(trade, ltp), ltp).view())
    if view["charges"] is not None:
        with_rupees(view["charges"], BREAKDOWN_FIELDS)
    return with_rupees(view, MONEY_FIELDS)



def order_view(order: OrderRecord) -> dict[str, Any]:
    return msgspec.to_builtins(order)
