"""The paper exchange's instrument universe, shaped like SmartAPI's OpenAPIScripMaster.json."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["Instrument", "Universe", "build_universe"]


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
    """Lookups over a fixed list of instruments."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self.instruments = instruments
        self._by_token = {(i.exchange, i.token): i for i in instruments}
        self._by_symbol = {(i.exchange, i.symbol.upper()): i for i in instruments}
        self._derivatives: dict[tuple[str, str], list[Instrument]] = {}
        for i in instruments:
            if i.underlying_token is not None:
                key = (i.underlying_exchange or "", i.underlying_token)
                self._derivatives.setdefault(key, []).append(i)

    def __len__(self) -> int:
        return len(self.instruments)

    def by_token(self, exchange: str, token: str) -> Instrument | None:
        return self._by_token.get((exchange.upper(), str(token)))

    def by_symbol(self, exchange: str, symbol: str) -> Instrument | None:
        return self._by_symbol.get((exchange.upper(), symbol.upper()))

    def derivatives_of(self, exchange: str, token: str) -> list[Instrument]:
        return self._derivatives.get((exchange.upper(), str(token)), [])

    def search(self, exchange: str, text: str, limit: int = 100) -> list[Instrument]:
        needle = text.upper().strip()
        exchange = exchange.upper()
        hits = [i for i in self.instruments if i.exchange == exchange and needle in i.symbol.upper()]
        hits.sort(key=lambda i: (not i.symbol.upper().startswith(needle), len(i.symbol), i.symbol))
        return hits[:limit]

    def master(self) -> list[dict[str, str]]:
        return [i.master_row() for i in self.instruments]


def build_universe(today: date, seed: int = 7) -> Universe:
    """A deterministic universe dated relative to `today`; see paper/README section in the project README."""
    raise NotImplementedError  # filled in by the market-data work
