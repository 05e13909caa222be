"""`symbol_tokens.json`: what each ticker resolved to, kept across restarts (trading-semantics §7).

    {"version": 1, "master_date": "2025-11-24",
     "symbols": {"NSE:SBIN": {"token": "3045", "exchange": "NSE", "tradingsymbol": "SBIN-EQ",
                              "lotsize": 1, "tick_size": 5}, ...}}

Keys are the normalised query (`M_M`, `NSE:SBIN`, `NIFTY1!`, `NFO:NIFTY25NOV2524000CE`), so a key
can be resolved again; `tick_size` is in paise. Nothing in the file is trusted blindly:
- unreadable JSON or a wrong shape: moved aside to `<file>.corrupt` and rebuilt empty;
- another `version`: rebuilt empty;
- an older `master_date` than the index in force (or none): stale; its keys are kept as `pending`
  for the owner to resolve again against the new master, its entries are dropped;
- every entry is checked against the current index before use (`check`): the token must still be
  listed under the same tradingsymbol, and lot and tick sizes are taken from the index.
Writes are atomic (temporary file, fsync, rename): a crash mid-write leaves the old file whole.
"""
from __future__ import annotations

import contextlib
import logging
import os
from datetime import date
from pathlib import Path

import msgspec

from ._files import atomic_write
from .index import MasterIndex
from .model import Symbol

__all__ = ["SymbolCache", "CachedSymbol", "CACHE_VERSION"]

CACHE_VERSION = 1
SEARCHABLE = ("NSE", "BSE")  # segments whose symbols searchScrip may vouch for (cash: lot 1)
log = logging.getLogger("tickguard.symbols")


class CachedSymbol(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: str
    exchange: str
    tradingsymbol: str
    lotsize: int
    tick_size: int  # paise

    @classmethod
    def of(cls, symbol: Symbol) -> CachedSymbol:
        return cls(symbol.token, symbol.exchange, symbol.tradingsymbol, symbol.lotsize, symbol.tick_size)


class _CacheFile(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    master_date: date | None = None
    symbols: dict[str, CachedSymbol] = {}


class SymbolCache:
    """The cache file at `path`, read for the master of `master_date`."""

    def __init__(self, path: str | Path, master_date: date) -> None:
        self.path = Path(path)
        self.master_date = master_date
        self.entries: dict[str, CachedSymbol] = {}
        self.pending: list[str] = []  # keys of a stale file, to resolve again
        self.rebuilt: str | None = None  # why the file on disk was not used as it was
        self.dirty = False
        # key -> (the index, the entry, check's answer): an entry checked against this very index
        # (a day's master is never changed in place) needs no second look
        self._checked: dict[str, tuple[object, CachedSymbol, int]] = {}
        self._read()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def _read(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._rebuild("no cache file yet")
            return
        except OSError as exc:
            self._rebuild(f"unreadable: {exc}")
            return
        try:
            header = msgspec.json.decode(raw)
            if not isinstance(header, dict) or not isinstance(header.get("version"), int):
                raise msgspec.ValidationError("expected an object with a version")
            if header["version"] != CACHE_VERSION:
                self._rebuild(f"version {header['version']}, expected {CACHE_VERSION}")
                return
            stored = msgspec.json.decode(raw, type=_CacheFile)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._set_aside()
            self._rebuild(f"corrupt: {exc}")
            return
        if stored.master_date is None or stored.master_date < self.master_date:
            self.pending = list(stored.symbols)
            self._rebuild(f"stale: written for the master of {stored.master_date or 'an unknown day'}")
            return
        self.entries = dict(stored.symbols)

    def _rebuild(self, reason: str) -> None:
        self.rebuilt = reason
        self.entries = {}
        self.dirty = True
        log.info("symbol cache %s rebuilt: %s", self.path, reason)

    def _set_aside(self) -> None:
        """Keep the damaged file for a post-mortem; it is never read again."""
        with contextlib.suppress(OSError):
            os.replace(self.path, self.path.with_name(self.path.name + ".corrupt"))

    def get(self, key: str) -> CachedSymbol | None:
        return self.entries.get(key)

    def put(self, key: str, symbol: Symbol) -> None:
        entry = CachedSymbol.of(symbol)
        if self.entries.get(key) != entry:
            self.entries[key] = entry
            self.dirty = True

    def drop(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.dirty = True

    def check(self, key: str, index: MasterIndex) -> int | None:
        """The index row of a cached entry still listed as cached (None: drop it and resolve again).

        A cash entry the master does not list at all is one searchScrip vouched for today; it is kept
        (the whole file is rebuilt when the next master arrives) and reported as -1. Any other entry
        the master does not list as cached is wrong or gone, and dropped.
        """
        entry = self.entries.get(key)
        if entry is None:
            return None
        checked = self._checked.get(key)
        if checked is not None and checked[0] is index and checked[1] is entry:
            return checked[2]
        row = index.by_token(entry.exchange, entry.token)
        if row is None:
            if entry.exchange in SEARCHABLE and index.by_symbol(entry.exchange, entry.tradingsymbol) is None:
                self._checked[key] = (index, entry, -1)
                return -1
            self.drop(key)
            return None
        if index.symbol_of(row).upper() != entry.tradingsymbol.upper():
            self.drop(key)
            return None
        self.put(key, index.symbol(row))  # lot and tick sizes follow the master
        self._checked[key] = (index, self.entries[key], row)
        return row

    def encode(self) -> bytes:
        """The file's bytes as of now; marks the cache clean (the caller writes them)."""
        body = _CacheFile(CACHE_VERSION, self.master_date, dict(sorted(self.entries.items())))
        self.dirty = False
        return msgspec.json.format(msgspec.json.encode(body), indent=1) + b"\n"

    def save(self) -> None:
        """Write the file atomically, whether or not anything changed."""
        data = self.encode()
        try:
            atomic_write(self.path, data)
        except BaseException:
            self.dirty = True
            raise
