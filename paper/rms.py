"""The exchange's and the broker RMS's refusals of an order that do not depend on funds.

The fill engine (`paper.orders`) asks here when an order reaches the RMS and when a modification
would change it; the funds check is the engine's own, since it needs the client's working orders.
"""
from __future__ import annotations

from paper import positions as pos
from paper.instruments import Instrument
from paper.quotes import Quote
from paper.rows import Order
from paper.vocabulary import STOP_TYPES

__all__ = ["refusal"]


def refusal(order: Order, instrument: Instrument, quote: Quote | None) -> str | None:
    """Why the exchange/RMS refuses this order regardless of funds (the rejection `text`), or None."""
    if order.quantity % instrument.lotsize:
        return (f"Your order has been rejected as the quantity {order.quantity} is not a multiple of the "
                f"lot size {instrument.lotsize} for {instrument.symbol}.")
    if order.ordertype == "STOPLOSS_MARKET" and instrument.is_option:
        return ("Your order has been rejected as STOPLOSS_MARKET orders are not allowed for options by the "
                "exchange. Place a STOPLOSS_LIMIT order instead.")
    priced = [("price", order.price)] if order.ordertype in ("LIMIT", "STOPLOSS_LIMIT") else []
    if order.ordertype in STOP_TYPES:
        priced.append(("trigger price", order.triggerprice))
    for name, value in priced:
        if value % instrument.tick_paise:
            return (f"Your order has been rejected as the {name} {pos.paise_text(value)} is not a multiple of "
                    f"the tick size {pos.paise_text(instrument.tick_paise)}.")
    if quote is None:
        return f"Your order has been rejected as there is no market price for {instrument.symbol}."
    for name, value in priced:
        if quote.upper_circuit > 0 and not quote.lower_circuit <= value <= quote.upper_circuit:
            return (f"Your order has been rejected as the {name} {pos.paise_text(value)} is outside the circuit "
                    f"limits (lower Rs. {pos.paise_text(quote.lower_circuit)}, upper Rs. "
                    f"{pos.paise_text(quote.upper_circuit)}).")
    return None
