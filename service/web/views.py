"""What the API and the feed show of a trade and an order: the stored row as JSON builtins."""
from __future__ import annotations

from typing import Any

import msgspec

from service.store import OrderRecord
from service.trades import TradeRecord

__all__ = ["order_view", "trade_view"]


def trade_view(trade: TradeRecord, broker_stop: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored trade, its open quantity and — for an open trade — its broker-side backup stop:
    `{"trigger", "limit", "quantity", "status", "tags"}` while one is working, `{"why"}` when none is."""
    view = msgspec.to_builtins(trade)
    view["open_quantity"] = trade.open_quantity
    view["broker_stop"] = broker_stop
    return view


def order_view(order: OrderRecord) -> dict[str, Any]:
    return msgspec.to_builtins(order)
