from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from paper.errors import OrderError, PaperError
from paper.instruments import Instrument, Universe
from paper.orders import OrderEngine, OrderEvent
from paper.quotes import Quote

IST = ZoneInfo("Asia/Kolkata")
MORNING = datetime(2024, 11, 20, 10, 15, 30, tzinfo=IST).timestamp()

SBIN = Instrument("3045", "SBIN-EQ", "SBIN", "NSE", "", 1, 5)
NIFTY_CE = Instrument(
    "43650", "NIFTY28NOV2424000CE", "NIFTY", "NFO", "OPTIDX", 75, 5, date(2024, 11, 28), 2_400_000, "CE", "99926000", "NSE"
)
NIFTY_FUT = Instrument("35000", "NIFTY28NOV24FUT", "NIFTY", "NFO", "FUTIDX", 75, 10, date(2024, 11, 28), None, None, "99926000", "NSE")
NIFTY = Instrument("99926000", "Nifty 50", "NIFTY", "NSE", "AMXIDX", 1, 5)
UNIVERSE = Universe([SBIN, NIFTY_CE, NIFTY_FUT, NIFTY])
START_LTP = {SBIN: 80_000, NIFTY_CE: 12_000, NIFTY_FUT: 2_410_000, NIFTY: 2_400_000}


