"""`judge`: which INTRADAY trades the broker squared off, and at what price, from its books alone."""
from __future__ import annotations

from service.afterhours import Verdict, judge
from service.broker.types import BrokerOrder, Fill, OrderKind, OrderSide, OrderStatus, Position
from service.trades import TradeRecord


def trade(id: int, side: str = "LONG", quantity: int = 5, token: str = "3045", symbol: str = "SBIN-EQ") -> TradeRecord:
    return TradeRecord(id=id, alert_id=None, account="A1", strategy="s1", exchange="NSE", token=token, tradingsymbol=symbol,
                 side=side, product="INTRADAY", state="OPEN", filled=quantity, entry_price=80_000,
                 entry_value=80_000 * quantity)


def position(net: int, token: str = "3045", product: str = "INTRADAY") -> Position:
    return Position(exchange="NSE", token=token, tradingsymbol="SBIN-EQ", product=product, net_quantity=net,
                    buy_quantity=0, sell_quantity=0, buy_average=0, sell_average=0, ltp=0, realised=0, unrealised=0)


def fill(order_id: str, side: str, quantity: int, price: int, symbol: str = "SBIN-EQ") -> Fill:
    return Fill(order_id=order_id, fill_id=f"f{order_id}", exchange="NSE", tradingsymbol=symbol,
                side=OrderSide(side), quantity=quantity, price=price)


def order(order_id: str, tag: str = "", product: str = "INTRADAY") -> BrokerOrder:
    return BrokerOrder(order_id=order_id, unique_order_id=order_id, tag=tag, exchange="NSE", token="3045",
                       tradingsymbol="SBIN-EQ", side=OrderSide.SELL, kind=OrderKind.MARKET, product=product,
                       variety="NORMAL", quantity=0, filled=0, cancelled=0, average_price=0, price=0, trigger_price=0,
                       status=OrderStatus.COMPLETE)


def test_a_position_squared_off_is_priced_at_the_brokers_fills_not_ours_nor_another_products():
    fills = [fill("1", "BUY", 5, 80_000), fill("2", "SELL", 2, 79_000), fill("3", "SELL", 3, 79_500),
             fill("4", "SELL", 5, 70_000), fill("5", "SELL", 9, 60_000), fill("6", "SELL", 1, 1, symbol="INFY-EQ")]
    orders = [order("1", "tgaE1"), order("2"), order("4", "tgbX1"), order("5", product="DELIVERY")]
    assert judge([trade(1)], [position(0)], fills, orders) == [Verdict(1, gone=True, price=79_300)]


def test_without_a_fill_a_gone_position_has_no_price():
    assert judge([trade(1)], [], [], []) == [Verdict(1, gone=True, price=None)]


def test_trades_share_a_position_oldest_first():
    trades = [trade(3, quantity=4), trade(1, quantity=5), trade(2, quantity=5)]
    assert judge(trades, [position(7)], [], []) == [Verdict(1, gone=False), Verdict(2, gone=False),
                                                     Verdict(3, gone=True)]


def test_a_short_is_held_by_a_negative_net_and_priced_at_buys():
    shorts = [trade(1, side="SHORT"), trade(2, side="SHORT", token="1594", symbol="INFY-EQ")]
    got = judge(shorts, [position(-5), position(5, token="1594")], [fill("9", "BUY", 5, 151_000, "INFY-EQ")], [])
    assert got == [Verdict(1, gone=False), Verdict(2, gone=True, price=151_000)]


def test_another_products_position_is_not_this_trades():
    assert judge([trade(1)], [position(5, product="DELIVERY")], [], []) == [Verdict(1, gone=True, price=None)]
