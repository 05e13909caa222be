"""The margin batch route (`getMarginApi`): the official SDK, unchanged, against the paper exchange.

The paper rule is the one its RMS blocks margin by (paper/positions.py): a future 15 % of price ×
quantity, a long option its premium, a short option 15 % of strike × quantity, a cash equity 20 %
(INTRADAY) or 100 % of its value.
"""
from __future__ import annotations

import pytest

from tests.paper.test_sdk_rest import set_price


def nifty_future(paper):
    futures = [i for i in paper.exchange.universe.instruments if i.name == "NIFTY" and i.instrumenttype == "FUTIDX"]
    return min(futures, key=lambda i: i.expiry)


def leg(instrument, qty, price=0, trade="BUY", product="CARRYFORWARD") -> dict:
    return {"exchange": instrument.exchange, "qty": qty, "price": price, "productType": product,
            "token": instrument.token, "tradeType": trade}


def test_one_lot_of_a_future_needs_its_share_of_the_contract_value(sdk):
    future = nifty_future(sdk.paper)
    reply = sdk.getMarginApi({"positions": [leg(future, 75, price=24000)]})
    assert reply["status"] is True and reply["message"] == "SUCCESS", reply
    assert reply["data"]["totalMarginRequired"] == 270000.0  # 15 % of 24000 × 75
    assert reply["data"]["marginComponents"]["spanMargin"] == 270000.0


def test_price_zero_is_a_market_order_at_the_last_price(sdk):
    future = nifty_future(sdk.paper)
    set_price(sdk, 24100, token=future.token, exchange="NFO")
    reply = sdk.getMarginApi({"positions": [leg(future, 150)]})
    assert reply["data"]["totalMarginRequired"] == pytest.approx(0.15 * 24100 * 150)


def test_a_batch_adds_its_legs_and_sells_are_charged_too(sdk):
    future = nifty_future(sdk.paper)
    sbin = sdk.paper.exchange.universe.by_token("NSE", "3045")
    reply = sdk.getMarginApi({"positions": [
        leg(future, 75, price=24000, trade="SELL"),
        leg(sbin, "10", price="800", product="INTRADAY"),  # string numbers, as some clients send them
    ]})
    assert reply["data"]["totalMarginRequired"] == 270000.0 + 1600.0
    assert reply["data"]["marginComponents"]["nonNFOMargin"] == 1600.0


@pytest.mark.parametrize("position, code, text", [
    ({"token": "999999"}, "AB1009", "Symbol Not Found"),
    ({"qty": 10}, "AB2000", "not a multiple of the lot size 75"),
    ({"qty": 0}, "AB2000", "qty must be a whole number of units above 0"),
    ({"tradeType": "HOLD"}, "AB2000", "tradeType must be BUY or SELL"),
    ({"productType": "CNC"}, "AB1012", "Invalid Product Type"),
    ({"price": -1}, "AB2000", "price must be a number of rupees, 0 or more"),
])
def test_a_bad_position_is_refused_with_a_reason(sdk, position, code, text):
    body = {**leg(nifty_future(sdk.paper), 75, price=24000), **position}
    reply = sdk.getMarginApi({"positions": [body]})
    assert reply["status"] is False and reply["errorcode"] == code and text in reply["message"], reply


def test_no_positions_is_refused(sdk):
    for body in ({}, {"positions": []}, {"positions": "NIFTY"}):
        reply = sdk.getMarginApi(body)
        assert reply["status"] is False and "positions" in reply["message"]