class FakePrices:
    """The price source the engine reads: one settable quote per instrument, circuits ±10 % of the close."""

    def __init__(self) -> None:
        self.quotes: dict[tuple[str, str], Quote] = {}

    def quote(self, exchange: str, token: str) -> Quote:
        return self.quotes[(exchange, token)]

    def set(self, instrument: Instrument, ltp: int, close: int | None = None) -> Quote:
        close = close if close is not None else START_LTP[instrument]
        band = 0 if instrument.is_index else close // 10
        quote = Quote(instrument.exchange, instrument.token, ltp, close, max(ltp, close), min(ltp, close), close,
                      close + band if band else 0, close - band if band else 0, close * 2, close // 2)
        self.quotes[(instrument.exchange, instrument.token)] = quote
        return quote


@dataclass
class Desk:
    """An engine, its prices and clock, and everything it reported."""

    engine: OrderEngine
    prices: FakePrices
    now: list[float]
    events: list[OrderEvent] = field(default_factory=list)
    client: str = "P0001"

    def place(self, instrument: Instrument = SBIN, **overrides: Any):
        return self.engine.place(self.client, order_params(instrument, **overrides))

    def move(self, instrument: Instrument, ltp: int) -> None:
        self.engine.on_quotes([self.prices.set(instrument, ltp)])

    def row(self, orderid: str) -> dict[str, Any]:
        return next(r for r in self.engine.order_book(self.client) if r["orderid"] == orderid)

    def statuses(self, orderid: str) -> list[str]:
        return [e.status for e in self.events if e.row["orderid"] == orderid]

    def rms(self) -> dict[str, str]:
        return self.engine.rms(self.client)


def order_params(instrument: Instrument = SBIN, **overrides: Any) -> dict[str, Any]:
    """A placeOrder body as the SDK sends it: every number a string."""
    params = {
        "variety": "NORMAL", "tradingsymbol": instrument.symbol, "symboltoken": instrument.token,
        "transactiontype": "BUY", "exchange": instrument.exchange, "ordertype": "MARKET",
        "producttype": "CARRYFORWARD" if instrument.is_derivative else "INTRADAY", "duration": "DAY",
        "price": "0", "triggerprice": "0", "quantity": str(instrument.lotsize), "squareoff": "0", "stoploss": "0",
    }
    params.update(overrides)
    return params


def make_desk(cash_rupees: int = 1_000_000, clock: float = MORNING) -> Desk:
    prices = FakePrices()
    for instrument, ltp in START_LTP.items():
        prices.set(instrument, ltp)
    now = [clock]
    engine = OrderEngine(UNIVERSE, prices, clock=lambda: now[0], opening_cash=lambda _code: cash_rupees * 100)
    desk = Desk(engine, prices, now)
    engine.add_listener(desk.events.append)
    return desk


@pytest.fixture
def desk_factory() -> Callable[..., Desk]:
    return make_desk


@pytest.fixture
def desk(desk_factory) -> Desk:
    return desk_factory()


# Synchronous refusals -----------------------------------------------------------------------------
REFUSALS = [
    ({"variety": "BRACKET"}, "AB1008", "Invalid Order Variety", "variety"),
    ({"variety": "ROBO", "producttype": "BO"}, "AB2002", "ROBO order is block", "variety"),
    ({"symboltoken": "999"}, "AB1009", "Symbol Not Found", "symboltoken"),
    ({"tradingsymbol": "SBI-EQ"}, "AB1009", "Symbol Not Found", "tradingsymbol"),
    ({"exchange": "BSE"}, "AB1009", "Symbol Not Found", "symboltoken"),
    ({"symboltoken": ""}, "AB4018", "Symbol token cannot be empty", "symboltoken"),
    ({"producttype": "CNC"}, "AB1012", "Invalid Product Type", "producttype"),
    ({"producttype": "BO"}, "AB1012", "Invalid Product Type", "producttype"),
    ({"producttype": "CARRYFORWARD"}, "AB1012", "Invalid Product Type", "producttype"),
    ({"ordertag": "x" * 20}, "AB4008", "ordertag length should be less than 20 characters", "ordertag"),
    ({"transactiontype": "HOLD"}, "AB2000", "Invalid Transaction Type: 'HOLD' (expected BUY or SELL)", "transactiontype"),
    ({"ordertype": "SL"}, "AB2000",
     "Invalid Order Type: 'SL' (expected MARKET or LIMIT or STOPLOSS_LIMIT or STOPLOSS_MARKET)", "ordertype"),
    ({"duration": "GTC"}, "AB2000", "Invalid Duration: 'GTC' (expected DAY or IOC)", "duration"),
    ({"quantity": "0"}, "AB2000", "Invalid Quantity: '0' (expected a whole number >= 1)", "quantity"),
    ({"quantity": "10.5"}, "AB2000", "Invalid Quantity: '10.5' (expected a whole number >= 1)", "quantity"),
    ({"quantity": "-5"}, "AB2000", "Invalid Quantity: '-5' must be a finite number >= 0", "quantity"),
    ({"quantity": "ten"}, "AB2000", "Invalid Quantity: 'ten' is not a number", "quantity"),
    ({"quantity": None}, "AB2000", "Invalid Quantity: quantity is required", "quantity"),
    ({"ordertype": "LIMIT", "price": "0"}, "AB2000", "Invalid Price: a LIMIT order needs a price greater than 0", "price"),
    ({"ordertype": "LIMIT", "price": None}, "AB2000", "Invalid Price: a LIMIT order needs a price greater than 0", "price"),
    ({"ordertype": "LIMIT", "price": "194.505"}, "AB2000", "Invalid Price: '194.505' has more than 2 decimals", "price"),
    ({"ordertype": "LIMIT", "price": "NaN"}, "AB2000", "Invalid Price: 'NaN' must be a finite number >= 0", "price"),
    ({"variety": "STOPLOSS", "ordertype": "STOPLOSS_MARKET"}, "AB2000",
     "Invalid Trigger Price: a STOPLOSS_MARKET order needs a trigger price greater than 0", "triggerprice"),
    ({"variety": "STOPLOSS", "ordertype": "STOPLOSS_LIMIT", "price": "800", "triggerprice": ""}, "AB2000",
     "Invalid Trigger Price: a STOPLOSS_LIMIT order needs a trigger price greater than 0", "triggerprice"),
    ({"ordertype": "STOPLOSS_LIMIT", "price": "800", "triggerprice": "799"}, "AB1008",
     "Invalid Order Variety: a STOPLOSS_LIMIT order needs variety STOPLOSS", "variety"),
    ({"variety": "STOPLOSS", "ordertype": "LIMIT", "price": "800"}, "AB1008",
     "Invalid Order Variety: a LIMIT order cannot use variety STOPLOSS", "variety"),
]


@pytest.mark.parametrize(("overrides", "errorcode", "message", "field"), REFUSALS)
def test_refused_requests_leave_no_order_behind(desk, overrides, errorcode, message, field):
    with pytest.raises(OrderError) as refused:
        desk.place(SBIN, **overrides)
    assert (refused.value.errorcode, refused.value.message, refused.value.field) == (errorcode, message, field)
    assert isinstance(refused.value, PaperError)
    assert desk.engine.order_book(desk.client) == [] and desk.events == []


@pytest.mark.parametrize(
    ("instrument", "overrides"),
    [(NIFTY, {}), (NIFTY_CE, {"producttype": "DELIVERY"}), (NIFTY_FUT, {"exchange": "NSE"})],
)
def test_indices_and_wrong_segments_are_refused(desk, instrument, overrides):
    with pytest.raises(OrderError) as refused:
        desk.place(instrument, **overrides)
    assert refused.value.errorcode in ("AB1009", "AB1012")


def test_numbers_are_coerced_from_strings_and_json_numbers(desk):
    order = desk.place(SBIN, ordertype="LIMIT", price="790.50", quantity="7", ordertag="tg1E1")
    assert (order.price, order.quantity, order.ordertag) == (79_050, 7, "tg1E1")
    again = desk.place(SBIN, ordertype="LIMIT", price=790.5, quantity=7.0, transactiontype="buy", ordertag="x" * 19)
    assert (again.price, again.quantity, again.transactiontype) == (79_050, 7, "BUY")
    row = desk.row(order.orderid)
    assert row["price"] == 790.5 and row["quantity"] == "7" and row["ordertag"] == "tg1E1"


# Identity, rows and events ------------------------------------------------------------------------
def test_order_ids_are_ist_dated_sequences_with_uuid_unique_ids(desk_factory):
    late_evening_utc = datetime(2024, 11, 21, 1, 30, 5, tzinfo=IST).timestamp()  # still the 20th in UTC
    desk = desk_factory(clock=late_evening_utc)
    first, second = desk.place(SBIN), desk.place(SBIN)
    assert (first.orderid, second.orderid) == ("241121000000001", "241121000000002")
    assert uuid.UUID(first.uniqueorderid).version == 4 and first.uniqueorderid != second.uniqueorderid
    row = desk.row(first.orderid)
    assert row["updatetime"] == row["exchtime"] == row["exchorderupdatetime"] == "21-Nov-2024 01:30:05"
    assert row["filltime"] == "01:30:05"


def test_a_market_buy_walks_open_pending_open_complete_with_full_rows(desk):
    order = desk.place(SBIN, quantity="10", ordertag="tg1E1")
    assert desk.statuses(order.orderid) == ["open pending", "open", "complete"]
    assert [e.fill is not None for e in desk.events] == [False, False, True]
    row = desk.row(order.orderid)
    assert row == desk.events[-1].row
    assert row == {
        "variety": "NORMAL", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY", "price": 0.0,
        "triggerprice": 0.0, "quantity": "10", "disclosedquantity": "0", "squareoff": 0.0, "stoploss": 0.0,
        "trailingstoploss": 0.0, "tradingsymbol": "SBIN-EQ", "transactiontype": "BUY", "exchange": "NSE",
        "symboltoken": "3045", "ordertag": "tg1E1", "instrumenttype": "", "strikeprice": -1, "optiontype": "",
        "expirydate": "", "lotsize": "1", "cancelsize": "0", "averageprice": 800.0, "filledshares": "10",
        "unfilledshares": "0", "orderid": order.orderid, "text": "", "status": "complete", "orderstatus": "complete",
        "updatetime": "20-Nov-2024 10:15:30", "exchtime": "20-Nov-2024 10:15:30",
        "exchorderupdatetime": "20-Nov-2024 10:15:30", "fillid": "50000001", "filltime": "10:15:30",
        "parentorderid": "", "uniqueorderid": order.uniqueorderid, "exchangeorderid": "1100000000000001",
    }
    assert desk.engine.trade_book(desk.client) == [desk.events[-1].fill] == [{
        "exchange": "NSE", "producttype": "INTRADAY", "tradingsymbol": "SBIN-EQ", "instrumenttype": "",
        "symbolgroup": "EQ", "strikeprice": "-1", "optiontype": "", "expirydate": "", "marketlot": "1",
        "precision": "2", "multiplier": "-1", "tradevalue": "8000.00", "transactiontype": "BUY",
        "fillprice": "800.00", "fillsize": "10", "orderid": order.orderid, "fillid": "50000001", "filltime": "10:15:30",
    }]


def test_option_rows_carry_strike_expiry_and_lot(desk):
    order = desk.place(NIFTY_CE, ordertype="LIMIT", price="120.50", quantity="75")
    row = desk.row(order.orderid)
    assert (row["strikeprice"], row["optiontype"], row["expirydate"], row["lotsize"], row["instrumenttype"]) == (
        24000.0, "CE", "28NOV2024", "75", "OPTIDX")
    fill = desk.engine.trade_book(desk.client)[0]
    assert (fill["strikeprice"], fill["expirydate"], fill["marketlot"], fill["fillprice"]) == (
        "24000.00", "28NOV2024", "75", "120.00")


def test_books_are_per_client_and_found_by_tag_and_unique_id(desk):
    mine = desk.place(SBIN, ordertag="tg7X1")
    theirs = desk.engine.place("P0002", order_params(SBIN, ordertag="tg7X1"))
    assert [r["orderid"] for r in desk.engine.find_by_tag(desk.client, "tg7X1")] == [mine.orderid]
    assert desk.engine.find_by_tag(desk.client, "") == []
    assert desk.engine.order_details(desk.client, mine.uniqueorderid)["orderid"] == mine.orderid
    assert desk.engine.order_details(desk.client, theirs.uniqueorderid) is None
    assert desk.engine.order_details(desk.client, mine.orderid) is None
    assert len(desk.engine.trade_book("P0002")) == 1 and len(desk.engine.positions(desk.client)) == 1


# Risk rejections (accepted first, then rejected in settle) -----------------------------------------
def test_insufficient_funds_rejects_with_the_brokers_text(desk_factory):
    desk = desk_factory(cash_rupees=937)
    desk.prices.set(SBIN, 46_000, close=46_000)
    order = desk.place(SBIN, producttype="DELIVERY", ordertype="LIMIT", price="459.65", quantity="5")
    assert desk.statuses(order.orderid) == ["open pending", "rejected"]
    row = desk.row(order.orderid)
    assert row["text"] == ("Your order has been rejected due to Insufficient Funds. Available funds - Rs. 937.00 . "
                           "You require Rs. 2298.25 funds to execute this order.")
    assert (row["exchtime"], row["exchangeorderid"], row["filledshares"], row["unfilledshares"]) == ("", "", "0", "5")
    assert desk.rms()["net"] == "937.0000"


def test_funds_exactly_enough_are_enough(desk_factory):
    desk = desk_factory(cash_rupees=8_000)
    order = desk.place(SBIN, producttype="DELIVERY", quantity="10")
    assert order.status == "complete" and desk.rms()["net"] == "0.0000"


@pytest.mark.parametrize(
    ("instrument", "overrides", "text"),
    [
        (NIFTY_CE, {"quantity": "80"},
         "Your order has been rejected as the quantity 80 is not a multiple of the lot size 75 for NIFTY28NOV2424000CE."),
        (SBIN, {"ordertype": "LIMIT", "price": "800.03"},
         "Your order has been rejected as the price 800.03 is not a multiple of the tick size 0.05."),
        (SBIN, {"variety": "STOPLOSS", "ordertype": "STOPLOSS_MARKET", "triggerprice": "810.01"},
         "Your order has been rejected as the trigger price 810.01 is not a multiple of the tick size 0.05."),
        (NIFTY_FUT, {"ordertype": "LIMIT", "price": "24100.05"},
         "Your order has been rejected as the price 24100.05 is not a multiple of the tick size 0.10."),
        (SBIN, {"ordertype": "LIMIT", "price": "880.05"},
         "Your order has been rejected as the price 880.05 is outside the circuit limits (lower Rs. 720.00, upper Rs. 880.00)."),
        (SBIN, {"variety": "STOPLOSS", "ordertype": "STOPLOSS_LIMIT", "transactiontype": "SELL", "price": "719.95",
                "triggerprice": "725"},
         "Your order has been rejected as the price 719.95 is outside the circuit limits (lower Rs. 720.00, upper Rs. 880.00)."),
        (NIFTY_CE, {"variety": "STOPLOSS", "ordertype": "STOPLOSS_MARKET", "triggerprice": "125"},
         "Your order has been rejected as STOPLOSS_MARKET orders are not allowed for options by the exchange. "
         "Place a STOPLOSS_LIMIT order instead."),
    ],
)
def test_rms_rejections_keep_the_order_with_a_reason(desk, instrument, overrides, text):
    order = desk.place(instrument, **overrides)
    assert order.status == "rejected" and desk.row(order.orderid)["text"] == text
    assert desk.engine.trade_book(desk.client) == [] and desk.rms()["utiliseddebits"] == "0.0000"


def test_settle_is_separate_from_accept_and_idempotent(desk):
    order = desk.engine.accept(desk.client, order_params(SBIN))
    assert desk.row(order.orderid)["status"] == "open pending" and desk.rms()["utiliseddebits"] == "0.0000"
    desk.engine.settle(order.orderid)
    desk.engine.settle(order.orderid)
    desk.engine.settle("nope")
    assert desk.statuses(order.orderid) == ["open pending", "open", "complete"]


def test_an_order_cancelled_before_it_settles_stays_cancelled(desk):
    order = desk.engine.accept(desk.client, order_params(SBIN, quantity="3"))
    desk.engine.cancel(desk.client, order.orderid, "NORMAL")
    desk.engine.settle(order.orderid)
    assert desk.row(order.orderid)["status"] == "cancelled" and desk.row(order.orderid)["cancelsize"] == "3"
    assert desk.engine.trade_book(desk.client) == []


# Matching ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("side", "netqty"), [("BUY", "10"), ("SELL", "-10")])
def test_market_orders_fill_at_the_ltp_long_and_short(desk, side, netqty):
    desk.move(SBIN, 80_125)
    order = desk.place(SBIN, transactiontype=side, quantity="10")
    assert order.status == "complete" and desk.row(order.orderid)["averageprice"] == 801.25
    assert desk.engine.positions(desk.client)[0]["netqty"] == netqty


@pytest.mark.parametrize(("side", "limit"), [("BUY", "805"), ("SELL", "795")])
def test_a_marketable_limit_fills_at_the_ltp(desk, side, limit):
    order = desk.place(SBIN, transactiontype=side, ordertype="LIMIT", price=limit, quantity="4")
    assert order.status == "complete" and desk.engine.trade_book(desk.client)[0]["fillprice"] == "800.00"


@pytest.mark.parametrize(("side", "limit", "path", "fills_at"), [
    ("BUY", "790", [79_500, 79_000], "790.00"),
    ("BUY", "790", [79_500, 78_000], "790.00"),  # gaps through: the resting limit fills at its own price
    ("SELL", "810", [80_500, 81_500], "810.00"),
])
def test_a_resting_limit_fills_at_its_price_once_crossed(desk, side, limit, path, fills_at):
    order = desk.place(SBIN, transactiontype=side, ordertype="LIMIT", price=limit, quantity="2")
    assert order.status == "open"
    desk.move(SBIN, path[0])
    assert desk.row(order.orderid)["status"] == "open"
    desk.move(SBIN, path[1])
    assert desk.row(order.orderid)["status"] == "complete"
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == fills_at


@pytest.mark.parametrize(("side", "trigger", "path", "fills_at"), [
    ("BUY", "810", [80_500, 81_200], "812.00"),
    ("SELL", "790", [79_500, 78_000], "780.00"),  # a gap fills the stop-market at the gapped price
])
def test_stop_market_orders_trigger_then_fill_at_the_ltp(desk, side, trigger, path, fills_at):
    order = desk.place(SBIN, variety="STOPLOSS", transactiontype=side, ordertype="STOPLOSS_MARKET", triggerprice=trigger)
    assert order.status == "trigger pending"
    desk.move(SBIN, path[0])
    assert desk.row(order.orderid)["status"] == "trigger pending"
    desk.move(SBIN, path[1])
    assert desk.statuses(order.orderid) == ["open pending", "trigger pending", "open", "complete"]
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == fills_at


def test_stop_limit_sell_fills_at_the_ltp_when_triggered_within_its_limit(desk):
    order = desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_LIMIT",
                       triggerprice="790", price="788")
    desk.move(SBIN, 78_900)
    assert desk.row(order.orderid)["status"] == "complete"
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == "789.00"


