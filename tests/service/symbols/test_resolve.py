from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.symbols import (
    ExpiryError,
    NoContracts,
    StrikeError,
    SymbolError,
    SymbolResolver,
    UnknownSymbol,
)

from .conftest import DAY, FREEZE, ist

RUPEE = 100


# Tickers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ticker, exchange, tradingsymbol, token", [
    ("NSE:SBIN", "NSE", "SBIN-EQ", "3045"),
    ("SBIN", "NSE", "SBIN-EQ", "3045"),
    ("SBIN-EQ", "NSE", "SBIN-EQ", "3045"),
    (" nse:sbin ", "NSE", "SBIN-EQ", "3045"),
    ("BSE:SBIN", "BSE", "SBIN", "500112"),
    ("BSE:SBIN-EQ", "BSE", "SBIN", "500112"),
    ("M_M", "NSE", "M&M-EQ", "2031"),
    ("NSE:M_M", "NSE", "M&M-EQ", "2031"),
    ("M&M", "NSE", "M&M-EQ", "2031"),
    ("BAJAJ_AUTO", "NSE", "BAJAJ-AUTO-EQ", "16669"),
    ("NIFTY", "NSE", "Nifty 50", "99926000"),
    ("nifty", "NSE", "Nifty 50", "99926000"),
    ("NIFTY 50", "NSE", "Nifty 50", "99926000"),
    ("NSE:NIFTY_50", "NSE", "Nifty 50", "99926000"),
    ("BANKNIFTY", "NSE", "Nifty Bank", "99926009"),
    ("Nifty Bank", "NSE", "Nifty Bank", "99926009"),
    ("NSE:CNXFINANCE", "NSE", "Nifty Fin Service", "99926037"),
    ("SENSEX", "BSE", "SENSEX", "99919000"),
    ("BSE:SENSEX", "BSE", "SENSEX", "99919000"),
])
def test_tradingview_and_chartink_tickers(resolver, ticker, exchange, tradingsymbol, token):
    symbol = resolver.equity(ticker)
    assert (symbol.exchange, symbol.tradingsymbol, symbol.token) == (exchange, tradingsymbol, token)
    assert symbol.lotsize == 1 and symbol.freeze_qty is None


def test_equity_carries_the_master_tick_size(resolver):
    sbin = resolver.equity("SBIN")
    assert sbin.tick_size == 5 and sbin.instrumenttype == "" and sbin.name == "SBIN"
    assert resolver.equity("NIFTY").is_index


@pytest.mark.parametrize("ticker, tradingsymbol", [
    ("NIFTY1!", "NIFTY25NOV25FUT"),
    ("NSE:NIFTY1!", "NIFTY25NOV25FUT"),
    ("NIFTY2!", "NIFTY30DEC25FUT"),
    ("BANKNIFTY1!", "BANKNIFTY25NOV25FUT"),
    ("RELIANCE1!", "RELIANCE25NOV25FUT"),
    ("BSE:SENSEX1!", "SENSEX27NOV25FUT"),
])
def test_continuous_futures_are_the_nearest_listed(resolver, ticker, tradingsymbol):
    future = resolver.equity(ticker)
    assert future.tradingsymbol == tradingsymbol and future.is_future
    assert future.exchange in ("NFO", "BFO")


def test_continuous_future_rolls_after_the_expiry_day_close(resolver_at):
    assert resolver_at(15, 29).equity("NIFTY1!").tradingsymbol == "NIFTY25NOV25FUT"
    assert resolver_at(15, 30).equity("NIFTY1!").tradingsymbol == "NIFTY30DEC25FUT"
    assert resolver_at(15, 30).equity("NIFTY2!").tradingsymbol == "NIFTY27JAN26FUT"


def test_futures_carry_lot_size_and_freeze_quantity(resolver):
    future = resolver.equity("NIFTY1!")
    assert (future.lotsize, future.tick_size, future.freeze_qty) == (75, 5, FREEZE["NIFTY"])
    assert resolver.equity("RELIANCE1!").freeze_qty is None  # not in the table: no limit known


@pytest.mark.parametrize("ticker", ["NOSUCH", "BSE:TRENT", "NSE:", "", "XYZ:SBIN", "1!:SBIN", "NIFTY4!"])
def test_unknown_tickers_are_typed_errors_with_query_and_reason(resolver, ticker):
    with pytest.raises(SymbolError) as caught:
        resolver.equity(ticker)
    assert isinstance(caught.value, (UnknownSymbol, NoContracts))
    assert caught.value.query == ticker
    assert caught.value.reason


# Contracts --------------------------------------------------------------------------------------
def test_contracts_by_full_symbol(resolver, universe):
    listed = universe.by_symbol("NFO", "NIFTY25NOV2525000CE")
    assert listed is not None
    for text in ("NIFTY25NOV2525000CE", "nifty25nov2525000ce", "NFO:NIFTY25NOV2525000CE", "NSE:NIFTY25NOV2525000CE"):
        contract = resolver.contract(text)
        assert (contract.exchange, contract.token) == ("NFO", listed.token)
        assert (contract.strike, contract.option_type, contract.expiry) == (2_500_000, "CE", DAY)
        assert (contract.lotsize, contract.freeze_qty) == (75, 1800)
    assert resolver.lookup("SENSEX27NOV2582000PE").exchange == "BFO"
    assert resolver.lookup("NSE:SBIN").tradingsymbol == "SBIN-EQ"


