from __future__ import annotations

from paper.ledger import Ledger
from paper.positions import Fill
from paper.rows import Order
from tests.paper.test_orders import NIFTY_FUT, SBIN, UNIVERSE, FakePrices

OPENING = {"P0001": 1_000_000_00, "P0002": 50_000_00}


def ledger_with(prices: FakePrices) -> Ledger:
    return Ledger(UNIVERSE, prices, OPENING.__getitem__)


def sbin_fill(client: str, side: str, price: int, quantity: int, fillid: str = "50000001") -> Fill:
    return Fill(client, "1", fillid, "NSE", "3045", "SBIN-EQ", "INTRADAY", side, price, quantity, "10:00:00")


def pending(side: str, ordertype: str, quantity: int, price: int = 0, triggerprice: int = 0) -> Order:
    return Order("241120000000009", "u-9", "P0001", "NORMAL", "NSE", "3045", "SBIN-EQ", side, ordertype,
                 "INTRADAY", "DAY", price, triggerprice, quantity)


def test_books_are_kept_per_client_and_marked_at_the_quote():
    prices = FakePrices()
    prices.set(SBIN, 81_000, close=79_000)
    ledger = ledger_with(prices)
    ledger.book(sbin_fill("P0001", "BUY", 80_000, 10))
    ledger.book(sbin_fill("P0002", "SELL", 80_500, 3, fillid="50000002"))
    assert [row["fillid"] for row in ledger.trade_book("P0001")] == ["50000001"]
    [row] = ledger.positions("P0001")
    assert (row["netqty"], row["ltp"], row["close"], row["pnl"]) == ("10", "810.00", "790.00", "100.00")
    assert [f.fillid for f in ledger.fills] == ["50000001", "50000002"]


def test_without_a_market_a_position_is_marked_at_its_last_fill():
    ledger = ledger_with(FakePrices())  # no quote for anything
    ledger.book(sbin_fill("P0001", "BUY", 80_000, 10))
    ledger.book(sbin_fill("P0001", "BUY", 80_200, 10, fillid="50000002"))
    [row] = ledger.positions("P0001")
    assert (row["ltp"], row["close"], row["pnl"]) == ("802.00", "0.00", "20.00")


def test_funds_count_positions_and_the_opening_part_of_pending_orders():
    prices = FakePrices()
    prices.set(SBIN, 80_000)
    ledger = ledger_with(prices)
    ledger.book(sbin_fill("P0001", "BUY", 80_000, 10))
    held = ledger.funds("P0001", [])
    assert held.utilised["exposure"] == 10 * 80_000 // 5 and held.net == OPENING["P0001"] - 10 * 80_000 // 5
    # a sell of 15 first closes the 10 held: only 5 open a short, charged at the limit price
    with_sell = ledger.funds("P0001", [pending("SELL", "LIMIT", 15, price=81_000)])
    assert with_sell.utilised["exposure"] == 10 * 80_000 // 5 + 5 * 81_000 // 5
    # a stop-market buy blocks at its trigger; a market buy at the ltp
    assert ledger.funds("P0001", [pending("BUY", "STOPLOSS_MARKET", 5, triggerprice=82_000)]).utiliseddebits \
        == 10 * 80_000 // 5 + 5 * 82_000 // 5
    assert ledger.funds("P0001", [pending("BUY", "MARKET", 5)]).utiliseddebits == 15 * 80_000 // 5
    assert ledger.funds("P0002", []).net == OPENING["P0002"]


def test_holdings_are_delivery_longs_only_and_clear_empties_the_books():
    prices = FakePrices()
    prices.set(SBIN, 80_000)
    prices.set(NIFTY_FUT, 2_410_000)
    ledger = ledger_with(prices)
    ledger.book(Fill("P0001", "2", "50000001", "NSE", "3045", "SBIN-EQ", "DELIVERY", "BUY", 80_000, 3, "10:00:00"))
    ledger.book(Fill("P0001", "3", "50000002", "NFO", "35000", "NIFTY28NOV24FUT", "CARRYFORWARD", "BUY",
                     2_410_000, 75, "10:00:01"))
    assert [h["tradingsymbol"] for h in ledger.holdings("P0001")] == ["SBIN-EQ"]
    ledger.clear()
    assert (ledger.fills, ledger.trade_book("P0001"), ledger.positions("P0001")) == ((), [], [])
    assert ledger.funds("P0001", []).utiliseddebits == 0