def test_stop_limit_gapped_through_rests_at_its_limit(desk):
    order = desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_LIMIT",
                       triggerprice="790", price="788")
    desk.move(SBIN, 78_000)
    assert desk.row(order.orderid)["status"] == "open"
    desk.move(SBIN, 78_500)
    assert desk.row(order.orderid)["status"] == "open"
    desk.move(SBIN, 79_000)
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == "788.00"


def test_stop_limit_buy_on_a_future(desk):
    order = desk.place(NIFTY_FUT, variety="STOPLOSS", ordertype="STOPLOSS_LIMIT", triggerprice="24150",
                       price="24160", quantity="150")
    desk.move(NIFTY_FUT, 2_415_500)
    assert desk.row(order.orderid)["status"] == "complete"
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == "24155.00"


def test_a_stop_already_crossed_on_arrival_triggers_at_once(desk):
    order = desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_MARKET", triggerprice="810")
    assert order.status == "complete" and desk.engine.trade_book(desk.client)[0]["fillprice"] == "800.00"


def test_ioc_not_fillable_is_cancelled_and_fillable_completes(desk):
    missed = desk.place(SBIN, ordertype="LIMIT", price="790", duration="IOC", quantity="6")
    assert missed.status == "cancelled" and desk.row(missed.orderid)["cancelsize"] == "6"
    assert desk.statuses(missed.orderid) == ["open pending", "open", "cancelled"]
    hit = desk.place(SBIN, ordertype="LIMIT", price="800", duration="IOC", quantity="6")
    assert hit.status == "complete"