def test_unknown_and_expired_contracts(resolver_at):
    with pytest.raises(UnknownSymbol) as caught:
        resolver_at().contract("NIFTY25NOV2525010CE")
    assert caught.value.query == "NIFTY25NOV2525010CE"
    with pytest.raises(UnknownSymbol):
        resolver_at().contract("SBIN-EQ")  # a cash symbol is not a contract
    with pytest.raises(ExpiryError) as expired:
        resolver_at(15, 30).contract("NIFTY25NOV2525000CE")
    assert expired.value.expiry == "25NOV2025"


# Strikes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("price, right, choice, tradingsymbol", [
    # NIFTY lists 23000..28200 in steps of 50
    (25_010, "CE", "ATM", "NIFTY25NOV2525000CE"),
    (25_010, "PE", "ATM", "NIFTY25NOV2525000PE"),
    (25_040, "CE", "ATM", "NIFTY25NOV2525050CE"),
    (25_010, "CE", "ITM1", "NIFTY25NOV2524950CE"),
    (25_010, "CE", "ITM3", "NIFTY25NOV2524850CE"),
    (25_010, "CE", "OTM1", "NIFTY25NOV2525050CE"),
    (25_010, "CE", "OTM2", "NIFTY25NOV2525100CE"),
    (25_010, "PE", "ITM1", "NIFTY25NOV2525050PE"),
    (25_010, "PE", "ITM2", "NIFTY25NOV2525100PE"),
    (25_010, "PE", "OTM1", "NIFTY25NOV2524950PE"),
    (25_010, "pe", "otm4", "NIFTY25NOV2524800PE"),
    (25_010, "CE", 24_500, "NIFTY25NOV2524500CE"),
    (25_010, "CE", "24500", "NIFTY25NOV2524500CE"),
    (25_010, "PE", 24_500.0, "NIFTY25NOV2524500PE"),
    (25_010, "PE", Decimal("25100"), "NIFTY25NOV2525100PE"),
    (10_000, "CE", "ATM", "NIFTY25NOV2523000CE"),  # below the listed range: its lowest strike
    (99_000, "PE", "ATM", "NIFTY25NOV2528200PE"),  # above it: its highest
])
def test_strike_selection(resolver, price, right, choice, tradingsymbol):
    option = resolver.option("NIFTY", price=price * RUPEE, right=right, strike=choice)
    assert option.tradingsymbol == tradingsymbol
    assert option.expiry == DAY and option.option_type == right.upper()


@pytest.mark.parametrize("right", ["CE", "PE"])
def test_a_price_midway_between_strikes_takes_the_higher_strike(resolver, right):
    option = resolver.option("NIFTY", price=25_025 * RUPEE, right=right)
    assert option.strike == 25_050 * RUPEE
    just_below = resolver.option("NIFTY", price=25_025 * RUPEE - 1, right=right)
    assert just_below.strike == 25_000 * RUPEE


def test_stock_option_strikes_use_its_own_step(resolver):
    option = resolver.option("NSE:RELIANCE", price=144_460, right="CE", strike="OTM1")
    assert option.tradingsymbol == "RELIANCE25NOV251450CE"
    assert (option.lotsize, option.freeze_qty, option.instrumenttype) == (500, None, "OPTSTK")


def test_sensex_options_are_on_bfo(resolver):
    option = resolver.option("SENSEX", price=8_200_000, right="PE")
    assert option.exchange == "BFO" and option.expiry == date(2025, 11, 27)
    assert option.freeze_qty == 1000


@pytest.mark.parametrize("choice, reason", [
    ("ITM200", "below the ATM"),
    ("OTM200", "above the ATM"),
    ("ITM0", "expected ATM"),
    ("ATM1", "expected ATM"),
    ("deep", "expected ATM"),
    (25_010, "not listed; nearest listed: 25000, 25050"),
])
def test_strikes_that_cannot_be_chosen(resolver, choice, reason):
    with pytest.raises(StrikeError) as caught:
        resolver.option("NIFTY", price=2_501_000, right="CE", strike=choice)
    assert reason in caught.value.reason
    assert caught.value.strike == str(choice)


def test_bad_right_price_and_underlying(resolver):
    with pytest.raises(SymbolError, match="CE or PE"):
        resolver.option("NIFTY", price=2_501_000, right="CALL")
    for price in (0, -5, 25_010.5, True):
        with pytest.raises(SymbolError, match="paise"):
            resolver.option("NIFTY", price=price, right="CE")
    with pytest.raises(UnknownSymbol):
        resolver.option("NOSUCH", price=2_501_000, right="CE")
    with pytest.raises(NoContracts) as caught:
        resolver.option("M_M", price=360_000, right="CE")  # listed, but no options in this universe
    assert "no options of M_M" in caught.value.reason


