"""The resolved instrument: one frozen value the order path and the stop engine can rely on.

Prices are integer paise (the wire unit): `strike` and `tick_size` included. `freeze_qty` is the
exchange's per-order quantity limit for the underlying, from the settings table (None = no limit
known); `source` says whether the master or the broker's searchScrip vouched for the symbol.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

__all__ = ["Symbol", "IST", "ist_now"]

IST = ZoneInfo("Asia/Kolkata")


def ist_now() -> datetime:
    return datetime.now(IST)


class Symbol(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    exchange: str  # NSE, BSE, NFO, BFO, MCX, CDS
    token: str
    tradingsymbol: str  # what orders carry: SBIN-EQ, NIFTY25NOV2524000CE
    name: str  # the underlying or company: SBIN, NIFTY
    instrumenttype: str  # "" cash, AMXIDX, FUTIDX, OPTIDX, FUTSTK, OPTSTK, ...
    lotsize: int
    tick_size: int  # paise
    expiry: date | None = None
    strike: int | None = None  # paise; options only
    option_type: Literal["CE", "PE"] | None = None
    freeze_qty: int | None = None  # units per order
    source: Literal["master", "search"] = "master"

    @property
    def is_index(self) -> bool:
        return self.instrumenttype == "AMXIDX"

    @property
    def is_option(self) -> bool:
        return self.option_type is not None

    @property
    def is_future(self) -> bool:
        return self.instrumenttype.startswith("FUT")

    @property
    def is_derivative(self) -> bool:
        return self.expiry is not None

    @property
    def key(self) -> str:
        """`EXCHANGE:TRADINGSYMBOL`, unique across the master."""
        return f"{self.exchange}:{self.tradingsymbol}"
