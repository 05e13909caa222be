"""The words a SmartAPI order's fields take, as the paper exchange accepts them (upper case, as the SDK sends).

The request parser (`paper.params`) refuses anything else; the order rows, the engine and the margin
route read the same tuples, so a word is spelled in one place.
"""
from __future__ import annotations

__all__ = ["VARIETIES", "SIDES", "ORDER_TYPES", "STOP_TYPES", "PRODUCTS", "DURATIONS"]

VARIETIES = ("NORMAL", "STOPLOSS", "AMO", "ROBO")
SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT", "STOPLOSS_LIMIT", "STOPLOSS_MARKET")
STOP_TYPES = ("STOPLOSS_LIMIT", "STOPLOSS_MARKET")  # the order types that wait for a trigger
PRODUCTS = ("DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO")
DURATIONS = ("DAY", "IOC")