def test_an_ioc_stop_is_judged_when_it_triggers(desk):
    order = desk.place(SBIN, variety="STOPLOSS", ordertype="STOPLOSS_LIMIT", triggerprice="810", price="811",
                       duration="IOC")
    assert order.status == "trigger pending"
    desk.move(SBIN, 81_500)  # triggers, but 815 is above the 811 limit: nothing fills, IOC cancels
    assert desk.row(order.orderid)["status"] == "cancelled"


def test_orders_on_other_instruments_ignore_the_quote(desk):
    order = desk.place(SBIN, ordertype="LIMIT", price="790")
    desk.move(NIFTY_FUT, 1_000_000)
    assert desk.row(order.orderid)["status"] == "open"


# Modify and cancel --------------------------------------------------------------------------------------
def modify_params(order, **overrides: Any) -> dict[str, Any]:
    params = {"variety": order.variety, "orderid": order.orderid, "ordertype": order.ordertype,
              "producttype": order.producttype, "duration": order.duration, "price": str(order.price / 100),
              "quantity": str(order.quantity), "tradingsymbol": order.tradingsymbol,
              "symboltoken": order.symboltoken, "exchange": order.exchange}
    params.update(overrides)
    return params


def test_modify_a_resting_limit_into_the_market_fills_at_the_ltp(desk):
    order = desk.place(SBIN, ordertype="LIMIT", price="790", quantity="5")
    modified = desk.engine.modify(desk.client, modify_params(order, price="801.50", quantity="6"))
    assert modified.status == "complete" and modified.quantity == 6
    assert desk.statuses(order.orderid) == ["open pending", "open", "modified", "open", "complete"]
    assert desk.engine.trade_book(desk.client)[0]["fillprice"] == "800.00"


