"""The paper exchange's instrument universe, shaped like SmartAPI's OpenAPIScripMaster.json."""
from __future__ import annotations

import calendar
import random
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import msgspec

__all__ = ["Instrument", "Universe", "build_universe", "contract_symbol", "monthly_expiries", "weekly_expiries"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of the instrument master. Prices are integer paise."""

    token: str
    symbol: str  # the tradingsymbol orders use: SBIN-EQ, NIFTY25NOV2524000CE
    name: str  # underlying or company: SBIN, NIFTY
    exchange: str  # NSE, BSE, NFO, BFO
    instrumenttype: str  # "" cash equity, AMXIDX, OPTIDX, FUTIDX, OPTSTK, FUTSTK
    lotsize: int
    tick_paise: int
    expiry: date | None = None
    strike_paise: int | None = None  # options only; 24000 rupees -> 2_400_000
    option_type: str | None = None  # "CE" | "PE"
    underlying_token: str | None = None  # derivatives: the spot's token
    underlying_exchange: str | None = None  # derivatives: the spot's exchange (NSE for NFO, BSE for BFO)

    @property
    def is_option(self) -> bool:
        return self.option_type is not None

    @property
    def is_derivative(self) -> bool:
        return self.underlying_token is not None

    @property
    def is_index(self) -> bool:
        return self.instrumenttype == "AMXIDX"

    def master_row(self) -> dict[str, str]:
        """The row exactly as the real master carries it: every value a string."""
        return {
            "token": self.token,
            "symbol": self.symbol,
            "name": self.name,
            "expiry": self.expiry.strftime("%d%b%Y").upper() if self.expiry else "",
            "strike": f"{self.strike_paise:.6f}" if self.strike_paise is not None else "-1.000000",
            "lotsize": str(self.lotsize),
            "instrumenttype": self.instrumenttype,
            "exch_seg": self.exchange,
            "tick_size": f"{self.tick_paise:.6f}",
        }


class Universe:
    """Lookups over a fixed list of instruments, plus each spot's reference (previous close) price."""

    def __init__(
        self, instruments: list[Instrument], reference_prices: dict[tuple[str, str], int] | None = None
    ) -> None:
        self.instruments = instruments
        self._by_token = {(i.exchange, i.token): i for i in instruments}
        self._by_symbol = {(i.exchange, i.symbol.upper()): i for i in instruments}
        self._derivatives: dict[tuple[str, str], list[Instrument]] = {}
        for i in instruments:
            if i.underlying_token is not None:
                key = (i.underlying_exchange or "", i.underlying_token)
                self._derivatives.setdefault(key, []).append(i)
        self._reference = dict(reference_prices or {})
        self.spots = [i for i in instruments if not i.is_derivative]
        # An underlying name resolves to the instrument its derivatives are written on (NIFTY -> index).
        self._spot_by_name: dict[str, Instrument] = {}
        for i in instruments:
            spot = self.spot_of(i)
            if spot is not None:
                self._spot_by_name.setdefault(i.name.upper(), spot)
        for i in self.spots:
            if i.exchange == "NSE":
                self._spot_by_name.setdefault(i.name.upper(), i)

    def __len__(self) -> int:
        return len(self.instruments)

    def by_token(self, exchange: str, token: str) -> Instrument | None:
        return self._by_token.get((exchange.upper(), str(token)))

    def by_symbol(self, exchange: str, symbol: str) -> Instrument | None:
        return self._by_symbol.get((exchange.upper(), symbol.upper()))

    def derivatives_of(self, exchange: str, token: str) -> list[Instrument]:
        return self._derivatives.get((exchange.upper(), str(token)), [])

    def spot_of(self, instrument: Instrument) -> Instrument | None:
        """The underlying a derivative is written on; None for spots."""
        if instrument.underlying_token is None:
            return None
        return self._by_token.get((instrument.underlying_exchange or "", instrument.underlying_token))

    def spot_by_name(self, name: str) -> Instrument | None:
        """NIFTY -> the Nifty 50 index, RELIANCE -> RELIANCE-EQ on NSE."""
        return self._spot_by_name.get(name.upper().strip())

    def expiries(self, exchange: str, name: str, instrumenttype: str | None = None) -> list[date]:
        """Listed expiries of an underlying's contracts on one exchange, nearest first."""
        exchange, name = exchange.upper(), name.upper()
        found = {
            i.expiry
            for i in self.instruments
            if i.exchange == exchange
            and i.name == name
            and i.expiry is not None
            and (instrumenttype is None or i.instrumenttype == instrumenttype)
        }
        return sorted(found)  # type: ignore[type-var]

    def reference_price(self, exchange: str, token: str) -> int:
        """The previous close of a spot instrument, in paise."""
        try:
            return self._reference[(exchange.upper(), str(token))]
        except KeyError:
            raise KeyError(f"no reference price for {exchange} token {token}: not a spot of this universe") from None

    def search(self, exchange: str, text: str, limit: int = 100) -> list[Instrument]:
        needle = text.upper().strip()
        exchange = exchange.upper()
        hits = [i for i in self.instruments if i.exchange == exchange and needle in i.symbol.upper()]
        hits.sort(key=lambda i: (not i.symbol.upper().startswith(needle), len(i.symbol), i.symbol))
        return hits[:limit]

    def master(self) -> list[dict[str, str]]:
        return [i.master_row() for i in self.instruments]

    def master_json(self) -> bytes:
        """OpenAPIScripMaster.json for this universe, encoded once."""
        return self._master_json

    @cached_property
    def _master_json(self) -> bytes:
        return msgspec.json.encode(self.master())


# name, real NSE token, rough price in rupees (late 2025)
_NSE_EQUITIES: tuple[tuple[str, str, int], ...] = (
    ("SBIN", "3045", 800), ("RELIANCE", "2885", 1400), ("INFY", "1594", 1500), ("TCS", "11536", 3100),
    ("HDFCBANK", "1333", 1000), ("ICICIBANK", "4963", 1400), ("ITC", "1660", 410), ("LT", "11483", 3900),
    ("AXISBANK", "5900", 1200), ("KOTAKBANK", "1922", 2100), ("M&M", "2031", 3600),
    ("BHARTIARTL", "10604", 2000), ("HINDUNILVR", "1394", 2450), ("BAJFINANCE", "317", 1000),
    ("ASIANPAINT", "236", 2500), ("MARUTI", "10999", 16000), ("SUNPHARMA", "3351", 1700),
    ("TITAN", "3506", 3700), ("ULTRACEMCO", "11532", 12000), ("WIPRO", "3787", 250),
    ("HCLTECH", "7229", 1500), ("NTPC", "11630", 330), ("POWERGRID", "14977", 290), ("ONGC", "2475", 245),
    ("TATAMOTORS", "3456", 680), ("TATASTEEL", "3499", 170), ("JSWSTEEL", "11723", 1150),
    ("ADANIENT", "25", 2400), ("ADANIPORTS", "15083", 1450), ("COALINDIA", "20374", 385),
    ("BAJAJFINSV", "16675", 2000), ("NESTLEIND", "17963", 1250), ("TECHM", "13538", 1450),
    ("GRASIM", "1232", 2800), ("HINDALCO", "1363", 800), ("DRREDDY", "881", 1250), ("CIPLA", "694", 1500),
    ("BRITANNIA", "547", 5900), ("EICHERMOT", "910", 7000), ("HEROMOTOCO", "1348", 5500),
    ("BPCL", "526", 350), ("INDUSINDBK", "5258", 800), ("APOLLOHOSP", "157", 7500),
    ("TATACONSUM", "3432", 1150), ("SBILIFE", "21808", 1950), ("HDFCLIFE", "467", 750),
    ("BAJAJ-AUTO", "16669", 8900), ("TRENT", "1964", 4500),
)
# name -> real BSE scrip code
_BSE_EQUITIES: dict[str, str] = {
    "SBIN": "500112", "RELIANCE": "500325", "INFY": "500209", "TCS": "532540",
    "HDFCBANK": "500180", "ICICIBANK": "532174", "ITC": "500875", "TITAN": "500114",
}
# name, token, exchange, master symbol, rough level in rupees
_INDICES: tuple[tuple[str, str, str, str, int], ...] = (
    ("NIFTY", "99926000", "NSE", "Nifty 50", 25000),
    ("BANKNIFTY", "99926009", "NSE", "Nifty Bank", 54000),
    ("FINNIFTY", "99926037", "NSE", "Nifty Fin Service", 25500),
    ("SENSEX", "99919000", "BSE", "SENSEX", 82000),
)
_TUESDAY, _THURSDAY = 1, 3
# Fixed-date exchange holidays; an expiry falling on one moves to the previous weekday, as the exchanges do.
_FIXED_HOLIDAYS = frozenset({(1, 26), (5, 1), (8, 15), (10, 2), (12, 25)})


@dataclass(frozen=True, slots=True)
class _Chain:
    """How one underlying's derivatives are listed."""

    name: str
    lotsize: int
    strike_step: int  # rupees
    weekday: int  # expiry weekday
    weeklies: int  # how many weekly expiries are listed besides the monthlies
    option_type: str
    future_type: str


_CHAINS: tuple[_Chain, ...] = (
    _Chain("NIFTY", 75, 50, _TUESDAY, 4, "OPTIDX", "FUTIDX"),
    _Chain("BANKNIFTY", 35, 100, _TUESDAY, 0, "OPTIDX", "FUTIDX"),
    _Chain("FINNIFTY", 65, 50, _TUESDAY, 0, "OPTIDX", "FUTIDX"),
    _Chain("SENSEX", 20, 100, _THURSDAY, 4, "OPTIDX", "FUTIDX"),
    _Chain("RELIANCE", 500, 10, _TUESDAY, 0, "OPTSTK", "FUTSTK"),
    _Chain("SBIN", 750, 5, _TUESDAY, 0, "OPTSTK", "FUTSTK"),
    _Chain("INFY", 400, 20, _TUESDAY, 0, "OPTSTK", "FUTSTK"),
    _Chain("HDFCBANK", 550, 10, _TUESDAY, 0, "OPTSTK", "FUTSTK"),
    _Chain("TCS", 175, 20, _TUESDAY, 0, "OPTSTK", "FUTSTK"),
)
_MONTHLIES = 3
_STRIKE_SPAN = 0.10  # strikes cover about ±10 % around the spot's reference price
_FIRST_TOKEN = {"NFO": 35000, "BFO": 835000}  # synthetic derivative tokens; real ones are opaque too
_TOKEN_SPACE = 4_000_000


def _trading_day_on_or_before(day: date) -> date:
    while day.weekday() >= 5 or (day.month, day.day) in _FIXED_HOLIDAYS:
        day -= timedelta(days=1)
    return day


def weekly_expiries(today: date, weekday: int, count: int) -> list[date]:
    """The next `count` weeks' expiries on `weekday` (moved before a fixed holiday), today included."""
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    found = [_trading_day_on_or_before(first + timedelta(weeks=n)) for n in range(count + 1)]
    return [day for day in found if day >= today][:count]


def monthly_expiries(today: date, weekday: int, count: int) -> list[date]:
    """The last `weekday` of each month, the next `count` of them that are >= today."""
    found: list[date] = []
    year, month = today.year, today.month
    while len(found) < count:
        last = date(year, month, calendar.monthrange(year, month)[1])
        expiry = _trading_day_on_or_before(last - timedelta(days=(last.weekday() - weekday) % 7))
        if expiry >= today:
            found.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def contract_symbol(name: str, expiry: date, strike_paise: int | None = None, option_type: str | None = None) -> str:
    """NIFTY25NOV25FUT, NIFTY25NOV2524000CE, SBIN25NOV25812.5PE."""
    stem = name + expiry.strftime("%d%b%y").upper()
    if strike_paise is None or option_type is None:
        return stem + "FUT"
    rupees, paise = divmod(strike_paise, 100)
    strike = str(rupees) if paise == 0 else f"{strike_paise / 100:.2f}".rstrip("0")
    return f"{stem}{strike}{option_type}"


def _reference_price(rng: random.Random, rupees: int, tick_paise: int, spread: float) -> int:
    paise = rupees * 100 * (1 + rng.uniform(-spread, spread))
    return max(tick_paise, round(paise / tick_paise) * tick_paise)


def _spots(rng: random.Random) -> tuple[list[Instrument], dict[tuple[str, str], int]]:
    spots: list[Instrument] = []
    reference: dict[tuple[str, str], int] = {}
    for name, token, exchange, symbol, level in _INDICES:
        spots.append(Instrument(token, symbol, name, exchange, "AMXIDX", lotsize=1, tick_paise=1))
        reference[(exchange, token)] = _reference_price(rng, level, 1, 0.035)
    for name, token, rupees in _NSE_EQUITIES:
        spots.append(Instrument(token, f"{name}-EQ", name, "NSE", "", lotsize=1, tick_paise=5))
        reference[("NSE", token)] = _reference_price(rng, rupees, 5, 0.05)
    nse_tokens = {name: token for name, token, _ in _NSE_EQUITIES}
    for name, code in _BSE_EQUITIES.items():
        spots.append(Instrument(code, name, name, "BSE", "", lotsize=1, tick_paise=5))
        # The same company trades within paise of its NSE price.
        reference[("BSE", code)] = reference[("NSE", nse_tokens[name])]
    return spots, reference


def _contract_token(exchange: str, symbol: str, taken: set[tuple[str, str]]) -> str:
    """A token that follows the contract from day to day, as the real master's do: a hash of the symbol."""
    number = _FIRST_TOKEN[exchange] + zlib.crc32(symbol.encode()) % _TOKEN_SPACE
    while (exchange, str(number)) in taken:
        number += 1
    taken.add((exchange, str(number)))
    return str(number)


def _derivatives(today: date, spot: Instrument, spot_price: int, chain: _Chain, taken: set[tuple[str, str]]) -> list[Instrument]:
    exchange = "BFO" if spot.exchange == "BSE" else "NFO"
    monthlies = monthly_expiries(today, chain.weekday, _MONTHLIES)
    option_expiries = sorted(set(monthlies) | set(weekly_expiries(today, chain.weekday, chain.weeklies)))
    step = chain.strike_step * 100
    atm = round(spot_price / step) * step
    wings = max(1, -(-int(spot_price * _STRIKE_SPAN) // step))
    strikes = [atm + n * step for n in range(-wings, wings + 1) if atm + n * step > 0]

    def make(expiry: date, strike: int | None = None, right: str | None = None) -> Instrument:
        symbol = contract_symbol(chain.name, expiry, strike, right)
        return Instrument(
            token=_contract_token(exchange, symbol, taken),
            symbol=symbol,
            name=chain.name,
            exchange=exchange,
            instrumenttype=chain.future_type if right is None else chain.option_type,
            lotsize=chain.lotsize,
            tick_paise=5,
            expiry=expiry,
            strike_paise=strike,
            option_type=right,
            underlying_token=spot.token,
            underlying_exchange=spot.exchange,
        )

    contracts = [make(expiry) for expiry in monthlies]
    contracts += [make(e, k, right) for e in option_expiries for k in strikes for right in ("CE", "PE")]
    return contracts


def build_universe(today: date, seed: int = 7) -> Universe:
    """A deterministic universe dated relative to `today`: the same `today` and `seed` give the same master,
    and a contract keeps its symbol and token on every day it is listed."""
    # Reference prices, hence strikes, depend on the seed alone, so a contract listed today is still listed
    # tomorrow under the same symbol and token until it expires.
    rng = random.Random(f"tickguard-universe:{seed}")
    spots, reference = _spots(rng)
    instruments = list(spots)
    by_name = {i.name: i for i in spots if i.exchange == "NSE" or i.is_index}
    taken = {(i.exchange, i.token) for i in spots}
    for chain in _CHAINS:
        spot = by_name[chain.name]
        instruments += _derivatives(today, spot, reference[(spot.exchange, spot.token)], chain, taken)
    return Universe(instruments, reference)
