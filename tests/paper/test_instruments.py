import re
from collections import Counter
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.instruments import Instrument, Universe, build_universe, contract_symbol, monthly_expiries, weekly_expiries

TODAY = date(2025, 11, 24)  # a Monday
TUESDAY, THURSDAY = 1, 3
FIXED_HOLIDAYS = {(1, 26), (5, 1), (8, 15), (10, 2), (12, 25)}


@pytest.fixture(scope="module")
def universe() -> Universe:
    return build_universe(TODAY, seed=7)


def option_expiries(universe: Universe, exchange: str, name: str) -> list[date]:
    return universe.expiries(exchange, name, "OPTIDX") or universe.expiries(exchange, name, "OPTSTK")


def test_same_today_and_seed_give_the_same_master(universe):
    assert build_universe(TODAY, seed=7).master_json() == universe.master_json()


def test_another_seed_moves_prices_and_strikes(universe):
    other = build_universe(TODAY, seed=8)
    assert other.reference_price("NSE", "99926000") != universe.reference_price("NSE", "99926000")


def test_real_tokens_for_known_names(universe):
    expected = {
        ("NSE", "3045"): "SBIN-EQ", ("NSE", "2885"): "RELIANCE-EQ", ("NSE", "1594"): "INFY-EQ",
        ("NSE", "11536"): "TCS-EQ", ("NSE", "1333"): "HDFCBANK-EQ", ("NSE", "4963"): "ICICIBANK-EQ",
        ("NSE", "1660"): "ITC-EQ", ("NSE", "11483"): "LT-EQ", ("NSE", "5900"): "AXISBANK-EQ",
        ("NSE", "1922"): "KOTAKBANK-EQ", ("NSE", "2031"): "M&M-EQ",
        ("BSE", "500112"): "SBIN", ("BSE", "500325"): "RELIANCE",
    }
    for (exchange, token), symbol in expected.items():
        instrument = universe.by_token(exchange, token)
        assert instrument is not None and instrument.symbol == symbol
        assert instrument.lotsize == 1 and instrument.tick_paise == 5 and instrument.instrumenttype == ""


def test_about_forty_nse_equities(universe):
    equities = [i for i in universe.spots if i.exchange == "NSE" and not i.is_index]
    assert 40 <= len(equities) <= 60
    assert all(i.symbol == f"{i.name}-EQ" for i in equities)


def test_indices(universe):
    rows = {
        ("NSE", "99926000"): ("Nifty 50", "NIFTY"),
        ("NSE", "99926009"): ("Nifty Bank", "BANKNIFTY"),
        ("NSE", "99926037"): ("Nifty Fin Service", "FINNIFTY"),
        ("BSE", "99919000"): ("SENSEX", "SENSEX"),
    }
    for (exchange, token), (symbol, name) in rows.items():
        index = universe.by_token(exchange, token)
        assert index is not None
        assert (index.symbol, index.name, index.instrumenttype, index.lotsize) == (symbol, name, "AMXIDX", 1)
        assert index.is_index and not index.is_derivative


def test_reference_prices_are_realistic(universe):
    assert 2_400_000 <= universe.reference_price("NSE", "99926000") <= 2_600_000
    assert 5_200_000 <= universe.reference_price("NSE", "99926009") <= 5_600_000
    assert 70_000 <= universe.reference_price("NSE", "3045") <= 90_000
    assert 130_000 <= universe.reference_price("NSE", "2885") <= 150_000
    for spot in universe.spots:
        price = universe.reference_price(spot.exchange, spot.token)
        assert price > 0 and price % spot.tick_paise == 0


def test_reference_price_of_a_contract_is_a_precise_key_error(universe):
    contract = universe.derivatives_of("NSE", "99926000")[0]
    with pytest.raises(KeyError, match=f"NFO token {contract.token}: not a spot"):
        universe.reference_price("NFO", contract.token)


def test_nifty_lists_four_tuesday_weeklies_merged_with_three_monthlies(universe):
    expiries = option_expiries(universe, "NFO", "NIFTY")
    monthlies = monthly_expiries(TODAY, TUESDAY, 3)
    weeklies = weekly_expiries(TODAY, TUESDAY, 4)
    assert expiries == sorted(set(weeklies) | set(monthlies))
    assert len(expiries) == len(set(expiries))
    assert universe.expiries("NFO", "NIFTY", "FUTIDX") == monthlies
    assert all(e.weekday() == TUESDAY for e in expiries)


