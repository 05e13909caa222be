"""The README's option examples are real: its named contract is one the paper exchange lists, and its
alert with an `option` block is accepted by the parser and resolves in the paper universe."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from paper.instruments import build_universe
from service.alerts.instruments import resolve_instrument
from service.alerts.parse import parse_alert
from service.alerts.prices import off_by
from service.symbols import IST, SymbolResolver, parse_master

README = Path(__file__).resolve().parents[2] / "README.md"
CONTRACT = re.compile(r"`((?:[A-Z]+)(\d{2}[A-Z]{3}\d{2})(\d+)(CE|PE))`")


def options_section() -> str:
    text = README.read_text()
    start = text.index("\n## Options\n")
    return text[start:text.index("\n## ", start + 1)]


def named_contract() -> tuple[str, date, int, str]:
    """The README's contract example: (symbol, expiry, strike in rupees, right)."""
    found = CONTRACT.search(options_section())
    assert found, "the Options section names no contract"
    symbol, expiry, strike, right = found.groups()
    return symbol, datetime.strptime(expiry, "%d%b%y").date(), int(strike), right


def example_alert() -> dict:
    block = re.search(r"```json\n(.*?)```", options_section(), re.S)
    assert block, "the Options section has no alert example"
    return json.loads(block.group(1))


class Book:
    """The symbol book's resolution, on a resolver of one day's paper master."""

    def __init__(self, day: date) -> None:
        universe = build_universe(day)
        self.universe = universe
        index = parse_master(universe.master_json(), day, "paper", built_at=datetime.combine(day, time(8), IST))
        moment = datetime.combine(day, time(10), IST)
        self.resolver = SymbolResolver(index, now=lambda: moment)

    async def equity(self, ticker: str, search: bool = True):
        return self.resolver.equity(ticker)

    async def contract(self, tradingsymbol: str):
        return self.resolver.contract(tradingsymbol)

    async def option(self, underlying: str, **choice):
        return self.resolver.option(underlying, **choice)


def listed_day() -> date:
    """A weekday a week before the example contract's expiry: a day the paper exchange lists it."""
    _, expiry, _, _ = named_contract()
    return expiry - timedelta(days=7)


async def test_the_named_contract_is_listed_by_the_paper_exchange():
    symbol, expiry, strike, right = named_contract()
    book = Book(listed_day())
    contract = await book.contract(symbol)
    assert (contract.tradingsymbol, contract.expiry, contract.strike, contract.option_type) == \
        (symbol, expiry, strike * 100, right)
    alert = parse_alert({"symbolname": symbol, "signal": "buy", "price": strike, "type": "option", "strategyname": "s"})
    traded, underlying = await resolve_instrument(alert, book)
    assert traded == contract and underlying.name == contract.name


async def test_the_option_block_example_parses_resolves_and_passes_the_price_check():
    body = example_alert()
    alert = parse_alert(body)
    assert alert.option is not None and set(body["option"]) == {"expiry", "strike", "right"}
    assert alert.product == body["product"]
    book = Book(listed_day())
    contract, underlying = await resolve_instrument(alert, book)
    assert contract.option_type == body["option"]["right"] and contract.name == underlying.name == body["symbolname"]
    live = book.universe.reference_price(underlying.exchange, underlying.token)
    assert not off_by(alert.price, live, Decimal(5)), "the example's price is far from the paper market's"


def test_the_documented_product_default_is_the_parsers():
    alert = parse_alert({"symbolname": "NIFTY", "signal": "buy", "price": 25600, "type": "option", "strategyname": "s"})
    assert alert.product == "INTRADAY" and "`INTRADAY` (the default)" in options_section()
    with pytest.raises(Exception, match="options trade INTRADAY or CARRYFORWARD"):
        parse_alert({"symbolname": "NIFTY", "signal": "buy", "price": 25600, "type": "option", "strategyname": "s",
                     "product": "DELIVERY"})