def test_modify_a_stop_moves_its_trigger(desk):
    order = desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_MARKET", triggerprice="790")
    modified = desk.engine.modify(desk.client, modify_params(order, triggerprice="795", price="0"))
    assert modified.status == "trigger pending" and modified.triggerprice == 79_500
    desk.move(SBIN, 79_400)
    assert desk.row(order.orderid)["status"] == "complete"


def test_modify_a_waiting_stop_limits_quantity_and_trigger(desk):
    order = desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_LIMIT",
                       triggerprice="790", price="788", quantity="4")
    modified = desk.engine.modify(desk.client, modify_params(order, triggerprice="795", price="793", quantity="6"))
    assert (modified.status, modified.quantity, modified.triggerprice, modified.price) == \
           ("trigger pending", 6, 79_500, 79_300)
    assert desk.statuses(order.orderid)[-2:] == ["modified", "trigger pending"]
    desk.move(SBIN, 79_600)
    assert desk.row(order.orderid)["status"] == "trigger pending"
    desk.move(SBIN, 79_400)
    row = desk.row(order.orderid)
    assert (row["status"], row["filledshares"], row["averageprice"]) == ("complete", "6", 794.0)


def test_modify_refusals_leave_the_order_as_it_was(desk_factory):
    desk = desk_factory(cash_rupees=10_000)
    order = desk.place(SBIN, ordertype="LIMIT", price="790", quantity="5")
    refusals = [
        (modify_params(order, orderid="241120999999999"), "AB1013", "Order not found"),
        (modify_params(order, variety="ROBO"), "AB2002", "ROBO order is block"),
        (modify_params(order, variety="NONE"), "AB1008", "Invalid Order Variety"),
        (modify_params(order, producttype="DELIVERY"), "AB1012", "Invalid Product Type"),
        (modify_params(order, price="790.01"),
         "AB2000", "Your order has been rejected as the price 790.01 is not a multiple of the tick size 0.05."),
        (modify_params(order, quantity="100"), "AB2000",
         "Your order has been rejected due to Insufficient Funds. Available funds - Rs. 10000.00 . "
         "You require Rs. 15800.00 funds to execute this order."),
    ]
    for params, errorcode, message in refusals:
        with pytest.raises(OrderError) as refused:
            desk.engine.modify(desk.client, params)
        assert (refused.value.errorcode, refused.value.message) == (errorcode, message)
    with pytest.raises(OrderError, match="AB1013"):
        desk.engine.modify("P0002", modify_params(order))
    assert desk.statuses(order.orderid) == ["open pending", "open"]
    assert desk.rms()["utiliseddebits"] == "790.0000"


