"""Positions, holdings and funds: a fold over the trade book plus the margin blocked by open orders.

Day positions, one per (clientcode, exchange, token, producttype), from the fills of the day:

    pnl        = sellamount − buyamount + netqty × ltp
    realised   = min(buyqty, sellqty) × (sellavg − buyavg)        rounded to the paisa
    unrealised = pnl − realised

Funds (getRMS), per clientcode, all in paise:

    availablecash  = opening cash + Σ realised
    m2mrealized    = Σ realised;   m2munrealized = Σ unrealised
    utiliseddebits = Σ margin(position at ltp) + Σ margin(pending order, opening part only)
    net            = availablecash + m2munrealized − utiliseddebits

margin(instrument, product, signed quantity q, price p), rounded up to the paisa (`MARGIN_RATES`):
    cash equity        INTRADAY 20 % of |q|·p; DELIVERY and MARGIN 100 %          → utilisedexposure
    option, long       100 % of the premium |q|·p                                   → utilisedoptionpremium
    option, short      15 % of the notional |q|·strike                              → utilisedspan
    future             15 % of the notional |q|·p                                   → utilisedspan

A pending order ("open" or "trigger pending") blocks margin only for the part of its unfilled
quantity that would open or add to a position: pending orders of a position are taken in placement
order, and each sell first uses up what is left of a long (each buy what is left of a short); only
the remainder is charged, at the order's price (LIMIT/SL-L: limit price, SL-M: trigger, MARKET: ltp).
An order is refused for insufficient funds when the margin it would block exceeds `net`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from paper.instruments import Instrument

__all__ = [
    "Fill", "Position", "PositionKey", "Funds", "MARGIN_RATES", "apply_fill", "fold", "margin",
    "pending_margin", "position_row", "holding_row", "rms_row", "trade_row", "paise_text", "paise_of", "rupees",
    "expiry_text", "strike_value",
]

PositionKey = tuple[str, str, str, str]  # clientcode, exchange, symboltoken, producttype

MARGIN_RATES: dict[str, Fraction] = {
    "equity_intraday": Fraction(20, 100),
    "equity_delivery": Fraction(100, 100),  # DELIVERY and MARGIN
    "option_long": Fraction(100, 100),  # of the premium
    "option_short": Fraction(15, 100),  # of strike × quantity
    "future": Fraction(15, 100),  # of price × quantity
}
CATEGORIES = ("exposure", "optionpremium", "span")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `price` in paise; `filltime` formatted HH:MM:SS IST."""

    clientcode: str
    orderid: str
    fillid: str
    exchange: str
    symboltoken: str
    tradingsymbol: str
    producttype: str
    transactiontype: str
    price: int
    quantity: int
    filltime: str

    @property
    def key(self) -> PositionKey:
        return (self.clientcode, self.exchange, self.symboltoken, self.producttype)


@dataclass(slots=True)
class Position:
    exchange: str
    symboltoken: str
    producttype: str
    buyqty: int = 0
    sellqty: int = 0
    buyvalue: int = 0  # Σ price × quantity, paise
    sellvalue: int = 0
    last_price: int = 0  # the last fill: the mark when no quote is known

    @property
    def netqty(self) -> int:
        return self.buyqty - self.sellqty

    def pnl(self, ltp: int) -> int:
        return self.sellvalue - self.buyvalue + self.netqty * ltp

    def realised(self) -> int:
        closed = min(self.buyqty, self.sellqty)
        if closed == 0:
            return 0
        return round(closed * (Fraction(self.sellvalue, self.sellqty) - Fraction(self.buyvalue, self.buyqty)))

    def unrealised(self, ltp: int) -> int:
        return self.pnl(ltp) - self.realised()


@dataclass(frozen=True, slots=True)
class Funds:
    opening: int
    realised: int
    unrealised: int
    utilised: dict[str, int]  # by category: exposure, optionpremium, span

    @property
    def availablecash(self) -> int:
        return self.opening + self.realised

    @property
    def utiliseddebits(self) -> int:
        return sum(self.utilised.values())

    @property
    def net(self) -> int:
        return self.availablecash + self.unrealised - self.utiliseddebits


