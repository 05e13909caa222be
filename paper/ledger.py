"""The books behind the orders: every fill, the positions the fills net to, and the funds each client has left.

The order engine (`paper.orders`) books each fill here and asks here what a client's funds would be
with a given set of working orders (its funds check); the trade-book, position, holding and funds
routes read the same books through the engine. Positions are marked at the price source's quote
(at their last fill's price where it has none); the arithmetic and the row shapes are `paper.positions`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from paper import positions as pos
from paper.instruments import Instrument, Universe
from paper.positions import Fill, Funds, Position
from paper.quotes import PriceSource, quote_or_none
from paper.rows import Order

__all__ = ["Ledger"]


class Ledger:
    """Fills in the order they happened and the day positions they fold to, for every client."""

    def __init__(self, universe: Universe, prices: PriceSource, opening_cash: Callable[[str], int]) -> None:
        self.universe = universe
        self.prices = prices
        self.opening_cash = opening_cash
        self._fills: list[Fill] = []
        self._positions: dict[pos.PositionKey, Position] = {}

    def book(self, fill: Fill) -> None:
        self._fills.append(fill)
        pos.apply_fill(self._positions, fill)

    def clear(self) -> None:
        self._fills, self._positions = [], {}

    @property
    def fills(self) -> Sequence[Fill]:
        """Every fill booked, in fill order."""
        return tuple(self._fills)

    # Books ---------------------------------------------------------------------------------------------------
    def trade_row(self, fill: Fill) -> dict[str, str]:
        return pos.trade_row(fill, self._instrument_at(fill.exchange, fill.symboltoken))

    def trade_book(self, clientcode: str) -> list[dict[str, str]]:
        return [self.trade_row(f) for f in self._fills if f.clientcode == clientcode]

    def positions(self, clientcode: str) -> list[dict[str, str]]:
        return [
            pos.position_row(p, self._instrument_at(p.exchange, p.symboltoken), self._mark(p), self._close(p))
            for key, p in self._positions.items() if key[0] == clientcode
        ]

    def holdings(self, clientcode: str) -> list[dict[str, Any]]:
        return [
            pos.holding_row(p, self._instrument_at(p.exchange, p.symboltoken), self._mark(p), self._close(p))
            for key, p in self._positions.items()
            if key[0] == clientcode and p.producttype == "DELIVERY" and p.netqty > 0
        ]

    # Funds ---------------------------------------------------------------------------------------------------
    def funds(self, clientcode: str, pending: Iterable[Order]) -> Funds:
        """The client's funds with `pending` (its working orders, in placement order) blocking margin."""
        realised = unrealised = 0
        utilised = dict.fromkeys(pos.CATEGORIES, 0)
        for key, position in self._positions.items():
            if key[0] != clientcode:
                continue
            instrument = self._instrument_at(position.exchange, position.symboltoken)
            ltp = self._mark(position)
            realised += position.realised()
            unrealised += position.unrealised(ltp)
            category, amount = pos.margin(instrument, position.producttype, position.netqty, ltp)
            utilised[category] += amount
        groups: dict[pos.PositionKey, list[Order]] = {}
        for order in pending:
            groups.setdefault((clientcode, order.exchange, order.symboltoken, order.producttype), []).append(order)
        for key, orders in groups.items():
            position = self._positions.get(key)
            instrument = self._instrument_at(key[1], key[2])
            sides = [(o.transactiontype, o.unfilled, self._margin_price(o)) for o in orders]
            for category, amount in pos.pending_margin(instrument, key[3], position.netqty if position else 0, sides).items():
                utilised[category] += amount
        return Funds(self.opening_cash(clientcode), realised, unrealised, utilised)

    def _margin_price(self, order: Order) -> int:
        if order.ordertype in ("LIMIT", "STOPLOSS_LIMIT"):
            return order.price
        if order.ordertype == "STOPLOSS_MARKET":
            return order.triggerprice
        quote = quote_or_none(self.prices, order.exchange, order.symboltoken)
        return quote.ltp if quote is not None else 0

    # Plumbing ---------------------------------------------------------------------------------------------
    def _mark(self, position: Position) -> int:
        quote = quote_or_none(self.prices, position.exchange, position.symboltoken)
        return quote.ltp if quote is not None else position.last_price

    def _close(self, position: Position) -> int:
        quote = quote_or_none(self.prices, position.exchange, position.symboltoken)
        return quote.close if quote is not None else 0

    def _instrument_at(self, exchange: str, token: str) -> Instrument:
        instrument = self.universe.by_token(exchange, token)
        assert instrument is not None, f"{exchange}:{token} left the universe"
        return instrument