def test_banknifty_finnifty_and_stocks_are_monthly_only(universe):
    for name in ("BANKNIFTY", "FINNIFTY", "RELIANCE", "SBIN", "INFY", "HDFCBANK", "TCS"):
        expiries = universe.expiries("NFO", name)
        assert len(expiries) == 3, name
        for expiry in expiries:
            assert (expiry + timedelta(days=7)).month != expiry.month, f"{name} {expiry} is not the month's last"


def test_sensex_weeklies_are_thursdays_on_bfo(universe):
    expiries = option_expiries(universe, "BFO", "SENSEX")
    assert len(expiries) >= 4
    for expiry in expiries:
        moved = (expiry + timedelta(days=1)).timetuple()[1:3] in FIXED_HOLIDAYS
        assert expiry.weekday() == THURSDAY or moved, expiry
    assert all(i.underlying_exchange == "BSE" for i in universe.derivatives_of("BSE", "99919000"))


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2035, 12, 31)), st.sampled_from([TUESDAY, THURSDAY]))
def test_expiry_rules_never_look_back(today, weekday):
    weeklies = weekly_expiries(today, weekday, 4)
    monthlies = monthly_expiries(today, weekday, 3)
    assert len(weeklies) == 4 and len(monthlies) == 3
    assert all(e >= today for e in weeklies + monthlies)
    assert weeklies == sorted(weeklies) and monthlies == sorted(monthlies)
    assert len({(e.year, e.month) for e in monthlies}) == 3
    for expiry in weeklies + monthlies:
        assert expiry.weekday() < 5 and (expiry.month, expiry.day) not in FIXED_HOLIDAYS


def test_every_expiry_is_today_or_later_for_any_day():
    for offset in range(0, 14):
        today = TODAY + timedelta(days=offset)
        universe = build_universe(today)
        assert all(i.expiry >= today for i in universe.instruments if i.expiry is not None)


def test_master_row_formats(universe):
    symbol_re = re.compile(r"^(?P<name>[A-Z&-]+)(?P<dd>\d\d)(?P<mmm>[A-Z]{3})(?P<yy>\d\d)(?P<rest>FUT|\d+(\.\d+)?(CE|PE))$")
    for instrument in universe.instruments:
        row = instrument.master_row()
        assert all(isinstance(value, str) for value in row.values())
        assert row["tick_size"] == f"{instrument.tick_paise}.000000"
        if not instrument.is_derivative:
            assert row["expiry"] == "" and row["strike"] == "-1.000000"
            continue
        assert re.fullmatch(r"\d\d[A-Z]{3}\d{4}", row["expiry"])
        match = symbol_re.match(row["symbol"])
        assert match, row["symbol"]
        assert match["name"] == instrument.name
        assert f"{match['dd']}{match['mmm']}20{match['yy']}" == row["expiry"]
        if instrument.is_option:
            strike_rupees = float(row["strike"]) / 100
            assert row["strike"].endswith(".000000")
            assert match["rest"] == f"{strike_rupees:g}{instrument.option_type}"
            assert row["instrumenttype"] in ("OPTIDX", "OPTSTK")
        else:
            assert row["strike"] == "-1.000000" and row["instrumenttype"] in ("FUTIDX", "FUTSTK")


def test_example_symbols_resolve(universe):
    atm = round(universe.reference_price("NSE", "99926000") / 5000) * 5000
    expiry = option_expiries(universe, "NFO", "NIFTY")[0]
    symbol = contract_symbol("NIFTY", expiry, atm, "CE")
    assert symbol == f"NIFTY{expiry:%d}{expiry:%b}{expiry:%y}".upper() + f"{atm // 100}CE"
    contract = universe.by_symbol("NFO", symbol.lower())
    assert contract is not None and contract.strike_paise == atm and contract.lotsize == 75
    assert universe.spot_of(contract) == universe.by_token("NSE", "99926000")
    assert contract_symbol("SBIN", date(2025, 11, 25), 81250, "PE") == "SBIN25NOV25812.5PE"
    assert contract_symbol("NIFTY", date(2025, 12, 30)) == "NIFTY30DEC25FUT"


