"""The control API names instruments by symbol as well as by token: prices set and read back."""
from __future__ import annotations


def test_a_price_is_set_by_symbol_and_read_back(paper):
    reply = paper.control("POST", "/ticks", json={"symbol": "SBIN", "ltp": 750})
    assert reply.status_code == 200, reply.text
    read = paper.control("GET", "/prices", params={"symbol": "SBIN"})
    assert read.status_code == 200, read.text
    assert read.json() == {"exchange": "NSE", "token": "3045", "tradingsymbol": "SBIN-EQ", "ltp": 750.0}
    assert paper.control("GET", "/prices", params={"token": "3045", "exchange": "NSE"}).json() == read.json()
    assert paper.control("GET", "/prices", params={"symbol": "sbin-eq"}).json() == read.json()


def test_an_index_is_named_by_its_trading_symbol(paper):
    paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "99926000", "ltp": 24000})
    listed = paper.control("GET", "/prices", params={"token": "99926000", "exchange": "NSE"}).json()
    again = paper.control("GET", "/prices", params={"symbol": listed["tradingsymbol"], "exchange": "NSE"}).json()
    assert again == listed and again["ltp"] == 24000.0


def test_unknown_and_missing_instruments_are_named(paper):
    unknown = paper.control("GET", "/prices", params={"symbol": "NOSUCH"})
    assert unknown.status_code == 404
    assert unknown.json() == {"errors": [{"field": "symbol", "reason": "no instrument NOSUCH on NSE"}]}
    neither = paper.control("GET", "/prices")
    assert neither.status_code == 422 and neither.json()["errors"][0]["field"] == "token"
    refused = paper.control("POST", "/ticks", json={"ticks": [{"symbol": "SBIN", "ltp": 1}, {"symbol": "NOSUCH", "ltp": 1}]})
    assert refused.status_code == 404 and refused.json()["errors"][0]["field"] == "ticks[1].symbol"
    assert paper.control("GET", "/prices", params={"symbol": "SBIN"}).json()["ltp"] != 0.01  # all or nothing
