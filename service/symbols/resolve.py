"""From what an alert says to the instrument the exchange lists (trading-semantics §1, §2).

Tickers (`equity`):
    NSE:SBIN, SBIN, SBIN-EQ, sbin      -> NSE SBIN-EQ (a bare ticker tries NSE, then BSE; on NSE the
                                          series -EQ, then -BE, is added when missing)
    BSE:SBIN                           -> BSE SBIN
    M_M, BAJAJ_AUTO                    -> M&M, BAJAJ-AUTO (TradingView writes both & and - as _; the
                                          one the master lists wins)
    NIFTY, BANKNIFTY, "Nifty 50", nse:nifty_50, CNXFINANCE -> the index (by master name or symbol)
    NIFTY1!, NIFTY2!                   -> the nearest / next listed NIFTY future
Contracts (`contract`): a full tradingsymbol, `NIFTY25NOV2524000CE` or `NFO:...`, as listed.
Options (`option`): underlying + price (paise) + right, then
    expiry "current" (default)  the nearest listed expiry still trading
           "next"               the one after it
           "monthly"            the last listed expiry in the month of the nearest one (the month's
                                series end, read from the master, never from a calendar rule)
           "DDMMMYYYY"          exactly that listed expiry
    An expiry stops trading at its segment's close on the day (15:30 IST; MCX 23:30, CDS 17:00) and
    is skipped after that.
    strike "ATM"                the listed strike nearest the price; a price exactly between two
                                strikes takes the higher one (Pine's math.round(close/step)*step, so
                                the strike a TradingView script computes), for CE and PE alike
           "ITMn" / "OTMn"      n listed strikes from the ATM one: ITM is below for a CE, above for
                                a PE; past the listed range is an error, never clipped
           a number             that strike in rupees (24000, "812.5"), which must be listed
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from .errors import ExpiryError, NoContracts, StrikeError, SymbolError, UnknownSymbol
from .index import MasterIndex
from .model import Symbol, ist_now

__all__ = ["SymbolResolver", "INDEX_ALIASES", "expiry_cutoff"]

# TradingView index tickers that are not the master's name for the index.
INDEX_ALIASES = {"CNXFINANCE": "FINNIFTY", "NIFTY_MID_SELECT": "MIDCPNIFTY", "CNXBANK": "BANKNIFTY"}
_CASH = ("NSE", "BSE")
_DERIVATIVE_SEGMENT = {"NSE": "NFO", "BSE": "BFO"}
_SEGMENT_ORDER = ("NFO", "BFO", "MCX", "CDS", "NCDEX")
_NSE_SERIES = ("-EQ", "-BE")
_CONTINUOUS = re.compile(r"^(?P<name>.+?)(?P<nth>[1-9])!$")
_STEPS = re.compile(r"^(?P<side>ITM|OTM)(?P<n>[1-9]\d*)$")
_EXPIRY_TEXT = re.compile(r"^\d{2}[A-Z]{3}\d{4}$")
_EXPIRY_CUTOFF = {"MCX": time(23, 30), "CDS": time(17, 0)}


def expiry_cutoff(exchange: str) -> time:
    """When an expiring contract of `exchange` stops trading on its expiry day (IST)."""
    return _EXPIRY_CUTOFF.get(exchange.upper(), time(15, 30))


class SymbolResolver:
    """Resolution over one day's `MasterIndex`; pure and synchronous (no I/O, no broker)."""

    def __init__(self, index: MasterIndex, freeze_qty: Mapping[str, int] | None = None,
                 now: Callable[[], datetime] = ist_now) -> None:
        self.index = index
        self.freeze_qty = {name.upper(): units for name, units in (freeze_qty or {}).items()}
        self._now = now
        self._symbols: dict[int, Symbol] = {}  # rows already built (a Symbol is immutable; the index is this day's)
        self._indices: dict[str, list[int]] = {}
        for row in index.rows_of_kind("AMXIDX"):
            record = index.symbol(row)
            for key in {_index_key(record.name), _index_key(record.tradingsymbol)}:
                self._indices.setdefault(key, []).append(row)
        for rows in self._indices.values():  # NSE's listing first for a bare index name
            rows.sort(key=lambda r: (index.exchange_of(r) != "NSE", index.exchange_of(r)))

    # Tickers ----------------------------------------------------------------------------------
    def equity(self, ticker: str) -> Symbol:
        """A cash equity, an index or a continuous future (`NIFTY1!`) from a TradingView/Chartink ticker."""
        exchange, body = _split(ticker)
        continuous = _CONTINUOUS.match(body)
        if continuous:
            return self.future(continuous["name"], int(continuous["nth"]), exchange=exchange, query=ticker)
        for candidate in _spellings(body):
            row = self._cash_row(candidate, exchange) or self._index_row(candidate, exchange)
            if row is not None:
                return self.symbol_at(row)
        where = f" on {exchange}" if exchange else " on NSE or BSE"
        raise UnknownSymbol(ticker, f"no equity or index{where} in the instrument master of {self.index.date}")

    def contract(self, tradingsymbol: str) -> Symbol:
        """A future or option by its full tradingsymbol, as the master lists it."""
        exchange, body = _split(tradingsymbol)
        if exchange is not None:
            segments = [_DERIVATIVE_SEGMENT.get(exchange, exchange)]
        else:
            segments = [s for s in _SEGMENT_ORDER if s in self.index.exchanges]
        for segment in segments:
            row = self.index.by_symbol(segment, body)
            if row is not None and self.index.expiry_of(row) is not None:
                symbol = self.symbol_at(row)
                if not self._is_live(symbol.expiry, segment):  # type: ignore[arg-type]
                    day = f"{symbol.expiry:%d%b%Y}".upper()
                    raise ExpiryError(tradingsymbol, f"expired at {expiry_cutoff(segment):%H:%M} IST on {day}", day)
                return symbol
        raise UnknownSymbol(tradingsymbol, f"no contract of that symbol in the instrument master of {self.index.date}")

    def lookup(self, text: str) -> Symbol:
        """Whatever `text` names: a ticker, an index, a continuous future or a full contract symbol."""
        try:
            return self.equity(text)
        except UnknownSymbol:
            return self.contract(text)

    def future(self, underlying: str, nth: int = 1, *, exchange: str | None = None, query: str | None = None) -> Symbol:
        """The `nth` nearest listed future of `underlying` still trading."""
        query = query or underlying
        name, segment = self._chain(underlying, exchange, query, futures=True)
        rows = [r for r in self.index.rows_of(name, segment) if self.index.kind_of(r).startswith("FUT")]
        live = [r for r in rows if self._is_live(self.index.expiry_of(r), segment)]  # type: ignore[arg-type]
        if len(live) < nth:
            raise NoContracts(query, f"{len(live)} {name} futures trading on {segment}, asked for number {nth}")
        return self.symbol_at(live[nth - 1])

    # Options ----------------------------------------------------------------------------------
    def option(self, underlying: str, *, price: int, right: str, strike: str | int | float | Decimal = "ATM",
               expiry: str = "current", exchange: str | None = None) -> Symbol:
        """The CE/PE of `underlying` at `strike` for `expiry`, chosen against `price` (paise)."""
        query = f"{underlying} {right} {strike} {expiry}"
        side = str(right).strip().upper()
        if side not in ("CE", "PE"):
            raise SymbolError(query, f"option right must be CE or PE, got {right!r}")
        if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
            raise SymbolError(query, f"price must be a positive whole number of paise, got {price!r}")
        name, segment = self._chain(underlying, exchange, query, futures=False)
        day = self.pick_expiry(name, segment, expiry, query)
        rows = self.index.rows_of(name, segment, side, day)
        if not rows:
            raise StrikeError(query, f"no {side} strikes listed for {name} {day:%d%b%Y}".upper(), str(strike))
        strikes = [self.index.strike_of(r) for r in rows]
        at = _pick_strike(strikes, price, side, strike, query)  # type: ignore[arg-type]
        return self.symbol_at(rows[at])

    def expiries(self, underlying: str, exchange: str | None = None) -> list[date]:
        """Option expiries of `underlying` still trading, nearest first."""
        name, segment = self._chain(underlying, exchange, underlying, futures=False)
        return [d for d in self.index.option_expiries(name, segment) if self._is_live(d, segment)]

    def pick_expiry(self, name: str, segment: str, choice: str, query: str) -> date:
        live = [d for d in self.index.option_expiries(name, segment) if self._is_live(d, segment)]
        if not live:
            raise NoContracts(query, f"no {name} options trading on {segment}")
        text = str(choice or "current").strip().upper()
        if text == "CURRENT":
            return live[0]
        if text == "NEXT":
            if len(live) < 2:
                raise ExpiryError(query, f"only one {name} expiry is listed", str(choice))
            return live[1]
        if text == "MONTHLY":
            return max(d for d in live if (d.year, d.month) == (live[0].year, live[0].month))
        if not _EXPIRY_TEXT.match(text):
            raise ExpiryError(query, "expected current, next, monthly or a date like 25NOV2025", str(choice))
        try:
            day = datetime.strptime(text.title(), "%d%b%Y").date()
        except ValueError:
            raise ExpiryError(query, f"{choice!r} is not a calendar date", str(choice)) from None
        if day in live:
            return day
        if day in self.index.option_expiries(name, segment):
            raise ExpiryError(query, f"{text} stopped trading at {expiry_cutoff(segment):%H:%M} IST", str(choice))
        listed = ", ".join(f"{d:%d%b%Y}".upper() for d in live[:6])
        raise ExpiryError(query, f"{text} is not a listed {name} expiry; listed: {listed}", str(choice))

    # Internals --------------------------------------------------------------------------------
    def symbol_at(self, row: int) -> Symbol:
        """The index row as a Symbol, with its underlying's freeze quantity for derivatives (built once a
        row: every alert for a cached ticker asks again)."""
        symbol = self._symbols.get(row)
        if symbol is None:
            index = self.index
            freeze = self.freeze_qty.get(index.name_of(row).upper()) if index.expiry_of(row) else None
            symbol = self._symbols[row] = index.symbol(row, freeze_qty=freeze)
        return symbol

    def is_trading(self, symbol: Symbol) -> bool:
        """False once a derivative's expiry has passed (its segment's close on the expiry day)."""
        return symbol.expiry is None or self._is_live(symbol.expiry, symbol.exchange)

    def _is_live(self, expiry: date, segment: str) -> bool:
        now = self._now()
        today = now.date()
        return expiry > today or (expiry == today and now.time() < expiry_cutoff(segment))

    def _cash_row(self, body: str, exchange: str | None) -> int | None:
        for market in (exchange,) if exchange else _CASH:
            if market == "NSE":
                names = [body] if body.endswith(_NSE_SERIES) else [body + series for series in _NSE_SERIES]
            elif market == "BSE":
                names = [body.removesuffix("-EQ")]
            else:
                continue
            for name in names:
                row = self.index.by_symbol(market, name)
                if row is not None:
                    return row
        return None

    def _index_row(self, body: str, exchange: str | None) -> int | None:
        key = _index_key(INDEX_ALIASES.get(body, body))
        for row in self._indices.get(key, ()):
            if exchange is None or self.index.exchange_of(row) == exchange:
                return row
        return None

    def _chain(self, underlying: str, exchange: str | None, query: str, futures: bool) -> tuple[str, str]:
        """The master name and derivative segment of an underlying's futures or options."""
        prefix, body = _split(underlying)
        wanted = exchange.upper() if exchange else prefix
        names = [INDEX_ALIASES.get(body, body), *_spellings(body)]
        try:
            names.append(self.equity(underlying).name.upper())
        except UnknownSymbol:
            pass
        segments = [_DERIVATIVE_SEGMENT.get(wanted, wanted)] if wanted else list(_SEGMENT_ORDER)
        for name in dict.fromkeys(n.upper() for n in names):
            for segment in segments:
                if futures and self.index.rows_of(name, segment):
                    return name, segment
                if not futures and (self.index.rows_of(name, segment, "CE") or self.index.rows_of(name, segment, "PE")):
                    return name, segment
        if not any(self.index.name_known(n) for n in names):
            raise UnknownSymbol(query, f"no underlying {body!r} in the instrument master of {self.index.date}")
        kind = "futures" if futures else "options"
        raise NoContracts(query, f"no {kind} of {body} listed" + (f" on {segments[0]}" if wanted else ""))


