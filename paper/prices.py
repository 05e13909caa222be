"""Prices for every instrument: a seeded random walk for spots, a pricing model for derivatives."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Quote", "PriceBook"]


@dataclass(slots=True)
class Quote:
    """Live market state of one instrument. Every price is integer paise; times are epoch ms."""

    exchange: str
    token: str
    ltp: int
    open: int
    high: int
    low: int
    close: int  # previous session's close
    upper_circuit: int  # 0 where the segment has no band (indices)
    lower_circuit: int
    week52_high: int
    week52_low: int
    volume: int = 0
    last_qty: int = 0
    avg_price: int = 0
    total_buy_qty: float = 0.0
    total_sell_qty: float = 0.0
    open_interest: int = 0
    exchange_ts_ms: int = 0
    last_trade_ts: int = 0  # epoch seconds
    sequence: int = 0
    # best five each side: (quantity, price paise, orders), best first
    bids: list[tuple[int, int, int]] = field(default_factory=list)
    asks: list[tuple[int, int, int]] = field(default_factory=list)


class PriceBook:
    """Filled in by the market-data work; see its docstring there."""
