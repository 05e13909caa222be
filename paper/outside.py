"""Prices from outside: instruments the paper exchange prices from another market's feed (tickguard's
live market data, in paper mode with MARKET_DATA=live) trade at the prices they are sent, and at no
other.

    watch(pairs)    these instruments are priced from outside from now on: their random walk (and, for
                    a derivative, its model) stops. Until the first outside price arrives an order on
                    one waits "open pending" rather than filling at a price that market never had
    apply(ticks)    outside prices, in the order they happened: each trades at once, so the fill engine,
                    GTT rules and the smart-stream meet it like any other price change. An instrument
                    sent a price is priced from outside from then on, watched or not (a restarted paper
                    exchange learns again from the next tick)
    park(order)     placeOrder asks: True when the order waits for its instrument's first outside
                    price; it meets the RMS and the market then, at that price
    renew()         a new feed session (tickguard started again): every instrument priced from outside
                    waits for a price of this session, since the last one may be hours old

The control API serves it (`paper.control`: /paper/v1/outside/watch, /outside/ticks, /outside).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from paper.instruments import Universe
from paper.orders import OrderEngine
from paper.prices import PriceBook
from paper.rows import Order

__all__ = ["OutsidePrices"]

Key = tuple[str, str]


class Market(Protocol):
    """What outside prices move: the exchange's universe, price book and fill engine (rebuilt by a reset)."""

    universe: Universe
    prices: PriceBook
    engine: OrderEngine


class OutsidePrices:
    """Which instruments take their prices from outside, and the orders waiting for a first one."""

    def __init__(self, exchange: Market) -> None:
        self._exchange = exchange  # its price book and engine are read at each call: a reset rebuilds them
        self.awaiting: set[Key] = set()
        self.parked: dict[Key, list[str]] = {}
        self.applied = 0
        self.skipped = 0  # prices for instruments this universe does not list, or not positive paise

    def watch(self, pairs: Iterable[tuple[str, str]]) -> list[Key]:
        """Price these from outside; the pairs this universe does not list are returned, untouched."""
        universe, held = self._exchange.universe, self._exchange.prices.held
        unknown: list[Key] = []
        for exchange, token in pairs:
            key = (str(exchange).upper(), str(token))
            if universe.by_token(*key) is None:
                unknown.append(key)
            elif key not in held:
                self._exchange.prices.hold(*key)
                self.awaiting.add(key)
        return unknown

    def apply(self, ticks: Iterable[tuple[str, str, int]]) -> int:
        """Trade each price in turn; orders parked on an instrument settle right after its first one."""
        exchange = self._exchange
        prices, universe = exchange.prices, exchange.universe
        applied = 0
        for name, token, ltp in ticks:
            key = (str(name).upper(), str(token))
            if universe.by_token(*key) is None or isinstance(ltp, bool) or not isinstance(ltp, int) or ltp <= 0:
                self.skipped += 1
                continue
            if key not in prices.held:
                prices.hold(*key)
            prices.set_ltp(*key, ltp, on_tick=False)
            applied += 1
            if key in self.awaiting:
                self.awaiting.discard(key)
                for orderid in self.parked.pop(key, ()):
                    exchange.engine.settle(orderid)
        self.applied += applied
        return applied

    def park(self, order: Order) -> bool:
        key = (order.exchange, order.symboltoken)
        if key not in self.awaiting:
            return False
        self.parked.setdefault(key, []).append(order.orderid)
        return True

    def renew(self) -> int:
        held = self._exchange.prices.held
        self.awaiting |= held
        return len(held)

    def reset(self) -> None:
        """After the exchange's reset: a fresh price book holds nothing until the next outside price."""
        self.awaiting.clear()
        self.parked.clear()

    def state(self) -> dict[str, Any]:
        return {
            "held": sorted(f"{e}:{t}" for e, t in self._exchange.prices.held),
            "awaiting": sorted(f"{e}:{t}" for e, t in self.awaiting),
            "parked_orders": sum(len(ids) for ids in self.parked.values()),
            "applied": self.applied,
            "skipped": self.skipped,
        }