def test_only_working_orders_can_be_modified_or_cancelled(desk):
    done = desk.place(SBIN)
    with pytest.raises(OrderError) as refused:
        desk.engine.modify(desk.client, modify_params(done))
    assert refused.value.message == f"Order {done.orderid} is complete and can no longer be modified"
    with pytest.raises(OrderError) as refused:
        desk.engine.cancel(desk.client, done.orderid, "NORMAL")
    assert refused.value.message == f"Order {done.orderid} is complete and can no longer be cancelled"
    with pytest.raises(OrderError) as refused:
        desk.engine.cancel(desk.client, "241120000000999", "NORMAL")
    assert (refused.value.errorcode, refused.value.message) == ("AB1013", "Order not found")


def test_modify_cannot_go_below_the_filled_quantity(desk_factory):
    desk = desk_factory()
    desk.engine.faults.arm("partial", fraction=0.6)
    order = desk.place(SBIN, ordertype="LIMIT", price="800", quantity="10")
    with pytest.raises(OrderError) as refused:
        desk.engine.modify(desk.client, modify_params(order, quantity="5"))
    assert refused.value.message == "Invalid Quantity: 5 is less than the 6 already filled"
    desk.engine.modify(desk.client, modify_params(order, quantity="6"))
    assert desk.row(order.orderid)["status"] == "complete"


