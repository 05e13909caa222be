"""The instrument master as compact columns: ~150 000 rows in about 10 MB, not 150 000 dicts.

Layout (one position per master row):
- rows are ordered by (exchange, upper-case tradingsymbol), so a symbol is a binary search;
- repeated text (exchange, instrument type, name, expiry) lives once in a sorted table and the row
  holds its small integer code; tradingsymbols and tokens are one string each, sliced by offsets;
- numbers are `array` columns: strike (paise, -1 = none), lot size, tick size (paise), right
  (0 none, 1 CE, 2 PE);
- two permutations order the rows by (exchange, token) and by option chain
  (name, exchange, right, expiry, strike), so a chain or a strike ladder is one contiguous span.

On disk it is msgpack: `{"format", "version", "crc32", "payload"}`, the payload holding the tables
and the columns' raw bytes. A wrong format or version, a checksum mismatch or columns that do not fit
together raise `IndexCorrupt`: a damaged index is rebuilt, never trusted.
"""
from __future__ import annotations

import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from ._files import atomic_write
from .errors import IndexCorrupt
from .model import Symbol

__all__ = ["MasterIndex", "MasterRecord", "INDEX_FORMAT", "INDEX_VERSION"]

INDEX_FORMAT = "tickguard-master-index"
INDEX_VERSION = 1
_RIGHTS = (None, "CE", "PE")
_NO_STRIKE = -1
# column name -> array typecode; the offsets columns carry one entry more than there are rows
_COLUMNS = {
    "exchange": "B", "kind": "H", "name": "I", "expiry": "H", "right": "B", "strike": "q",
    "lotsize": "I", "tick": "I", "symbol_at": "I", "token_at": "I", "by_token": "I", "by_chain": "I",
}


class MasterRecord(NamedTuple):
    """One parsed master row, on its way into the index."""

    exchange: str
    token: str
    symbol: str
    name: str
    instrumenttype: str
    expiry: date | None
    strike: int | None  # paise
    option_type: str | None
    lotsize: int
    tick_size: int  # paise


