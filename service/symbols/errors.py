"""The symbol package's errors. Each carries the `query` it was asked and the `reason` it failed.

    SymbolError                 (query, reason)
    ├── UnknownSymbol           no such ticker or contract in the cache or the master
    ├── NoContracts             the underlying exists but lists no options / futures to choose from
    ├── ExpiryError             (+ expiry) unreadable, unlisted or already expired expiry
    ├── StrikeError             (+ strike) unreadable strike, or none listed where asked
    └── MasterError             the instrument master or its index; `query` is the URL or path
        ├── MasterUnavailable   the download failed or the file is not a master
        └── IndexCorrupt        the on-disk index cannot be trusted and must be rebuilt
"""
from __future__ import annotations

from service.errors import TickguardError

__all__ = [
    "SymbolError",
    "UnknownSymbol",
    "NoContracts",
    "ExpiryError",
    "StrikeError",
    "MasterError",
    "MasterUnavailable",
    "IndexCorrupt",
]


class SymbolError(TickguardError):
    def __init__(self, query: str, reason: str) -> None:
        self.query = query
        self.reason = reason
        super().__init__(f"{query!r}: {reason}")


class UnknownSymbol(SymbolError):
    pass


class NoContracts(SymbolError):
    pass


class ExpiryError(SymbolError):
    def __init__(self, query: str, reason: str, expiry: str) -> None:
        self.expiry = expiry
        super().__init__(query, reason)


class StrikeError(SymbolError):
    def __init__(self, query: str, reason: str, strike: str) -> None:
        self.strike = strike
        super().__init__(query, reason)


class MasterError(SymbolError):
    pass


class MasterUnavailable(MasterError):
    pass


class IndexCorrupt(MasterError):
    pass