def test_lot_sizes_and_strike_steps(universe):
    lots = {"NIFTY": 75, "BANKNIFTY": 35, "FINNIFTY": 65, "SENSEX": 20}
    steps = {"NIFTY": 5000, "BANKNIFTY": 10000, "FINNIFTY": 5000, "SENSEX": 10000}
    for name, lot in lots.items():
        spot = universe.spot_by_name(name)
        assert spot is not None and spot.is_index
        contracts = universe.derivatives_of(spot.exchange, spot.token)
        assert {c.lotsize for c in contracts} == {lot}
        strikes = sorted({c.strike_paise for c in contracts if c.strike_paise is not None})
        assert {b - a for a, b in zip(strikes, strikes[1:])} == {steps[name]}
        reference = universe.reference_price(spot.exchange, spot.token)
        assert strikes[0] <= reference * 0.9 and strikes[-1] >= reference * 1.1
        assert strikes[0] >= reference * 0.88 and strikes[-1] <= reference * 1.12
    for name in ("RELIANCE", "SBIN", "INFY", "HDFCBANK", "TCS"):
        spot = universe.spot_by_name(name)
        assert spot is not None and spot.symbol == f"{name}-EQ"
        kinds = Counter(c.instrumenttype for c in universe.derivatives_of("NSE", spot.token))
        assert kinds["FUTSTK"] == 3 and kinds["OPTSTK"] >= 40
        assert all(c.lotsize > 1 for c in universe.derivatives_of("NSE", spot.token))


def test_every_option_has_both_rights_and_a_tick_of_five_paise(universe):
    options = [i for i in universe.instruments if i.is_option]
    keys = Counter((i.exchange, i.name, i.expiry, i.strike_paise) for i in options)
    assert set(keys.values()) == {2}
    assert all(i.tick_paise == 5 and i.strike_paise % 5 == 0 for i in options)
    assert all(i.underlying_token and i.underlying_exchange for i in universe.instruments if i.is_derivative)


def test_tokens_are_unique_per_exchange(universe):
    keys = [(i.exchange, i.token) for i in universe.instruments]
    assert len(keys) == len(set(keys))
    assert all(i.token.isdigit() for i in universe.instruments)
    assert min(int(i.token) for i in universe.instruments if i.exchange == "NFO") >= 35000
    assert len(universe) > 3000


def test_lookups(universe):
    assert universe.by_symbol("nse", "sbin-eq") == universe.by_token("NSE", "3045")
    assert universe.by_token("NSE", "no-such") is None
    assert universe.spot_by_name("m&m") == universe.by_token("NSE", "2031")
    assert universe.spot_by_name("SENSEX") == universe.by_token("BSE", "99919000")
    assert universe.spot_by_name("NOPE") is None
    assert universe.spot_of(universe.by_token("NSE", "3045")) is None
    assert universe.search("NSE", "sbin")[0].symbol == "SBIN-EQ"
    assert all(i.exchange == "NFO" for i in universe.search("NFO", "NIFTY", limit=20))
    assert len(universe.search("NFO", "NIFTY", limit=20)) == 20


def test_master_json_is_the_master_encoded_once(universe):
    body = universe.master_json()
    assert body is universe.master_json()
    rows = msgspec.json.decode(body)
    assert rows == universe.master() and len(rows) == len(universe)
    assert all(isinstance(v, str) for row in rows[:500] for v in row.values())


def test_universe_built_from_a_plain_list_has_no_reference_prices():
    spot = Instrument("1", "X-EQ", "X", "NSE", "", 1, 5)
    universe = Universe([spot])
    assert universe.spots == [spot]
    with pytest.raises(KeyError):
        universe.reference_price("NSE", "1")


def test_a_contract_keeps_its_token_from_day_to_day(universe):
    tomorrow = build_universe(TODAY + timedelta(days=1), seed=7)
    before = {(i.exchange, i.symbol): i.token for i in universe.instruments}
    after = {(i.exchange, i.symbol): i.token for i in tomorrow.instruments}
    common = before.keys() & after.keys()
    assert len(common) > 0.8 * len(before)
    assert all(before[key] == after[key] for key in common)