def test_cancel_a_resting_order_and_a_bad_variety(desk):
    order = desk.place(SBIN, ordertype="LIMIT", price="790", quantity="5")
    with pytest.raises(OrderError, match="AB1008"):
        desk.engine.cancel(desk.client, order.orderid, "FOO")
    cancelled = desk.engine.cancel(desk.client, order.orderid, "NORMAL")
    assert cancelled.status == "cancelled" and desk.row(order.orderid)["cancelsize"] == "5"
    desk.move(SBIN, 78_000)
    assert desk.engine.trade_book(desk.client) == [] and desk.rms()["utiliseddebits"] == "0.0000"


# Export / restore ----------------------------------------------------------------------------------------
def busy_day(desk: Desk) -> None:
    desk.place(SBIN, quantity="10")
    desk.place(SBIN, transactiontype="SELL", ordertype="LIMIT", price="805", quantity="4")
    desk.move(SBIN, 80_600)
    desk.place(NIFTY_CE, quantity="150")
    desk.place(NIFTY_FUT, transactiontype="SELL", quantity="75")
    desk.place(SBIN, producttype="DELIVERY", quantity="3", ordertag="tg9E1")
    desk.place(SBIN, variety="STOPLOSS", transactiontype="SELL", ordertype="STOPLOSS_MARKET", triggerprice="780",
               quantity="6")
    desk.place(NIFTY_CE, quantity="80")
    desk.engine.faults.arm("partial", fraction=0.5)
    desk.place(NIFTY_FUT, quantity="150")
    desk.move(NIFTY_CE, 12_500)


