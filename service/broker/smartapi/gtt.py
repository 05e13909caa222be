"""SmartAPI's GTT rules (gtt/v1) on the port's types: request bodies out, rule rows in.

Bodies are the fields smartapi-python's gttCreateRule / gttModifyRule / gttCancelRule send, numbers
as strings like the order routes'. Rule rows (ruleDetails, ruleList) mix numbers and strings; the
rule id is a number on the wire and a string in the port. `orderid` (the order a triggered rule
placed) is not in SmartAPI's published ruleDetails sample: it is read where the broker sends it.
"""
from __future__ import annotations

from typing import Any

from service.broker.errors import BrokerUnavailable
from service.broker.smartapi.rows import paise, units
from service.broker.types import GttRequest, GttRule, GttStatus, OrderSide

__all__ = ["create_body", "modify_body", "cancel_body", "rule_from_row", "rule_id_of"]


def _rupees(paise_value: int) -> str:
    return f"{paise_value / 100:.2f}"


def create_body(request: GttRequest) -> dict[str, Any]:
    return {
        "tradingsymbol": request.tradingsymbol, "symboltoken": request.token, "exchange": request.exchange,
        "producttype": request.product, "transactiontype": str(request.side), "price": _rupees(request.price),
        "qty": str(request.quantity), "disclosedqty": "0", "triggerprice": _rupees(request.trigger_price),
        "timeperiod": str(request.days),
    }


def modify_body(rule_id: str, request: GttRequest) -> dict[str, Any]:
    return {
        "id": rule_id, "symboltoken": request.token, "exchange": request.exchange, "price": _rupees(request.price),
        "qty": str(request.quantity), "triggerprice": _rupees(request.trigger_price), "disclosedqty": "0",
        "timeperiod": str(request.days),
    }


def cancel_body(rule_id: str, exchange: str, token: str) -> dict[str, Any]:
    return {"id": rule_id, "symboltoken": token, "exchange": exchange}


def rule_id_of(data: Any, route: str) -> str:
    """The `data.id` of a create/modify/cancel reply, as a string."""
    rule_id = data.get("id") if isinstance(data, dict) else None
    if rule_id in (None, ""):
        raise BrokerUnavailable("the broker's GTT reply carried no rule id", route=route)
    return str(rule_id)


def rule_from_row(row: dict[str, Any], route: str = "gttDetails") -> GttRule:
    """A rule row; a status the port does not know is an error, never a guess (a rule taken for
    cancelled when it is not could leave a position with two stops)."""
    text = str(row.get("status") or "").upper()
    try:
        status = GttStatus(text)
    except ValueError:
        raise BrokerUnavailable(f"GTT rule {row.get('id')} has a status the adapter does not know: {text!r}",
                                route=route) from None
    return GttRule(
        rule_id=str(row.get("id") or ""),
        exchange=str(row.get("exchange") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        token=str(row.get("symboltoken") or ""),
        side=OrderSide(str(row.get("transactiontype") or "SELL").upper()),
        product=str(row.get("producttype") or ""),
        quantity=units(row.get("qty")),
        price=paise(row.get("price")),
        trigger_price=paise(row.get("triggerprice")),
        status=status,
        order_id=str(row.get("orderid") or ""),
    )
