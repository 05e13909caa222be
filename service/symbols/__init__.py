"""Symbols: the instrument master, its compact daily index, `symbol_tokens.json` and resolution.

    master.py    download (streamed, with progress), parse, daily refresh of the index
    index.py     MasterIndex: the master as compact columns, saved and checked on disk
    resolve.py   SymbolResolver: tickers, contracts, options by strike and expiry (pure)
    cache.py     SymbolCache: symbol_tokens.json, atomic, rebuilt when corrupt or stale
    book.py      SymbolBook: what the service uses (index + resolver + cache + searchScrip)
    searches.py  BackgroundSearches: searchScrip off the alert path, deduplicated and bounded
    freeze.py    freeze quantities from a settings file
    cli.py       `tickguard symbols refresh | find QUERY`

See docs/symbols.md.
"""
from __future__ import annotations

from .book import Search, SymbolBook
from .cache import CachedSymbol, SymbolCache
from .errors import (
    ExpiryError,
    IndexCorrupt,
    MasterError,
    MasterUnavailable,
    NoContracts,
    StrikeError,
    SymbolError,
    UnknownSymbol,
)
from .freeze import load_freeze_qty
from .index import MasterIndex
from .master import ensure_index, master_day, master_url, parse_master, refresh_index
from .model import IST, Symbol
from .resolve import SymbolResolver

__all__ = [
    "CachedSymbol",
    "ExpiryError",
    "IST",
    "IndexCorrupt",
    "MasterError",
    "MasterIndex",
    "MasterUnavailable",
    "NoContracts",
    "Search",
    "StrikeError",
    "Symbol",
    "SymbolBook",
    "SymbolCache",
    "SymbolError",
    "SymbolResolver",
    "UnknownSymbol",
    "ensure_index",
    "load_freeze_qty",
    "master_day",
    "master_url",
    "parse_master",
    "refresh_index",
]