def test_export_restore_round_trip_is_identical(desk_factory):
    desk = desk_factory()
    busy_day(desk)
    state = desk.engine.export()
    again = desk_factory()
    again.engine.restore(state)
    again.prices.quotes = desk.prices.quotes
    for book in ("order_book", "trade_book", "positions", "holdings", "rms"):
        assert getattr(again.engine, book)(desk.client) == getattr(desk.engine, book)(desk.client), book
    assert again.engine.export() == state
    next_order = again.place(SBIN)
    assert next_order.orderid == "241120000000009"
    assert again.engine.trade_book(desk.client)[-1]["fillid"] == "50000007"


def test_restore_from_stored_rows_as_the_store_keeps_them(desk_factory):
    desk = desk_factory()
    stored_orders: dict[str, tuple[str, dict]] = {}
    stored_trades: list[tuple[str, dict]] = []

    def store(event: OrderEvent) -> None:
        stored_orders[event.row["orderid"]] = (event.clientcode, event.row)
        if event.fill is not None:
            stored_trades.append((event.clientcode, event.fill))

    desk.engine.add_listener(store)
    busy_day(desk)
    again = desk_factory()
    again.prices.quotes = desk.prices.quotes
    again.engine.restore_rows(list(stored_orders.values()), stored_trades)
    assert again.engine.export() == desk.engine.export()
    resting = next(r for r in again.engine.order_book(desk.client) if r["status"] == "trigger pending")
    again.move(SBIN, 77_000)
    assert again.row(resting["orderid"])["status"] == "complete"


def test_order_ids_are_digits_only(desk):
    assert re.fullmatch(r"\d{15}", desk.place(SBIN).orderid)


def test_a_failing_listener_does_not_stop_the_engine(desk):
    def explode(event: OrderEvent) -> None:
        raise RuntimeError("store is down")

    desk.engine.add_listener(explode)
    order = desk.place(SBIN, ordertype="LIMIT", price="790")
    desk.move(SBIN, 78_500)
    assert desk.row(order.orderid)["status"] == "complete" and desk.statuses(order.orderid)[-1] == "complete"
    assert str(desk.engine.listener_error) == "store is down"


def test_export_keeps_a_resting_limit_held_by_a_fault(desk_factory):
    desk = desk_factory()
    desk.engine.faults.arm("open")
    order = desk.place(SBIN, ordertype="LIMIT", price="805")
    desk.engine.faults.arm("partial", fraction=0.5)
    waiting = desk.place(SBIN, ordertype="LIMIT", price="790", quantity="4")
    again = desk_factory()
    again.engine.restore(desk.engine.export())
    again.move(SBIN, 78_000)
    assert again.row(order.orderid)["status"] == "open"
    assert again.row(waiting.orderid)["filledshares"] == "2"
