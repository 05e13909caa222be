"""Which schedule row a trade's orders are charged under: its segment and its exchange."""
from __future__ import annotations

from service.charges.errors import ChargesError

__all__ = ["Uncharged", "segment_of"]

_CASH = {"NSE": "NSE", "BSE": "BSE"}
_DERIVATIVES = {"NFO": "NSE", "BFO": "BSE"}


class Uncharged(ChargesError):
    """A trade whose charges the schedule does not cover (commodities, currencies)."""

    def __init__(self, exchange: str, reason: str) -> None:
        super().__init__(f"{exchange}: {reason}")
        self.exchange = exchange
        self.reason = reason


def segment_of(exchange: str, product: str, *, option: bool = False, future: bool = False) -> tuple[str, str]:
    """(segment, exchange) of an order on the broker's `exchange` (NSE, BSE, NFO, BFO) with `product`
    (DELIVERY is delivery; INTRADAY, CARRYFORWARD and MARGIN are charged as their segment's trading)."""
    if exchange in _CASH:
        return ("equity_delivery" if product == "DELIVERY" else "equity_intraday"), _CASH[exchange]
    if exchange in _DERIVATIVES:
        if option == future:
            raise Uncharged(exchange, "a derivative is either an option or a future")
        return ("options" if option else "futures"), _DERIVATIVES[exchange]
    raise Uncharged(exchange, "no charges schedule for this exchange (NSE, BSE, NFO and BFO are covered)")
