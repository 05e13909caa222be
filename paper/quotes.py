"""A quote: one instrument's market state as every reader sees it, and the five-level book it shows.

`paper.prices.PriceBook` publishes a fresh `Quote` on every change; the order engine matches against
quotes, the REST market routes and the tick stream encode them. The book each side of the ltp is
synthetic but stable: a function of the price level and the instrument's seed (`market_depth`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Quote", "Depth", "PriceSource", "market_depth", "quote_or_none"]

Level = tuple[int, int, int]  # quantity, price paise, orders
Depth = tuple[tuple[Level, ...], tuple[Level, ...], float, float]  # bids, asks, total buy qty, total sell qty


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
    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)


class PriceSource(Protocol):
    """Where quotes are read from (`paper.prices.PriceBook`); an instrument it has no market for raises KeyError."""

    def quote(self, exchange: str, token: str) -> Quote: ...


def quote_or_none(prices: PriceSource, exchange: str, token: str) -> Quote | None:
    """The instrument's quote, or None where the source has no market for it."""
    try:
        return prices.quote(exchange, token)
    except KeyError:
        return None


def market_depth(ltp: int, tick: int, lot: int, salt: int, is_index: bool) -> Depth:
    """Five levels a side around `ltp` (none for an index) and the day's total buy and sell quantities."""
    bids: list[Level] = []
    asks: list[Level] = []
    if not is_index:
        mix = ((ltp // tick) * 2654435761 + salt) & 0xFFFFFFFF
        for level in range(5):
            lots_bid, lots_ask = 1 + (mix >> (level * 3)) % 40, 1 + (mix >> (level * 3 + 15)) % 40
            if ltp - (level + 1) * tick > 0:
                bids.append((lots_bid * lot * 10, ltp - (level + 1) * tick, 1 + lots_bid % 9))
            asks.append((lots_ask * lot * 10, ltp + (level + 1) * tick, 1 + lots_ask % 9))
    depth_scale = 20 + salt % 30
    return (tuple(bids), tuple(asks), float(sum(q for q, _, _ in bids) * depth_scale),
            float(sum(q for q, _, _ in asks) * depth_scale))