# Expiries ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("underlying, hour, choice, expected", [
    ("NIFTY", 10, "current", date(2025, 11, 25)),
    ("NIFTY", 10, "next", date(2025, 12, 2)),
    ("NIFTY", 10, "monthly", date(2025, 11, 25)),
    ("NIFTY", 10, "16DEC2025", date(2025, 12, 16)),
    ("NIFTY", 10, "16dec2025", date(2025, 12, 16)),
    ("NIFTY", 16, "current", date(2025, 12, 2)),  # today's expiry stopped at 15:30
    ("NIFTY", 16, "next", date(2025, 12, 9)),
    ("NIFTY", 16, "monthly", date(2025, 12, 30)),  # December's series ends on the 30th
    ("BANKNIFTY", 10, "current", date(2025, 11, 25)),
    ("BANKNIFTY", 10, "next", date(2025, 12, 30)),  # no weeklies listed: the next monthly
    ("BANKNIFTY", 16, "current", date(2025, 12, 30)),
    ("BANKNIFTY", 16, "monthly", date(2025, 12, 30)),
    ("SENSEX", 10, "monthly", date(2025, 11, 27)),
    ("SENSEX", 10, "next", date(2025, 12, 4)),
])
def test_expiry_selection(resolver_at, underlying, hour, choice, expected):
    option = resolver_at(hour).option(underlying, price=5_000_000, right="CE", expiry=choice)
    assert option.expiry == expected


def test_sensex_monthly_in_december_comes_from_the_master_not_a_calendar_rule(resolver_at):
    # The last Thursday of December 2025 is the 25th, a holiday: the master lists the 24th.
    december = resolver_at(10, day=date(2025, 12, 19)).option("SENSEX", price=8_200_000, right="CE", expiry="monthly")
    assert december.expiry == date(2025, 12, 24)


def test_listed_expiries(resolver_at):
    assert resolver_at(10).expiries("NIFTY")[:3] == [date(2025, 11, 25), date(2025, 12, 2), date(2025, 12, 9)]
    assert resolver_at(16).expiries("BANKNIFTY") == [date(2025, 12, 30), date(2026, 1, 27)]


@pytest.mark.parametrize("underlying, hour, choice, reason", [
    ("BANKNIFTY", 10, "16DEC2025", "not a listed BANKNIFTY expiry"),  # weeklies only where listed
    ("NIFTY", 10, "23DEC2025", "not a listed NIFTY expiry"),
    ("NIFTY", 16, "25NOV2025", "stopped trading at 15:30"),
    ("NIFTY", 10, "2025-12-16", "expected current, next, monthly"),
    ("NIFTY", 10, "weekly", "expected current, next, monthly"),
    ("NIFTY", 10, "31FEB2026", "not a calendar date"),
])
def test_expiries_that_cannot_be_chosen(resolver_at, underlying, hour, choice, reason):
    with pytest.raises(ExpiryError) as caught:
        resolver_at(hour).option(underlying, price=5_000_000, right="CE", expiry=choice)
    assert reason in caught.value.reason
    assert caught.value.expiry == choice


def test_no_options_left_to_trade(resolver_at):
    with pytest.raises(NoContracts):
        resolver_at(10, day=date(2026, 3, 1)).option("BANKNIFTY", price=5_000_000, right="CE")


# Properties -------------------------------------------------------------------------------------
def _strikes(resolver: SymbolResolver, name: str, right: str) -> list[int]:
    rows = resolver.index.rows_of(name, "NFO", right, DAY)
    return [resolver.index.strike_of(r) for r in rows]  # type: ignore[misc]


@given(
    name=st.sampled_from(["NIFTY", "BANKNIFTY", "SBIN", "RELIANCE"]),
    right=st.sampled_from(["CE", "PE"]),
    fraction=st.floats(min_value=-0.1, max_value=1.1),
    steps=st.integers(min_value=0, max_value=6),
    side=st.sampled_from(["ITM", "OTM"]),
)
def test_atm_is_the_nearest_listed_strike_and_itm_otm_count_listed_strikes(
    master_index, name, right, fraction, steps, side
):
    resolver = SymbolResolver(master_index, FREEZE, now=lambda: ist())
    strikes = _strikes(resolver, name, right)
    price = max(1, round(strikes[0] + fraction * (strikes[-1] - strikes[0])))
    atm = resolver.option(name, price=price, right=right).strike
    best = min(abs(s - price) for s in strikes)
    assert abs(atm - price) == best
    assert atm == max(s for s in strikes if abs(s - price) == best)  # ties: the higher strike
    if steps == 0:
        return
    at = strikes.index(atm)
    below = (side == "ITM") == (right == "CE")
    wanted = at - steps if below else at + steps
    choice = f"{side}{steps}"
    if 0 <= wanted < len(strikes):
        chosen = resolver.option(name, price=price, right=right, strike=choice)
        assert chosen.strike == strikes[wanted]
        assert (chosen.strike < atm) == below
    else:
        with pytest.raises(StrikeError):
            resolver.option(name, price=price, right=right, strike=choice)
