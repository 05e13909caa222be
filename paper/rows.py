"""An order as the engine holds it, and as the order book shows it: the row built from it and read back."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paper import positions as pos
from paper.faults import Fault
from paper.instruments import Instrument
from paper.vocabulary import STOP_TYPES

__all__ = ["Order", "order_row", "order_from_row", "stamp"]


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the engine holds it: prices in paise, times already formatted in IST."""

    orderid: str
    uniqueorderid: str
    clientcode: str
    variety: str
    exchange: str
    symboltoken: str
    tradingsymbol: str
    transactiontype: str
    ordertype: str
    producttype: str
    duration: str
    price: int
    triggerprice: int
    quantity: int
    disclosedquantity: int = 0
    squareoff: int = 0
    stoploss: int = 0
    trailingstoploss: int = 0
    ordertag: str = ""
    status: str = "open pending"
    text: str = ""
    filledshares: int = 0
    filledvalue: int = 0  # Σ fill price × size, paise
    cancelsize: int = 0
    triggered: bool = False
    held: bool = False  # a fault keeps it resting until it is modified
    fault: Fault | None = None  # an order fault not yet applied
    exchangeorderid: str = ""
    updatetime: str = ""
    exchtime: str = ""
    fillid: str = ""
    filltime: str = ""
    parentorderid: str = ""  # the GTT rule that placed it (`paper.gtt`), where one did

    @property
    def unfilled(self) -> int:
        return self.quantity - self.filledshares

    @property
    def is_buy(self) -> bool:
        return self.transactiontype == "BUY"


def order_row(order: Order, instrument: Instrument) -> dict[str, Any]:
    """The order-book row: prices as numbers in rupees, quantities as strings, as the docs show them."""
    average = order.filledvalue / order.filledshares / 100 if order.filledshares else 0
    return {
        "variety": order.variety, "ordertype": order.ordertype, "producttype": order.producttype,
        "duration": order.duration, "price": pos.rupees(order.price), "triggerprice": pos.rupees(order.triggerprice),
        "quantity": str(order.quantity), "disclosedquantity": str(order.disclosedquantity),
        "squareoff": pos.rupees(order.squareoff), "stoploss": pos.rupees(order.stoploss),
        "trailingstoploss": pos.rupees(order.trailingstoploss), "tradingsymbol": order.tradingsymbol,
        "transactiontype": order.transactiontype, "exchange": order.exchange, "symboltoken": order.symboltoken,
        "ordertag": order.ordertag, "instrumenttype": instrument.instrumenttype,
        "strikeprice": pos.strike_value(instrument), "optiontype": instrument.option_type or "",
        "expirydate": pos.expiry_text(instrument), "lotsize": str(instrument.lotsize),
        "cancelsize": str(order.cancelsize), "averageprice": round(average, 2),
        "filledshares": str(order.filledshares), "unfilledshares": str(order.unfilled),
        "orderid": order.orderid, "text": order.text, "status": order.status, "orderstatus": order.status,
        "updatetime": order.updatetime, "exchtime": order.exchtime, "exchorderupdatetime": order.exchtime and order.updatetime,
        "fillid": order.fillid, "filltime": order.filltime, "parentorderid": order.parentorderid,
        "uniqueorderid": order.uniqueorderid, "exchangeorderid": order.exchangeorderid,
    }


def order_from_row(clientcode: str, row: Mapping[str, Any], filledvalue: int) -> Order:
    """An order back from its stored row; `filledvalue` comes from its fills (the row's average is rounded)."""
    status = str(row["status"])
    if status == "modified":  # the row stored between a modification and its re-entry
        status = "trigger pending" if row["ordertype"] in STOP_TYPES and row["filledshares"] == "0" else "open"
    return Order(
        str(row["orderid"]), str(row["uniqueorderid"]), clientcode, str(row["variety"]), str(row["exchange"]),
        str(row["symboltoken"]), str(row["tradingsymbol"]), str(row["transactiontype"]), str(row["ordertype"]),
        str(row["producttype"]), str(row["duration"]), pos.paise_of(row["price"]), pos.paise_of(row["triggerprice"]),
        int(row["quantity"]), int(row["disclosedquantity"]), pos.paise_of(row["squareoff"]),
        pos.paise_of(row["stoploss"]), pos.paise_of(row["trailingstoploss"]), str(row["ordertag"]),
        status=status, text=str(row["text"]),
        filledshares=int(row["filledshares"]), filledvalue=filledvalue, cancelsize=int(row["cancelsize"]),
        triggered=status == "open" and row["ordertype"] in STOP_TYPES, exchangeorderid=str(row["exchangeorderid"]),
        held=status == "open" and row["ordertype"] in ("MARKET", "STOPLOSS_MARKET"),  # only a fault keeps these open
        updatetime=str(row["updatetime"]), exchtime=str(row["exchtime"]), fillid=str(row["fillid"]),
        filltime=str(row["filltime"]), parentorderid=str(row.get("parentorderid") or ""),
    )


def stamp(moment: datetime) -> str:
    """A time as the order book shows it (`updatetime`, `exchtime`)."""
    return moment.strftime("%d-%b-%Y %H:%M:%S")
