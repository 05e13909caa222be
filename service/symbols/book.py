"""The service's symbol book: today's index, the resolver, `symbol_tokens.json` and the broker fallback.

    book = SymbolBook(settings, search=adapter.search_scrip)
    await book.open()                        # load or download today's index, check the cache file
    await book.equity("NSE:M_M")             # cache -> master; never waits on the broker
    await book.option("NIFTY", price=2_501_000, right="CE", strike="OTM1")
    await book.close()                       # stop background work (a search, a refresh)

A lookup never waits on the network once the book is open. A stale index (a new master day) is
refreshed in the background, one refresh at a time, while the old index keeps answering; after a
failed refresh the next attempt waits `RETRY_S`. File and subprocess work runs off the event loop.

searchScrip fallback: `search(exchange, text) -> [{"exchange", "tradingsymbol", "symboltoken"}]`,
the broker adapter's call, injected so this package does no broker I/O. SmartAPI paces it at about
one call a second, so `equity` never waits for it: a ticker neither the cache nor the index knows
raises `UnknownSymbol` at once, naming the ticker and saying that a search was started in the
background (searches.py: deduplicated, bounded, off the alert path). If the search finds the symbol
it is cached, and the next lookup of that ticker resolves at once. It answers only for cash
equities: its rows carry no lot or tick size, and guessing a derivative's lot size is not an option.
A cash symbol it finds gets lot 1 and tick 5 paise (a ₹0.05 multiple is a valid price whether the
symbol's tick is ₹0.01 or ₹0.05), is marked `source="search"` and is cached until the next master.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._files import atomic_write
from .cache import SymbolCache
from .errors import SymbolError, UnknownSymbol
from .freeze import load_freeze_qty
from .index import MasterIndex
from .master import Progress, ensure_index, is_stale, master_url, refresh_index
from .model import Symbol, ist_now
from .resolve import SymbolResolver
from .searches import BackgroundSearches, Requested

__all__ = ["SymbolBook", "Search", "SEARCH_TICK_PAISE"]

log = logging.getLogger("tickguard.symbols")

Search = Callable[[str, str], Awaitable[list[dict[str, Any]]]]
SEARCH_TICK_PAISE = 5
RETRY_S = 600.0


class SymbolBook:
    def __init__(self, settings, *, search: Search | None = None, now: Callable[[], datetime] = ist_now,
                 isolated: bool = True) -> None:
        self.url = master_url(settings)
        self.symbols_dir = Path(settings.symbols_dir)
        self.cache_path = Path(settings.symbol_tokens_file)
        self.refresh_hour = settings.symbols_refresh_hour
        self.freeze_qty = load_freeze_qty(settings.freeze_qty_file)
        self._search = search
        self._now = now
        self._isolated = isolated
        self._lock = asyncio.Lock()
        self._writing = asyncio.Lock()
        self._retry_at = 0.0
        self._resolver: SymbolResolver | None = None
        self._cache: SymbolCache | None = None
        self._refreshing: asyncio.Task | None = None
        self.searches = BackgroundSearches(self._search_in_background) if search is not None else None

    @property
    def index(self) -> MasterIndex:
        return self.resolver.index

    @property
    def resolver(self) -> SymbolResolver:
        if self._resolver is None:
            raise SymbolError(self.url, "the symbol book is not open: await open() first")
        return self._resolver

    @property
    def cache(self) -> SymbolCache:
        if self._cache is None:
            raise SymbolError(str(self.cache_path), "the symbol book is not open: await open() first")
        return self._cache

    async def open(self, progress: Progress | None = None) -> MasterIndex:
        """Today's index (downloaded when missing, corrupt or stale) and a checked cache file."""
        async with self._lock:
            index = await ensure_index(self.url, self.symbols_dir, now=self._now(), refresh_hour=self.refresh_hour,
                                       progress=progress, isolated=self._isolated)
            await self._use(index)
            return index

    async def refresh(self, progress: Progress | None = None) -> MasterIndex:
        """Download the master now, whatever the age of the index."""
        async with self._lock:
            index = await refresh_index(self.url, self.symbols_dir, now=self._now(), refresh_hour=self.refresh_hour,
                                        progress=progress, isolated=self._isolated)
            await self._use(index)
            return index

    async def equity(self, ticker: str, *, search: bool = True) -> Symbol:
        """A ticker as TradingView or Chartink send it (see resolve.SymbolResolver.equity), from the
        cache and the index only. A cash ticker neither knows raises `UnknownSymbol` at once, naming
        the ticker; with `search` (and a broker search given) searchScrip is asked in the background,
        and the reason says so."""
        key = _key(ticker)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        try:
            symbol = self.resolver.equity(ticker)
        except UnknownSymbol as missed:
            raise self._unknown(key, ticker, missed, search) from None
        return await self._remember(key, symbol)

    async def contract(self, tradingsymbol: str) -> Symbol:
        key = _key(tradingsymbol)
        return await self._cached(key) or await self._remember(key, self.resolver.contract(tradingsymbol))

    async def option(self, underlying: str, *, price: int, right: str, strike: str | int | float | Decimal = "ATM",
                     expiry: str = "current", exchange: str | None = None) -> Symbol:
        """The option chosen from the master (never the cache: the choice depends on price and time)."""
        await self._fresh()
        symbol = self.resolver.option(underlying, price=price, right=right, strike=strike, expiry=expiry, exchange=exchange)
        return await self._remember(symbol.key, symbol)

    def find(self, query: str, limit: int = 20) -> list[Symbol]:
        """What `query` resolves to, then the master's symbols containing it."""
        found: list[Symbol] = []
        try:
            found.append(self.resolver.lookup(query))
        except SymbolError:
            pass
        for row in self.index.search(query.split(":", 1)[-1], limit):
            symbol = self.resolver.symbol_at(row)
            if symbol not in found:
                found.append(symbol)
        return found[:limit]

    async def settled(self) -> None:
        """Wait for background work started so far: a refresh of the index, the symbol searches."""
        if self._refreshing is not None:
            await asyncio.gather(self._refreshing, return_exceptions=True)
        if self.searches is not None:
            await self.searches.idle()

    async def close(self) -> None:
        """Stop background work now (never waits on the broker or a download)."""
        if self.searches is not None:
            await self.searches.close()
        refreshing, self._refreshing = self._refreshing, None
        if refreshing is not None and not refreshing.done():
            refreshing.cancel()
            await asyncio.gather(refreshing, return_exceptions=True)

    # Internals --------------------------------------------------------------------------------
    async def _use(self, index: MasterIndex) -> None:
        resolver = SymbolResolver(index, self.freeze_qty, now=self._now)
        cache = await asyncio.to_thread(SymbolCache, self.cache_path, index.date)
        for key in cache.pending:  # a stale file: resolve its keys again on the new master
            try:
                cache.put(key, resolver.lookup(key))
            except SymbolError as exc:
                log.info("symbol cache: %s no longer resolves: %s", key, exc.reason)
        cache.pending = []
        self._resolver, self._cache = resolver, cache
        await self._save_cache()

    async def _fresh(self) -> None:
        if self._resolver is None:  # used before open(): the service opens the book before it serves
            await self.open()
            return
        if not is_stale(self.index, self._now(), self.refresh_hour) or time.monotonic() < self._retry_at:
            return
        if self._refreshing is None or self._refreshing.done():  # the old index answers meanwhile
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh_stale(), name="symbols-refresh")

    async def _refresh_stale(self) -> None:
        try:
            async with self._lock:
                if not is_stale(self.index, self._now(), self.refresh_hour):
                    return  # another task refreshed it meanwhile
                index = await ensure_index(self.url, self.symbols_dir, now=self._now(), refresh_hour=self.refresh_hour,
                                           isolated=self._isolated)
                if is_stale(index, self._now(), self.refresh_hour):
                    self._retry_at = time.monotonic() + RETRY_S
                await self._use(index)
        except Exception as exc:  # noqa: BLE001 - in the background: the old index keeps answering
            self._retry_at = time.monotonic() + RETRY_S
            log.warning("instrument master not refreshed, keeping the one for %s: %s", self.index.date,
                        getattr(exc, "reason", None) or exc)

    async def _cached(self, key: str) -> Symbol | None:
        await self._fresh()
        cache, resolver = self.cache, self.resolver
        row = cache.check(key, self.index)
        if row is None:
            return None
        if row >= 0:
            symbol = resolver.symbol_at(row)
            if not resolver.is_trading(symbol):
                cache.drop(key)  # NIFTY1! after its expiry: resolve again
                return None
        else:
            entry = cache.get(key)
            assert entry is not None
            symbol = Symbol(entry.exchange, entry.token, entry.tradingsymbol, entry.tradingsymbol.removesuffix("-EQ"),
                            "", entry.lotsize, entry.tick_size, source="search")
        await self._save_cache()
        return symbol

    async def _remember(self, key: str, symbol: Symbol) -> Symbol:
        self.cache.put(key, symbol)
        await self._save_cache()
        return symbol

    async def _save_cache(self) -> None:
        """Encode on the loop (the entries change there), write in a thread, one write at a time so
        an older snapshot never lands after a newer one."""
        cache = self.cache
        if not cache.dirty:
            return
        async with self._writing:
            if not cache.dirty:
                return
            data = cache.encode()
            try:
                await asyncio.to_thread(atomic_write, cache.path, data)
            except OSError as exc:  # the cache is an optimisation: a full disk must not stop trading
                cache.dirty = True
                log.warning("symbol cache %s not written: %s", cache.path, exc)

    def _unknown(self, key: str, ticker: str, missed: UnknownSymbol, search: bool) -> UnknownSymbol:
        """The error for a ticker the index does not know; asks for a background search when one may help."""
        name = " ".join(str(ticker).split())
        if not search or self.searches is None or not _search_markets(ticker):
            return UnknownSymbol(ticker, f"{name}: {missed.reason}")
        outcome = self.searches.request(key, ticker)
        later = f"if it finds {name}, it is kept in {self.cache_path.name} and the next alert for it resolves at once"
        if outcome is Requested.STARTED:
            tail = f"a broker search (searchScrip) was started in the background; {later}"
        elif outcome is Requested.RUNNING:
            tail = f"a broker search (searchScrip) for it is already running in the background; {later}"
        elif outcome is Requested.MISSED:
            ago = self.searches.missed_ago(key) or 0.0
            tail = (f"the broker's search (searchScrip) did not find it either {ago:.0f} s ago "
                    f"(it is asked again {self.searches.miss_hold_s:.0f} s after that)")
        elif outcome is Requested.FULL:
            tail = f"the broker's search (searchScrip) was not asked: {len(self.searches)} searches are already waiting"
        else:
            tail = "the broker's search (searchScrip) was not asked: the service is stopping"
        return UnknownSymbol(ticker, f"{name}: {missed.reason}; {tail}")

    async def _search_in_background(self, key: str, ticker: str) -> bool:
        """searchScrip for `ticker` (BackgroundSearches' worker): a find is cached under `key`."""
        found = await self._ask_broker(ticker)
        if found is None:
            log.info("searchScrip found no cash symbol for %s either", ticker)
            return False
        await self._remember(key, found)
        log.info("searchScrip found %s: %s %s, token %s (kept for this master day)", ticker, found.exchange,
                 found.tradingsymbol, found.token)
        return True

    async def _ask_broker(self, ticker: str) -> Symbol | None:
        """The cash symbol searchScrip lists for `ticker`, None when it lists none; the broker's errors raise."""
        assert self._search is not None
        body = ticker.strip().upper().rpartition(":")[2].strip()
        for market in _search_markets(ticker):
            rows = await self._search(market, body)
            wanted = {body, f"{body}-EQ"} if market == "NSE" else {body.removesuffix("-EQ")}
            for row in rows or ():
                if str(row.get("tradingsymbol", "")).upper() in wanted and row.get("symboltoken"):
                    return Symbol(market, str(row["symboltoken"]), str(row["tradingsymbol"]), body.removesuffix("-EQ"),
                                  "", 1, SEARCH_TICK_PAISE, source="search")
        return None


def _search_markets(ticker: str) -> list[str]:
    """Where searchScrip may vouch for `ticker`: cash NSE and BSE (the prefixed one), never a `NAMEn!` future."""
    exchange, _, body = str(ticker).strip().upper().rpartition(":")
    body = body.strip()
    if not body or body.endswith("!") or " " in body:
        return []
    exchange = exchange.strip()
    if not exchange:
        return ["NSE", "BSE"]
    return [exchange] if exchange in ("NSE", "BSE") else []


def _key(text: str) -> str:
    """The cache key of a query: upper case, blanks squeezed (`nse: sbin` -> `NSE:SBIN`)."""
    exchange, _, body = str(text).strip().upper().rpartition(":")
    body = " ".join(body.split())
    return f"{exchange.strip()}:{body}" if exchange else body
