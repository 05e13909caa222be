"""SmartAPI's brokerage calculator (`estimateCharges`) read into `EstimatedCharges`.

The reply's `data.summary` is {total_charges, trade_value, breakup}: groups {name, amount, breakup}
("Angel One Brokerage", "External Charges", "Taxes") whose items name each charge. Items are matched
by name, case-insensitively: a name SmartAPI changes lands in `other` rather than being lost.
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from service.broker.errors import BrokerUnavailable
from service.broker.types import ChargeLeg, EstimatedCharges

__all__ = ["charges_body", "read_charges"]

_NAMES = (("transaction tax", "stt"), ("stt", "stt"), ("exchange", "exchange_txn"), ("stamp", "stamp"),
          ("sebi", "sebi"), ("gst", "gst"), ("brokerage", "brokerage"))


def charges_body(legs: Sequence[ChargeLeg]) -> dict[str, Any]:
    return {"orders": [{"product_type": leg.product, "transaction_type": str(leg.side), "quantity": str(leg.quantity),
                        "price": f"{leg.price // 100}.{leg.price % 100:02d}", "exchange": leg.exchange,
                        "symbol_name": leg.tradingsymbol, "token": leg.token} for leg in legs]}


def _rupees(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BrokerUnavailable(f"the charges reply carried {value!r} for an amount", route="estimateCharges") from None
    if not amount.is_finite():
        raise BrokerUnavailable(f"the charges reply carried {value!r} for an amount", route="estimateCharges")
    return amount


def _component(name: str) -> str:
    lowered = name.lower()
    return next((component for key, component in _NAMES if key in lowered), "other")


def read_charges(data: Any) -> EstimatedCharges:
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, dict) or "total_charges" not in summary:
        raise BrokerUnavailable("the charges reply carried no summary.total_charges", route="estimateCharges")
    components: dict[str, Decimal] = {}
    for group in summary.get("breakup") or []:
        items = group.get("breakup") or []
        for item in items or [group]:  # a group without items (brokerage) is its own item
            component = _component(str(item.get("name", "")))
            components[component] = components.get(component, Decimal(0)) + _rupees(item.get("amount", 0))
    return EstimatedCharges(total=_rupees(summary["total_charges"]), components=components)