def _split(ticker: str) -> tuple[str | None, str]:
    """`NSE:sbin ` -> ("NSE", "SBIN"); no prefix -> (None, ...)."""
    text = str(ticker).strip().upper()
    exchange = None
    if ":" in text:
        exchange, text = (part.strip() for part in text.split(":", 1))
        if not exchange or not exchange.isalpha():
            raise UnknownSymbol(ticker, f"unreadable exchange prefix {exchange!r}")
    if not text:
        raise UnknownSymbol(ticker, "empty symbol")
    return exchange, text


def _spellings(body: str) -> list[str]:
    """TradingView writes & and - as _ (M_M, BAJAJ_AUTO): try each reading, the literal one first."""
    if "_" not in body:
        return [body]
    return list(dict.fromkeys([body, body.replace("_", "&"), body.replace("_", "-")]))


def _index_key(text: str) -> str:
    return " ".join(text.upper().replace("_", " ").split())


def _pick_strike(strikes: list[int], price: int, right: str, choice, query: str) -> int:
    """The position in `strikes` (ascending paise) that `choice` selects against `price`."""
    text = str(choice).strip().upper()
    steps = _STEPS.match(text)
    if text != "ATM" and not steps:
        try:
            wanted = int(Decimal(text) * 100)
        except InvalidOperation:
            raise StrikeError(query, "expected ATM, ITMn, OTMn or a strike in rupees", str(choice)) from None
        at = bisect_left(strikes, wanted)
        if at < len(strikes) and strikes[at] == wanted:
            return at
        near = ", ".join(f"{s / 100:g}" for s in strikes[max(0, at - 1):at + 1])
        raise StrikeError(query, f"strike {Decimal(text):f} is not listed; nearest listed: {near}", str(choice))
    above = bisect_left(strikes, price)
    if above == len(strikes) or (above > 0 and price - strikes[above - 1] < strikes[above] - price):
        atm = above - 1
    else:
        atm = above  # nearest, and on a tie the higher strike
    if not steps:
        return atm
    n = int(steps["n"])
    below = (steps["side"] == "ITM") == (right == "CE")
    at = atm - n if below else atm + n
    if not 0 <= at < len(strikes):
        room = atm if below else len(strikes) - 1 - atm
        direction = "below" if below else "above"
        raise StrikeError(query, f"{text} is {n} strikes {direction} the ATM {strikes[atm] / 100:g}, "
                                 f"but only {room} are listed {direction} it", str(choice))
    return at
