"""What notifications say: one line per trade change, money in rupees with a true minus sign."""
from __future__ import annotations

from service.charges.trades import TradeCharges
from service.trades import TradeRecord, TradeState

__all__ = ["entry_text", "exit_text", "protected_text", "refusal_text", "unprotected_text"]

_MINUS = "\u2212"


def _rupees(paise: int | None, signed: bool = False) -> str:
    if paise is None:
        return "—"
    sign = _MINUS if paise < 0 else ("+" if signed and paise > 0 else "")
    whole, cents = divmod(abs(paise), 100)
    return f"{sign}{whole}.{cents:02d}"


def entry_text(trade: TradeRecord) -> str:
    size = f"{trade.filled}/{trade.quantity}" if trade.quantity > trade.filled else str(trade.filled)
    return f"🔵 ENTRY {trade.tradingsymbol} {trade.side} {size} @ {_rupees(trade.entry_price)}"


def exit_text(trade: TradeRecord, charged: TradeCharges | None = None) -> str:
    reason = trade.reason or "EXIT"
    if not trade.exited:
        return f"⚪ CLOSED {trade.tradingsymbol} {trade.side} — {reason} — no exit fill (nothing left at the broker)"
    pnl = trade.realised_pnl or 0
    mark = "🟢" if pnl > 0 else "🔴" if pnl < 0 else "⚪"
    return (f"{mark} EXIT {trade.tradingsymbol} {trade.side} {trade.exited} @ {_rupees(trade.exit_price)} — "
            f"{reason} — P&L {_rupees(pnl, signed=True)}{_net_text(charged)}")


def _net_text(charged: TradeCharges | None) -> str:
    if charged is None or charged.breakdown is None or charged.net is None:
        return ""
    return f", net {_rupees(charged.net, signed=True)} after {_rupees(charged.breakdown.total)} charges"


def refusal_text(trade: TradeRecord) -> str:
    mark = "⌛" if trade.state is TradeState.EXPIRED else "⚠️"
    size = f" {trade.quantity}" if trade.quantity else ""
    return f"{mark} {trade.state.value} {trade.tradingsymbol} {trade.side}{size} — {trade.reason or 'no reason given'}"


def unprotected_text(trade: TradeRecord) -> str:
    return (f"🚨 UNPROTECTED {trade.tradingsymbol} {trade.side} {trade.open_quantity} open with no working exit — "
            f"{trade.reason or 'exit failed'} — act now")


def protected_text(trade: TradeRecord) -> str:
    return f"🛡️ PROTECTED again {trade.tradingsymbol} {trade.side} {trade.open_quantity}, stop {_rupees(trade.stop)}"
