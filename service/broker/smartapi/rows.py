"""SmartAPI JSON rows to port values. Rows mix strings and numbers; everything is coerced here."""
from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from service.broker.types import (
    BrokerOrder,
    Candle,
    Fill,
    Funds,
    OrderKind,
    OrderSide,
    OrderStatus,
    Position,
    SearchHit,
)

__all__ = ["paise", "units", "order_from_row", "fill_from_row", "position_from_row", "funds_from_rms",
           "candle_from_row", "hit_from_row"]

log = logging.getLogger(__name__)


def paise(value: Any) -> int:
    """Rupees as SmartAPI sends them (number or string, maybe empty) to integer paise."""
    if value is None or value == "":
        return 0
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except InvalidOperation:
        return 0


def units(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(Decimal(str(value)))
    except InvalidOperation:
        return 0


def _kind(value: Any) -> OrderKind:
    try:
        return OrderKind(str(value).upper())
    except ValueError:
        return OrderKind.MARKET


def order_from_row(row: dict[str, Any]) -> BrokerOrder:
    quantity = units(row.get("quantity"))
    filled = units(row.get("filledshares"))
    text = row.get("orderstatus") or row.get("status")
    status = OrderStatus.parse(text)
    if status is OrderStatus.UNRECOGNISED:  # kept live and looked up again (OrderStatus.UNRECOGNISED)
        log.warning("order status not recognised", extra={"status": str(text)[:60], "order_id": row.get("orderid")})
    cancelled = units(row.get("cancelsize"))
    if status in (OrderStatus.CANCELLED, OrderStatus.REJECTED) and not cancelled:
        cancelled = max(0, quantity - filled)
    return BrokerOrder(
        order_id=str(row.get("orderid") or ""),
        unique_order_id=str(row.get("uniqueorderid") or ""),
        tag=str(row.get("ordertag") or ""),
        exchange=str(row.get("exchange") or ""),
        token=str(row.get("symboltoken") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        side=OrderSide(str(row.get("transactiontype") or "BUY").upper()),
        kind=_kind(row.get("ordertype")),
        product=str(row.get("producttype") or ""),
        variety=str(row.get("variety") or "NORMAL"),
        quantity=quantity,
        filled=filled,
        cancelled=cancelled,
        average_price=paise(row.get("averageprice")),
        price=paise(row.get("price")),
        trigger_price=paise(row.get("triggerprice")),
        status=status,
        text=str(row.get("text") or ""),
        updated=str(row.get("exchorderupdatetime") or row.get("updatetime") or ""),
        parent_order_id=str(row.get("parentorderid") or ""),
    )


def fill_from_row(row: dict[str, Any]) -> Fill:
    return Fill(
        order_id=str(row.get("orderid") or ""),
        fill_id=str(row.get("fillid") or ""),
        exchange=str(row.get("exchange") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        side=OrderSide(str(row.get("transactiontype") or "BUY").upper()),
        quantity=units(row.get("fillsize")),
        price=paise(row.get("fillprice")),
        time=str(row.get("filltime") or ""),
    )


def position_from_row(row: dict[str, Any]) -> Position:
    net = units(row.get("netqty"))
    ltp = paise(row.get("ltp"))
    realised = paise(row.get("realised"))
    if "unrealised" in row:
        unrealised = paise(row.get("unrealised"))
    else:  # docs' sample rows carry no P&L split: derive it from amounts
        pnl = paise(row.get("sellamount")) - paise(row.get("buyamount")) + net * ltp
        unrealised = pnl - realised
    return Position(
        exchange=str(row.get("exchange") or ""),
        token=str(row.get("symboltoken") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        product=str(row.get("producttype") or ""),
        net_quantity=net,
        buy_quantity=units(row.get("buyqty")),
        sell_quantity=units(row.get("sellqty")),
        buy_average=paise(row.get("buyavgprice")),
        sell_average=paise(row.get("sellavgprice")),
        ltp=ltp,
        realised=realised,
        unrealised=unrealised,
    )


def funds_from_rms(data: dict[str, Any]) -> Funds:
    return Funds(
        available_cash=paise(data.get("availablecash")),
        net=paise(data.get("net")),
        utilised=paise(data.get("utiliseddebits")),
        realised=paise(data.get("m2mrealized")),
        unrealised=paise(data.get("m2munrealized")),
    )


def candle_from_row(row: list[Any]) -> Candle:
    start, o, h, l, c, v = row[:6]
    return Candle(str(start), paise(o), paise(h), paise(l), paise(c), units(v))


def hit_from_row(row: dict[str, Any]) -> SearchHit:
    return SearchHit(str(row.get("exchange") or ""), str(row.get("tradingsymbol") or ""), str(row.get("symboltoken") or ""))
