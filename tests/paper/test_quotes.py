from __future__ import annotations

from paper.quotes import market_depth, quote_or_none
from tests.paper.test_orders import NIFTY, SBIN, FakePrices


def test_a_source_without_a_market_for_the_instrument_gives_no_quote():
    prices = FakePrices()
    quote = prices.set(SBIN, 80_000)
    assert quote_or_none(prices, "NSE", "3045") is quote
    assert quote_or_none(prices, NIFTY.exchange, NIFTY.token) is None


def test_the_book_is_a_function_of_the_price_level_and_an_index_has_none():
    book = market_depth(80_000, 5, 1, salt=12345, is_index=False)
    assert market_depth(80_000, 5, 1, salt=12345, is_index=False) == book
    assert market_depth(80_005, 5, 1, salt=12345, is_index=False) != book
    bids, asks, total_buy, total_sell = book
    assert [price for _, price, _ in bids] == [79_995, 79_990, 79_985, 79_980, 79_975]
    assert [price for _, price, _ in asks] == [80_005, 80_010, 80_015, 80_020, 80_025]
    assert total_buy >= sum(q for q, _, _ in bids) and total_sell >= sum(q for q, _, _ in asks)
    assert market_depth(2_400_000, 5, 1, salt=7, is_index=True)[:2] == ((), ())


def test_no_bid_is_shown_at_or_below_zero():
    bids, asks, _, _ = market_depth(10, 5, 1, salt=3, is_index=False)
    assert [price for _, price, _ in bids] == [5] and len(asks) == 5
