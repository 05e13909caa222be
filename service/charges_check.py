"""`tickguard charges check`: the day's trades charged by tickguard and by the broker, side by side.

For each trade closed on the day, its executed orders (the order rows with fills; the broker's own
square-off, which has no row, as one order for the rest) go to the broker's calculator
(`estimateCharges`) and its answer is compared with tickguard's breakdown, component by component.
The broker answers each order to 4 decimals of a rupee and tickguard charges the trade to the paisa,
so a component differs when the two are more than `tolerance` paise apart (the total: more than six
times that); every difference is reported.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from service.broker import Broker, BrokerError, ChargeLeg, EstimatedCharges, OrderSide
from service.charges.errors import ChargesError
from service.charges.trades import BREAKDOWN_FIELDS, Charging
from service.store import OrderRecord, Store
from service.trades import TradeRecord

__all__ = ["Difference", "TradeCheck", "check_day", "legs_of"]

COMPONENTS = BREAKDOWN_FIELDS[:-1]  # brokerage … gst; the total is compared on its own


@dataclass(frozen=True)
class Difference:
    component: str
    ours: int  # paise
    broker: Decimal  # paise, as the broker's rupees × 100

    @property
    def delta(self) -> Decimal:
        return self.broker - self.ours


@dataclass(frozen=True)
class TradeCheck:
    trade: TradeRecord
    differences: tuple[Difference, ...] = ()
    problem: str | None = None  # why it could not be compared


def legs_of(trade: TradeRecord, orders: list[OrderRecord]) -> list[ChargeLeg]:
    """The trade's executed orders as the broker's calculator takes them."""
    legs: list[ChargeLeg] = []
    exited_by_orders = 0
    for order in orders:
        if order.filled <= 0:
            continue
        if order.role != "entry":
            exited_by_orders += order.filled
        legs.append(ChargeLeg(exchange=trade.exchange, token=trade.token, tradingsymbol=trade.tradingsymbol,
                              quantity=order.filled, price=order.average_price, product=trade.product,
                              side=OrderSide(order.side)))
    rest = trade.exited - exited_by_orders
    untagged = sum(value for key, value in trade.exit_orders.items() if key.startswith("@"))
    if rest > 0 and untagged > 0:  # the broker squared it off: one order of its own
        exit_side = OrderSide.SELL if trade.long else OrderSide.BUY
        legs.append(ChargeLeg(exchange=trade.exchange, token=trade.token, tradingsymbol=trade.tradingsymbol,
                              quantity=rest, price=round(untagged / rest), product=trade.product, side=exit_side))
    return legs


def compare(ours: Mapping[str, int], broker: EstimatedCharges, tolerance: int) -> tuple[Difference, ...]:
    found = []
    for name in COMPONENTS:
        theirs = broker.components.get(name, Decimal(0)) * 100
        if abs(theirs - ours[name]) > tolerance:
            found.append(Difference(name, ours[name], theirs))
    if broker.components.get("other"):
        found.append(Difference("other", 0, broker.components["other"] * 100))
    total = broker.total * 100
    if abs(total - ours["total"]) > tolerance * len(COMPONENTS):
        found.append(Difference("total", ours["total"], total))
    return tuple(found)


async def check_day(store: Store, broker_of: Callable[[TradeRecord], Broker], charging: Charging, day: str,
                    tolerance: int = 1) -> list[TradeCheck]:
    checks: list[TradeCheck] = []
    for trade in await store.closed_on(day):
        if not trade.filled:
            continue
        try:
            breakdown = charging.breakdown(trade, None)
        except ChargesError as refused:
            checks.append(TradeCheck(trade, problem=f"tickguard does not charge it: {refused}"))
            continue
        if breakdown is None:
            continue
        legs = legs_of(trade, await store.orders(trade.id))
        try:
            estimate = await broker_of(trade).estimate_charges(legs)
        except BrokerError as failed:
            checks.append(TradeCheck(trade, problem=f"the broker did not estimate it: {failed}"))
            continue
        ours = {name: getattr(breakdown, name) for name in BREAKDOWN_FIELDS}
        checks.append(TradeCheck(trade, compare(ours, estimate, tolerance)))
    return checks