def apply_fill(positions: dict[PositionKey, Position], fill: Fill) -> None:
    position = positions.get(fill.key)
    if position is None:
        position = positions[fill.key] = Position(fill.exchange, fill.symboltoken, fill.producttype)
    if fill.transactiontype == "BUY":
        position.buyqty += fill.quantity
        position.buyvalue += fill.price * fill.quantity
    else:
        position.sellqty += fill.quantity
        position.sellvalue += fill.price * fill.quantity
    position.last_price = fill.price


def fold(fills: Iterable[Fill]) -> dict[PositionKey, Position]:
    positions: dict[PositionKey, Position] = {}
    for fill in fills:
        apply_fill(positions, fill)
    return positions


def margin(instrument: Instrument, producttype: str, quantity: int, price: int) -> tuple[str, int]:
    """(category, paise) blocked by holding the signed `quantity` at `price`."""
    size = abs(quantity)
    if instrument.is_option:
        if quantity >= 0:
            return "optionpremium", _ceil(MARGIN_RATES["option_long"] * size * price)
        return "span", _ceil(MARGIN_RATES["option_short"] * size * (instrument.strike_paise or 0))
    if instrument.is_derivative:
        return "span", _ceil(MARGIN_RATES["future"] * size * price)
    rate = MARGIN_RATES["equity_intraday" if producttype == "INTRADAY" else "equity_delivery"]
    return "exposure", _ceil(rate * size * price)


def pending_margin(
    instrument: Instrument, producttype: str, netqty: int, orders: Iterable[tuple[str, int, int]]
) -> dict[str, int]:
    """Margin blocked by pending orders `(transactiontype, unfilled, price)` of one position, in placement order."""
    long_left, short_left = max(netqty, 0), max(-netqty, 0)
    blocked = dict.fromkeys(CATEGORIES, 0)
    for side, unfilled, price in orders:
        if side == "BUY":
            reducing = min(unfilled, short_left)
            short_left -= reducing
            category, amount = margin(instrument, producttype, unfilled - reducing, price)
        else:
            reducing = min(unfilled, long_left)
            long_left -= reducing
            category, amount = margin(instrument, producttype, -(unfilled - reducing), price)
        blocked[category] += amount
    return blocked


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


# Rows ---------------------------------------------------------------------------------------------
def paise_text(paise: int | Fraction, places: int = 2) -> str:
    """Paise (exact) as a rupee string: 19450 -> "194.50"."""
    value = Decimal(paise.numerator) / Decimal(paise.denominator) if isinstance(paise, Fraction) else Decimal(paise)
    return f"{value / 100:.{places}f}"


def rupees(paise: int) -> float:
    return float(Decimal(paise) / 100)


def expiry_text(instrument: Instrument) -> str:
    return instrument.expiry.strftime("%d%b%Y").upper() if instrument.expiry else ""


def _average(value: int, quantity: int) -> str:
    return paise_text(Fraction(value, quantity)) if quantity else "0.00"


def position_row(position: Position, instrument: Instrument, ltp: int, close: int) -> dict[str, str]:
    net = position.netqty
    pnl, realised = position.pnl(ltp), position.realised()
    return {
        "exchange": position.exchange, "symboltoken": position.symboltoken, "producttype": position.producttype,
        "tradingsymbol": instrument.symbol, "symbolname": instrument.name, "instrumenttype": instrument.instrumenttype,
        "priceden": "1.00", "pricenum": "1.00", "genden": "1.00", "gennum": "1.00", "precision": "2",
        "multiplier": "-1", "boardlotsize": "1",
        "buyqty": str(position.buyqty), "sellqty": str(position.sellqty),
        "buyamount": paise_text(position.buyvalue), "sellamount": paise_text(position.sellvalue),
        "symbolgroup": "EQ", "strikeprice": _strike_text(instrument), "optiontype": instrument.option_type or "",
        "expirydate": expiry_text(instrument), "lotsize": str(instrument.lotsize),
        "cfbuyqty": "0", "cfsellqty": "0", "cfbuyamount": "0.00", "cfsellamount": "0.00",
        "buyavgprice": _average(position.buyvalue, position.buyqty),
        "sellavgprice": _average(position.sellvalue, position.sellqty),
        "avgnetprice": _average(position.buyvalue - position.sellvalue, net),
        "netvalue": paise_text(position.sellvalue - position.buyvalue), "netqty": str(net),
        "totalbuyvalue": paise_text(position.buyvalue), "totalsellvalue": paise_text(position.sellvalue),
        "cfbuyavgprice": "0.00", "cfsellavgprice": "0.00",
        "totalbuyavgprice": _average(position.buyvalue, position.buyqty),
        "totalsellavgprice": _average(position.sellvalue, position.sellqty),
        "netprice": _average(position.buyvalue - position.sellvalue, net),
        "ltp": paise_text(ltp), "close": paise_text(close),
        "pnl": paise_text(pnl), "realised": paise_text(realised), "unrealised": paise_text(pnl - realised),
    }