class MasterIndex:
    """Read-only lookups over one day's master. Build with `build`, persist with `save`/`load`."""

    def __init__(self, day: date, built_at: datetime, source: str, tables: dict[str, tuple], columns: dict[str, array],
                 symbols: str, tokens: str, skipped: int = 0) -> None:
        self.date = day  # the trading day this master is for (see master.master_day)
        self.built_at = built_at
        self.source = source
        self.skipped = skipped  # master rows that could not be read
        self.exchanges: tuple[str, ...] = tables["exchanges"]
        self.kinds: tuple[str, ...] = tables["kinds"]
        self.names: tuple[str, ...] = tables["names"]
        self.expiries: tuple[date | None, ...] = tables["expiries"]
        self._c = columns
        self._symbols = symbols
        self._tokens = tokens
        self._exchange_code = {code: i for i, code in enumerate(self.exchanges)}
        self._name_code = {name.upper(): i for i, name in enumerate(self.names)}
        self._expiry_code = {day: i for i, day in enumerate(self.expiries)}

    def __len__(self) -> int:
        return len(self._c["exchange"])

    # Rows -------------------------------------------------------------------------------------
    def symbol_of(self, row: int) -> str:
        at = self._c["symbol_at"]
        return self._symbols[at[row]:at[row + 1]]

    def token_of(self, row: int) -> str:
        at = self._c["token_at"]
        return self._tokens[at[row]:at[row + 1]]

    def exchange_of(self, row: int) -> str:
        return self.exchanges[self._c["exchange"][row]]

    def name_of(self, row: int) -> str:
        return self.names[self._c["name"][row]]

    def kind_of(self, row: int) -> str:
        return self.kinds[self._c["kind"][row]]

    def expiry_of(self, row: int) -> date | None:
        return self.expiries[self._c["expiry"][row]]

    def strike_of(self, row: int) -> int | None:
        strike = self._c["strike"][row]
        return None if strike == _NO_STRIKE else strike

    def symbol(self, row: int, freeze_qty: int | None = None) -> Symbol:
        c = self._c
        return Symbol(
            exchange=self.exchanges[c["exchange"][row]],
            token=self.token_of(row),
            tradingsymbol=self.symbol_of(row),
            name=self.names[c["name"][row]],
            instrumenttype=self.kinds[c["kind"][row]],
            lotsize=c["lotsize"][row],
            tick_size=c["tick"][row],
            expiry=self.expiries[c["expiry"][row]],
            strike=self.strike_of(row),
            option_type=_RIGHTS[c["right"][row]],  # type: ignore[arg-type]
            freeze_qty=freeze_qty,
        )

    # Lookups ----------------------------------------------------------------------------------
    def by_symbol(self, exchange: str, tradingsymbol: str) -> int | None:
        """The row of `tradingsymbol` on `exchange`, case-insensitive."""
        code = self._exchange_code.get(exchange.upper())
        if code is None:
            return None
        target = (code, tradingsymbol.upper())
        exch = self._c["exchange"]
        row = bisect_left(range(len(self)), target, key=lambda r: (exch[r], self.symbol_of(r).upper()))
        if row < len(self) and exch[row] == code and self.symbol_of(row).upper() == target[1]:
            return row
        return None

    def by_token(self, exchange: str, token: str) -> int | None:
        code = self._exchange_code.get(exchange.upper())
        if code is None:
            return None
        perm, exch = self._c["by_token"], self._c["exchange"]
        target = (code, str(token))
        at = bisect_left(perm, target, key=lambda r: (exch[r], self.token_of(r)))
        if at < len(perm) and (exch[perm[at]], self.token_of(perm[at])) == target:
            return perm[at]
        return None

    def name_known(self, name: str) -> bool:
        return name.upper() in self._name_code

    def rows_of(self, name: str, exchange: str, right: str | None = None, expiry: date | None = None) -> Sequence[int]:
        """Rows of one underlying on one exchange: its options of `right` (by expiry, then strike), or
        with `right=None` its cash row and futures (by expiry). `expiry` narrows to one expiry."""
        name_code = self._name_code.get(name.upper())
        exch_code = self._exchange_code.get(exchange.upper())
        if name_code is None or exch_code is None:
            return ()
        prefix: tuple[int, ...] = (name_code, exch_code, _RIGHTS.index(right))
        if expiry is not None:
            expiry_code = self._expiry_code.get(expiry)
            if expiry_code is None:
                return ()
            prefix += (expiry_code,)
        lo, hi = self._chain_span(prefix)
        return self._c["by_chain"][lo:hi]

    def option_expiries(self, name: str, exchange: str) -> list[date]:
        """Every expiry with a listed option (either right) of `name` on `exchange`, nearest first."""
        found: set[date] = set()
        for right in ("CE", "PE"):
            found.update(self._distinct_expiries(self.rows_of(name, exchange, right)))
        return sorted(found)

    def option_exchanges(self, name: str) -> list[str]:
        return [code for code in self.exchanges if self.rows_of(name, code, "CE") or self.rows_of(name, code, "PE")]

    def rows_of_kind(self, instrumenttype: str) -> list[int]:
        """Every row of one instrument type (a full scan: for small sets such as the indices)."""
        if instrumenttype not in self.kinds:
            return []
        code, kinds = self.kinds.index(instrumenttype), self._c["kind"]
        return [row for row in range(len(self)) if kinds[row] == code]

    def search(self, text: str, limit: int = 50) -> list[int]:
        """Rows whose tradingsymbol contains `text` or whose name or token equals it (case-insensitive),
        exact symbol and name matches first."""
        needle = text.strip().upper()
        if not needle:
            return []
        haystack, at = self._symbols.upper(), self._c["symbol_at"]
        hits: dict[int, int] = {}
        start = haystack.find(needle)
        while start != -1:
            row = bisect_right(at, start) - 1
            symbol = self.symbol_of(row).upper()
            if needle in symbol:
                hits.setdefault(row, 0 if symbol == needle else 2)
            start = haystack.find(needle, start + 1)
        name_code = self._name_code.get(needle)
        names = self._c["name"]
        for row in range(len(self)):
            if names[row] == name_code or self.token_of(row) == needle:
                hits[row] = min(hits.get(row, 1), 1)
        ranked = sorted(hits, key=lambda r: (hits[r], len(self.symbol_of(r)), self.symbol_of(r)))
        return ranked[:limit]

    def counts(self) -> dict[str, int]:
        """Rows per exchange segment, for the CLI."""
        tally = array("I", bytes(4 * len(self.exchanges)))
        for code in self._c["exchange"]:
            tally[code] += 1
        return {code: tally[i] for i, code in enumerate(self.exchanges)}

    def _chain_key(self, row: int) -> tuple[int, ...]:
        c = self._c
        return (c["name"][row], c["exchange"][row], c["right"][row], c["expiry"][row], c["strike"][row])

    def _chain_span(self, prefix: tuple[int, ...], lo: int = 0, hi: int | None = None) -> tuple[int, int]:
        perm, width = self._c["by_chain"], len(prefix)
        hi = len(perm) if hi is None else hi
        key = lambda r: self._chain_key(r)[:width]  # noqa: E731
        return bisect_left(perm, prefix, lo, hi, key=key), bisect_right(perm, prefix, lo, hi, key=key)

    def _distinct_expiries(self, rows: Sequence[int]) -> Iterator[date]:
        expiry = self._c["expiry"]
        at = 0
        while at < len(rows):
            code = expiry[rows[at]]
            if self.expiries[code] is not None:
                yield self.expiries[code]  # type: ignore[misc]
            at = bisect_right(rows, code, at, key=lambda r: expiry[r])

    # Building ---------------------------------------------------------------------------------
    @classmethod
    def build(cls, records: Iterable[MasterRecord], day: date, built_at: datetime, source: str,
              skipped: int = 0) -> MasterIndex:
        rows = list(records)
        tables = {
            "exchanges": tuple(sorted({r.exchange.upper() for r in rows})),
            "kinds": tuple(sorted({r.instrumenttype for r in rows})),
            "names": tuple(sorted({r.name for r in rows})),
            "expiries": (None, *sorted({r.expiry for r in rows if r.expiry is not None})),
        }
        code = {key: {value: i for i, value in enumerate(table)} for key, table in tables.items()}
        rows.sort(key=lambda r: (code["exchanges"][r.exchange.upper()], r.symbol.upper()))
        columns = {name: array(typecode) for name, typecode in _COLUMNS.items()}
        symbol_at, token_at = columns["symbol_at"], columns["token_at"]
        symbol_at.append(0)
        token_at.append(0)
        for r in rows:
            columns["exchange"].append(code["exchanges"][r.exchange.upper()])
            columns["kind"].append(code["kinds"][r.instrumenttype])
            columns["name"].append(code["names"][r.name])
            columns["expiry"].append(code["expiries"][r.expiry])
            columns["right"].append(_RIGHTS.index(r.option_type))
            columns["strike"].append(_NO_STRIKE if r.strike is None else r.strike)
            columns["lotsize"].append(r.lotsize)
            columns["tick"].append(r.tick_size)
            symbol_at.append(symbol_at[-1] + len(r.symbol))
            token_at.append(token_at[-1] + len(r.token))
        symbols = "".join(r.symbol for r in rows)
        tokens = "".join(r.token for r in rows)
        del rows
        index = cls(day, built_at, source, tables, columns, symbols, tokens, skipped)
        exch = columns["exchange"]
        columns["by_token"].extend(sorted(range(len(index)), key=lambda r: (exch[r], index.token_of(r))))
        columns["by_chain"].extend(sorted(range(len(index)), key=index._chain_key))
        return index

    # Persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        payload = msgspec.msgpack.encode({
            "date": self.date.isoformat(),
            "built_at": self.built_at.isoformat(),
            "source": self.source,
            "skipped": self.skipped,
            "byteorder": sys.byteorder,
            "itemsizes": {name: column.itemsize for name, column in self._c.items()},
            "exchanges": self.exchanges,
            "kinds": self.kinds,
            "names": self.names,
            "expiries": [day.isoformat() for day in self.expiries[1:]],  # type: ignore[union-attr]
            "symbols": self._symbols,
            "tokens": self._tokens,
            "columns": {name: column.tobytes() for name, column in self._c.items()},
        })
        envelope = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "crc32": zlib.crc32(payload), "payload": payload}
        atomic_write(path, msgspec.msgpack.encode(envelope))

    @classmethod
    def load(cls, path: str | Path) -> MasterIndex:
        """The index saved at `path`; IndexCorrupt when it is missing, damaged or from another version."""
        where = str(path)
        try:
            envelope = msgspec.msgpack.decode(Path(path).read_bytes())
        except FileNotFoundError:
            raise IndexCorrupt(where, "no index yet") from None
        except (OSError, msgspec.DecodeError) as exc:
            raise IndexCorrupt(where, f"unreadable: {exc}") from None
        if not isinstance(envelope, dict) or envelope.get("format") != INDEX_FORMAT:
            raise IndexCorrupt(where, "not a tickguard master index")
        if envelope.get("version") != INDEX_VERSION:
            raise IndexCorrupt(where, f"index version {envelope.get('version')!r}, expected {INDEX_VERSION}")
        payload = envelope.get("payload")
        if not isinstance(payload, bytes) or zlib.crc32(payload) != envelope.get("crc32"):
            raise IndexCorrupt(where, "checksum mismatch")
        try:
            return cls._from_payload(msgspec.msgpack.decode(payload))
        except (KeyError, TypeError, ValueError, msgspec.DecodeError) as exc:
            raise IndexCorrupt(where, f"inconsistent index: {exc}") from None

    @classmethod
    def _from_payload(cls, data: dict[str, Any]) -> MasterIndex:
        if data["byteorder"] != sys.byteorder:
            raise ValueError("written on a machine of another byte order")
        columns: dict[str, array] = {}
        for name, typecode in _COLUMNS.items():
            column = array(typecode)
            if column.itemsize != data["itemsizes"][name]:
                raise ValueError(f"column {name} has another item size")
            column.frombytes(data["columns"][name])
            columns[name] = column
        tables = {
            "exchanges": tuple(data["exchanges"]),
            "kinds": tuple(data["kinds"]),
            "names": tuple(data["names"]),
            "expiries": (None, *(date.fromisoformat(day) for day in data["expiries"])),
        }
        index = cls(date.fromisoformat(data["date"]), datetime.fromisoformat(data["built_at"]), data["source"],
                    tables, columns, data["symbols"], data["tokens"], data["skipped"])
        index._check()
        return index

    def _check(self) -> None:
        """Columns that do not fit together mean a damaged file, whatever its checksum said."""
        c, n = self._c, len(self)
        for name in ("kind", "name", "expiry", "right", "strike", "lotsize", "tick", "by_token", "by_chain"):
            if len(c[name]) != n:
                raise ValueError(f"column {name} has {len(c[name])} rows, expected {n}")
        for name, text in (("symbol_at", self._symbols), ("token_at", self._tokens)):
            if len(c[name]) != n + 1 or c[name][-1] != len(text) or c[name][0] != 0:
                raise ValueError(f"offsets {name} do not span their text")
        limits = {"exchange": len(self.exchanges), "kind": len(self.kinds), "name": len(self.names),
                  "expiry": len(self.expiries), "right": len(_RIGHTS), "by_token": n, "by_chain": n}
        for name, limit in limits.items():
            if n and max(c[name]) >= limit:
                raise ValueError(f"column {name} points outside its table")
