"""The broker port and its adapters. The service talks to brokers only through `Broker`."""
from service.broker.errors import (
    BrokerError,
    BrokerUnavailable,
    EntryExpired,
    LoginFailed,
    NotMarketData,
    OrderRefused,
    PlacementUnknown,
    RateLimited,
    SessionExpired,
    expired_reason,
)
from service.broker.market_data import MarketData, MarketSource
from service.broker.port import Broker, OrderUpdateStream, TickStream
from service.broker.types import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    Candle,
    ChargeLeg,
    EstimatedCharges,
    Fill,
    Funds,
    GttRequest,
    GttRule,
    GttStatus,
    MarginLeg,
    OrderAck,
    OrderKind,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
    Position,
    Priority,
    SearchHit,
    BrokerOrder,
)

__all__ = [
    "Broker", "BrokerError", "BrokerOrder", "BrokerUnavailable", "Candle", "ChargeLeg", "EstimatedCharges", "EntryExpired", "Fill", "Funds", "GttRequest", "GttRule", "GttStatus", "LIVE_STATUSES", "LoginFailed",
    "MarginLeg", "MarketData", "MarketSource", "NotMarketData", "OrderAck", "OrderKind", "OrderRefused", "OrderRequest", "OrderSide", "OrderStatus", "OrderUpdate",
    "OrderUpdateStream", "PlacementUnknown", "Position", "Priority", "RateLimited", "SearchHit",
    "SessionExpired", "TERMINAL_STATUSES", "TickStream", "expired_reason",
]
