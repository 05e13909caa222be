"""A trading account (§6).

An account follows the account service's contract (`accountId`, `pseudoAccountName`, `fund`,
`stoplosstype`, `stoploss`): `stoplosstype` `number` means rupees of risk per trade, `percentage`
means percent of the account's fund at risk. Until the account service is wired, paper mode trades
one demo account defined by settings.
"""
from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ["Account"]


class Account(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    name: str
    fund: int  # paise per trade
    stoploss_type: str | None = None  # number | percentage
    stoploss: Decimal | None = None
    clientcode: str | None = None
    max_daily_loss: int | None = None  # paise; realised + open P&L below -this halts the account's entries
    max_open_trades: int | None = None
    broker_stop: bool | None = None  # `brokerstop`: false keeps the account's trades without a broker-side stop