def _strike_text(instrument: Instrument) -> str:
    return paise_text(instrument.strike_paise) if instrument.strike_paise is not None else "-1"


def strike_value(instrument: Instrument) -> float:
    """The strike in rupees as order rows carry it: a number, -1 for non-options."""
    return rupees(instrument.strike_paise) if instrument.strike_paise is not None else -1


def holding_row(position: Position, instrument: Instrument, ltp: int, close: int) -> dict[str, object]:
    """A DELIVERY long bought today: T1 quantity until settlement; numbers as the docs sample shows them."""
    quantity = position.netqty
    average = Fraction(position.buyvalue, position.buyqty)
    invested = average * quantity
    pnl = ltp * quantity - invested
    return {
        "tradingsymbol": instrument.symbol, "exchange": instrument.exchange, "isin": "",
        "t1quantity": quantity, "realisedquantity": 0, "quantity": quantity, "authorisedquantity": 0,
        "product": "DELIVERY", "collateralquantity": None, "collateraltype": None, "haircut": 0,
        "averageprice": float(paise_text(average)), "ltp": rupees(ltp), "symboltoken": instrument.token,
        "close": rupees(close), "profitandloss": float(paise_text(pnl)),
        "pnlpercentage": round(float(pnl / invested * 100), 2) if invested else 0.0,
    }


def rms_row(funds: Funds) -> dict[str, str]:
    def text(paise: int) -> str:
        return paise_text(paise, 4)

    return {
        "net": text(funds.net),
        "availablecash": text(funds.availablecash),
        "availableintradaypayin": text(0),
        "availablelimitmargin": text(funds.net),
        "collateral": text(0),
        "m2munrealized": text(funds.unrealised),
        "m2mrealized": text(funds.realised),
        "utiliseddebits": text(funds.utiliseddebits),
        "utilisedspan": text(funds.utilised["span"]),
        "utilisedoptionpremium": text(funds.utilised["optionpremium"]),
        "utilisedholdingsales": text(0),
        "utilisedexposure": text(funds.utilised["exposure"]),
        "utilisedturnover": text(0),
        "utilisedpayout": text(0),
    }


def trade_row(fill: Fill, instrument: Instrument) -> dict[str, str]:
    return {
        "exchange": fill.exchange, "producttype": fill.producttype, "tradingsymbol": fill.tradingsymbol,
        "instrumenttype": instrument.instrumenttype, "symbolgroup": "EQ", "strikeprice": _strike_text(instrument),
        "optiontype": instrument.option_type or "", "expirydate": expiry_text(instrument),
        "marketlot": str(instrument.lotsize), "precision": "2", "multiplier": "-1",
        "tradevalue": paise_text(fill.price * fill.quantity), "transactiontype": fill.transactiontype,
        "fillprice": paise_text(fill.price), "fillsize": str(fill.quantity), "orderid": fill.orderid,
        "fillid": fill.fillid, "filltime": fill.filltime,
    }


def paise_of(rupee_value: object) -> int:
    """A rupee amount as rows carry it (194.5, "194.50") back to exact paise."""
    return int((Decimal(str(rupee_value)) * 100).to_integral_value())
