"""Values that cross the broker port. Prices are integer paise; quantities are units."""
from __future__ import annotations

import enum

from decimal import Decimal

import msgspec

__all__ = [
    "BrokerOrder", "Candle", "ChargeLeg", "EstimatedCharges", "Fill", "Funds", "GttRequest", "GttRule", "GttStatus", "LIVE_STATUSES", "MarginLeg", "OrderAck", "OrderKind", "OrderRequest",
    "OrderSide", "OrderStatus", "OrderUpdate", "Position", "Priority", "SearchHit", "TERMINAL_STATUSES",
]


class OrderSide(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderKind(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOPLOSS_LIMIT = "STOPLOSS_LIMIT"
    STOPLOSS_MARKET = "STOPLOSS_MARKET"


class OrderStatus(enum.StrEnum):
    """Where an order is: SmartAPI's states (lower-case on the wire) and tickguard's own around them.

    `TERMINAL_STATUSES` are final. Every other status is live (`LIVE_STATUSES`): the order is, or
    may be, at the broker, so it is watched and an exit's unfilled quantity stays reserved.
    """

    # tickguard's own: the order before, or without, the broker's word on it
    SENDING = "sending"  # its row is written and the request is on its way
    SENT = "sent"  # acknowledged by the broker; no news of its state yet
    IN_DOUBT = "in doubt"  # the request timed out or met a 5xx and no order with its tag was found (yet)
    FAILED = "failed"  # the broker never took it
    EXPIRED = "expired"  # an entry that waited longer than ENTRY_TTL_S for an order slot
    # the broker's
    OPEN_PENDING = "open pending"
    OPEN = "open"
    TRIGGER_PENDING = "trigger pending"
    MODIFIED = "modified"
    MODIFY_PENDING = "modify pending"
    COMPLETE = "complete"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    AMO_RECEIVED = "after market order req received"
    AMO_MODIFY_RECEIVED = "modify after market order req received"
    AMO_CANCELLED = "cancelled after market order"
    VALIDATION_PENDING = "validation pending"
    PUT_ORDER_RECEIVED = "put order req received"
    # The broker reported the order with a status text tickguard cannot read. The order is at the
    # broker (so not in doubt) and not known to be finished (so live): it stays reserved and is
    # looked up again, but never re-priced, until a status that can be read arrives.
    UNRECOGNISED = "unrecognised"

    @classmethod
    def parse(cls, text: str | None) -> OrderStatus:
        """A status text from the broker: one of its states, or UNRECOGNISED (never one of tickguard's own)."""
        status = _WIRE.get((text or "").strip().lower())
        return cls.UNRECOGNISED if status is None else status


_OWN = frozenset({OrderStatus.SENDING, OrderStatus.SENT, OrderStatus.IN_DOUBT, OrderStatus.FAILED, OrderStatus.EXPIRED})
_WIRE = {str(status): status for status in OrderStatus if status not in _OWN and status is not OrderStatus.UNRECOGNISED}
TERMINAL_STATUSES = frozenset({OrderStatus.COMPLETE, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.AMO_CANCELLED,
                               OrderStatus.FAILED, OrderStatus.EXPIRED})
LIVE_STATUSES = frozenset(OrderStatus) - TERMINAL_STATUSES


class Priority(enum.IntEnum):
    """Lower goes first: an exit never waits behind an entry; a broker-side stop (placed, trailed)
    goes after exits and before entries, and only exits may spend the hourly exit reserve."""

    EXIT = 0
    STOP = 1
    ENTRY = 2
    QUERY = 3


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    exchange: str
    tradingsymbol: str
    token: str
    side: OrderSide
    quantity: int
    kind: OrderKind = OrderKind.MARKET
    price: int = 0  # paise; 0 for MARKET
    trigger_price: int = 0  # paise; stop orders only
    product: str = "INTRADAY"
    variety: str = "NORMAL"
    duration: str = "DAY"
    tag: str = ""  # SmartAPI ordertag, under 20 characters


class MarginLeg(msgspec.Struct, frozen=True, kw_only=True):
    """One position of a margin question: what the broker would block for it."""

    exchange: str
    token: str
    quantity: int  # units
    price: int  # paise; 0 = a market order (the broker prices it)
    product: str
    side: OrderSide


class ChargeLeg(msgspec.Struct, frozen=True, kw_only=True):
    """One executed order whose charges the broker is asked to estimate."""

    exchange: str
    token: str
    tradingsymbol: str
    quantity: int  # units
    price: int  # paise (options: the premium)
    product: str
    side: OrderSide


class EstimatedCharges(msgspec.Struct, frozen=True, kw_only=True):
    """The broker's estimate for a set of orders, in rupees as it answered (to 4 decimals), by
    component: brokerage, stt, exchange_txn, sebi, stamp, gst (and `other`: any item it names that is
    none of these); `total` as it stated it."""

    total: Decimal
    components: dict[str, Decimal]


class OrderAck(msgspec.Struct, frozen=True):
    order_id: str
    unique_order_id: str = ""


class BrokerOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    unique_order_id: str
    tag: str
    exchange: str
    token: str
    tradingsymbol: str
    side: OrderSide
    kind: OrderKind
    product: str
    variety: str
    quantity: int
    filled: int
    cancelled: int
    average_price: int  # paise
    price: int  # paise
    trigger_price: int  # paise
    status: OrderStatus
    text: str = ""
    updated: str = ""  # broker's own time stamp text
    parent_order_id: str = ""  # SmartAPI's `parentorderid`: the GTT rule that placed the order, where one did

    @property
    def unfilled(self) -> int:
        return max(0, self.quantity - self.filled - self.cancelled)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class GttStatus(enum.StrEnum):
    """A GTT rule's state as SmartAPI's ruleList names them (the filter values of its `status`)."""

    NEW = "NEW"  # waiting for its trigger
    ACTIVE = "ACTIVE"  # waiting for its trigger (after a modification)
    SENT_TO_EXCHANGE = "SENTTOEXCHANGE"  # triggered: its LIMIT order was placed (`GttRule.order_id`)
    CANCELLED = "CANCELLED"

    @property
    def waiting(self) -> bool:
        return self in (GttStatus.NEW, GttStatus.ACTIVE)


class GttRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A GTT rule to create or modify: when the price crosses `trigger_price`, a LIMIT order at `price`."""

    exchange: str
    tradingsymbol: str
    token: str
    side: OrderSide
    quantity: int
    price: int  # paise: the LIMIT order's price
    trigger_price: int  # paise
    product: str = "DELIVERY"
    days: int = 365  # `timeperiod`: how long the rule lives


class GttRule(msgspec.Struct, frozen=True, kw_only=True):
    """A GTT rule as the broker reports it (ruleDetails / ruleList)."""

    rule_id: str
    exchange: str
    tradingsymbol: str
    token: str
    side: OrderSide
    product: str
    quantity: int
    price: int  # paise
    trigger_price: int  # paise
    status: GttStatus
    order_id: str = ""  # the order it placed once triggered, where the broker says


class OrderUpdate(msgspec.Struct, frozen=True):
    """One message of the order-update stream (or a row seen while polling the order book)."""

    code: str  # AB01…AB11; "POLL" when it came from the order book
    order: BrokerOrder


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    fill_id: str
    exchange: str
    tradingsymbol: str
    side: OrderSide
    quantity: int
    price: int  # paise
    time: str = ""


class Position(msgspec.Struct, frozen=True, kw_only=True):
    exchange: str
    token: str
    tradingsymbol: str
    product: str
    net_quantity: int  # signed: long > 0, short < 0
    buy_quantity: int
    sell_quantity: int
    buy_average: int  # paise
    sell_average: int  # paise
    ltp: int  # paise
    realised: int  # paise
    unrealised: int  # paise

    @property
    def pnl(self) -> int:
        return self.realised + self.unrealised


class Funds(msgspec.Struct, frozen=True, kw_only=True):
    available_cash: int  # paise
    net: int  # paise: what new orders may use
    utilised: int  # paise
    realised: int  # paise
    unrealised: int  # paise


class Candle(msgspec.Struct, frozen=True, array_like=True):
    start: str  # "2025-11-24T11:15:00+05:30"
    open: int  # paise
    high: int
    low: int
    close: int
    volume: int


class SearchHit(msgspec.Struct, frozen=True):
    exchange: str
    tradingsymbol: str
    token: str
