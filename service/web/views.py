"""What the API and the feed show of a trade and an order: the stored row as JSON builtins."""
from __future__ import annotations

from typing import Any

import msgspec

from service.store import OrderRecord
from service.trades import TradeRecord

__all__ = ["order_view", "trade_view"]


def trade_view(trade: TradeRecord) -> dict[str, Any]:
    view = msgspec.to_builtins(trade)
    view["open_quantity"] = trade.open_quantity
    return view


def order_view(order: OrderRecord) -> dict[str, Any]:
    return msgspec.to_builtins(order)
