"""SmartAPI's instrument master: download, parse, keep as a compact on-disk index, refresh daily.

- Download: streamed with httpx to a temporary file beside the index (the real file is ~30 MB;
  it never sits in memory as one string), reporting `(bytes_received, bytes_expected | None)` to a
  progress callback. The URL is `INSTRUMENT_MASTER_URL`, or Angel One's in live mode, or the paper
  exchange's in paper mode.
- Parse: msgspec decodes the rows into small structs, every value is checked and converted (strike
  from "×100, 6 decimals" — ×10^7 for CDS — to paise; tick size to paise; `DDMMMYYYY` expiries to
  dates), unreadable rows are counted and skipped, then `MasterIndex.build` packs them into columns.
- Freshness: a master is for a *master day*: the IST date, counted from `SYMBOLS_REFRESH_HOUR`
  (default 08:00 IST, before the pre-open, once Angel One has regenerated the file). A file fetched at
  02:00 is still yesterday's, so it is dated yesterday and replaced after 08:00. The index is stale
  when its master day is before the current one.
- Never trust a bad index: a missing, corrupt or other-version index is rebuilt from a fresh
  download. A stale index whose refresh fails is still served (with a warning): yesterday's master
  lacks at most today's new contracts, and expired ones are filtered out by date at resolution.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import msgspec

from service.live_data.settings import on_angel_one

from .errors import IndexCorrupt, MasterUnavailable
from .index import MasterIndex, MasterRecord
from .model import IST, ist_now

__all__ = [
    "LIVE_MASTER_URL",
    "MASTER_PATH",
    "INDEX_FILE",
    "Progress",
    "master_url",
    "master_day",
    "is_stale",
    "download_master",
    "parse_master",
    "read_master",
    "refresh_index",
    "load_index",
    "ensure_index",
]

log = logging.getLogger("tickguard.symbols")

MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
LIVE_MASTER_URL = "https://margincalculator.angelbroking.com" + MASTER_PATH
INDEX_FILE = "master.idx"
CHUNK = 1 << 16
# Strikes are written ×100 (paise) except currency options, written ×10^7.
_STRIKE_DIVISOR = {"CDS": 100_000}

Progress = Callable[[int, int | None], None]


def master_url(settings) -> str:
    """INSTRUMENT_MASTER_URL, else the live file in live mode, else the market data's: with MARKET_DATA=live
    the live file (or, for a MARKET_DATA_ROOT off Angel One's hosts, the file beside it), else the paper
    exchange's copy. Tokens must be the market data's: they are what the ticks are keyed by."""
    if settings.instrument_master_url:
        return settings.instrument_master_url
    if settings.market_data == "live":
        root = settings.market_data_root
        return root.rstrip("/") + MASTER_PATH if root and not on_angel_one(root) else LIVE_MASTER_URL
    return LIVE_MASTER_URL if settings.live else settings.paper_base_url + MASTER_PATH


def master_day(moment: datetime, refresh_hour: int = 8) -> date:
    """The master day `moment` falls in: the IST date, starting at `refresh_hour`."""
    return (moment.astimezone(IST) - timedelta(hours=refresh_hour)).date()


def is_stale(index: MasterIndex, now: datetime, refresh_hour: int = 8) -> bool:
    return index.date < master_day(now, refresh_hour)


class _Row(msgspec.Struct, gc=False):
    token: str
    symbol: str
    name: str
    expiry: str
    strike: str
    lotsize: str
    instrumenttype: str
    exch_seg: str
    tick_size: str


def _paise(text: str, divisor: int = 1) -> int:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a number: {text!r}")
    return round(value / divisor)


def _records(rows: list[_Row]) -> Iterator[MasterRecord | None]:
    expiries: dict[str, date | None] = {"": None}
    for row in rows:
        try:
            exchange = row.exch_seg.strip().upper()
            kind = row.instrumenttype.strip().upper()
            symbol = row.symbol.strip()
            if not exchange or not symbol or not row.token.strip():
                raise ValueError("blank exchange, symbol or token")
            expiry = expiries.get(row.expiry)
            if expiry is None and row.expiry not in expiries:
                expiry = expiries[row.expiry] = datetime.strptime(row.expiry.strip().title(), "%d%b%Y").date()
            right = symbol[-2:].upper() if kind.startswith("OPT") else None
            if right is not None and right not in ("CE", "PE"):
                raise ValueError(f"option without CE/PE: {symbol}")
            strike = _paise(row.strike, _STRIKE_DIVISOR.get(exchange, 1)) if right else None
            yield MasterRecord(
                exchange, row.token.strip(), symbol, row.name.strip(), kind, expiry,
                strike, right, int(float(row.lotsize or 0)), max(0, _paise(row.tick_size or "0")),
            )
        except ValueError as exc:
            log.debug("master row skipped: %s (%r)", exc, row)
            yield None


def parse_master(raw: bytes, day: date, source: str = "", built_at: datetime | None = None) -> MasterIndex:
    """The index of one master file's bytes; MasterUnavailable when they are not a master at all."""
    try:
        rows = msgspec.json.decode(raw, type=list[_Row])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise MasterUnavailable(source or "master", f"not an instrument master: {exc}") from None
    del raw
    records: list[MasterRecord] = []
    skipped = 0
    for record in _records(rows):
        if record is None:
            skipped += 1
        else:
            records.append(record)
    del rows
    if not records:
        raise MasterUnavailable(source or "master", "the master lists no instruments")
    return MasterIndex.build(records, day, built_at or ist_now(), source, skipped)


def read_master(path: str | Path, day: date, source: str = "") -> MasterIndex:
    return parse_master(Path(path).read_bytes(), day, source or str(path))


async def download_master(url: str, dest: str | Path, *, progress: Progress | None = None,
                          client: httpx.AsyncClient | None = None, timeout: float = 60.0) -> int:
    """Stream the master at `url` into `dest` (replaced only once complete); the bytes written."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    own = client is None
    client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise MasterUnavailable(url, f"HTTP {response.status_code}")
            expected = _content_length(response)
            written = await asyncio.to_thread(_open_partial, partial)
            try:
                async for chunk in response.aiter_bytes(CHUNK):
                    await asyncio.to_thread(written.write, chunk)
                    if progress is not None:
                        progress(response.num_bytes_downloaded, expected)
                await asyncio.to_thread(_close_synced, written)
            except BaseException:
                written.close()
                partial.unlink(missing_ok=True)
                raise
    except httpx.HTTPError as exc:
        raise MasterUnavailable(url, f"download failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        if own:
            await client.aclose()
    size = partial.stat().st_size
    if size == 0:
        partial.unlink(missing_ok=True)
        raise MasterUnavailable(url, "empty response")
    os.replace(partial, dest)
    return size


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _open_partial(path: Path):
    return open(path, "wb")


def _close_synced(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


async def refresh_index(url: str, symbols_dir: str | Path, *, now: datetime | None = None, refresh_hour: int = 8,
                        progress: Progress | None = None, client: httpx.AsyncClient | None = None,
                        isolated: bool = True) -> MasterIndex:
    """Download the master, build its index and save it in `symbols_dir`; the new index.

    `isolated` parses in a child process: parsing 150 000 rows briefly needs ~70 MB the service
    would otherwise keep as heap after its daily refresh; the service only loads the ~12 MB index.
    """
    symbols_dir = Path(symbols_dir)
    fetched_at = now or ist_now()
    raw_file = symbols_dir / "OpenAPIScripMaster.json"
    await download_master(url, raw_file, progress=progress, client=client)
    day = master_day(fetched_at, refresh_hour)
    try:
        if isolated:
            await _build_in_child(raw_file, symbols_dir / INDEX_FILE, day, url)
            index = await asyncio.to_thread(load_index, symbols_dir)
        else:
            index = await asyncio.to_thread(read_master, raw_file, day, url)
            await asyncio.to_thread(index.save, symbols_dir / INDEX_FILE)
    finally:
        raw_file.unlink(missing_ok=True)
    log.info("instrument master %s: %d instruments (%d rows skipped) for %s", url, len(index), index.skipped, day)
    return index


async def _build_in_child(raw_file: Path, index_file: Path, day: date, url: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.symbols.master", str(raw_file), str(index_file), day.isoformat(), url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, errors = await child.communicate()
    except asyncio.CancelledError:  # shutting down: the child goes too, and is reaped before the loop closes
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await asyncio.shield(child.wait())
        raise
    if child.returncode != 0:
        lines = errors.decode(errors="replace").strip().splitlines()
        raise MasterUnavailable(url, lines[-1] if lines else f"index build exited with {child.returncode}")


def load_index(symbols_dir: str | Path) -> MasterIndex:
    return MasterIndex.load(Path(symbols_dir) / INDEX_FILE)


async def ensure_index(url: str, symbols_dir: str | Path, *, now: datetime | None = None, refresh_hour: int = 8,
                       progress: Progress | None = None, client: httpx.AsyncClient | None = None,
                       isolated: bool = True) -> MasterIndex:
    """Today's index: the saved one when fresh, else a new download. A stale index is kept, with a
    warning, only when the download fails; a corrupt one never is."""
    now = now or ist_now()
    try:
        index = await asyncio.to_thread(load_index, symbols_dir)
    except IndexCorrupt as exc:
        log.info("instrument index rebuilt: %s", exc.reason)
        return await refresh_index(url, symbols_dir, now=now, refresh_hour=refresh_hour, progress=progress,
                                   client=client, isolated=isolated)
    if not is_stale(index, now, refresh_hour):
        return index
    try:
        return await refresh_index(url, symbols_dir, now=now, refresh_hour=refresh_hour, progress=progress,
                                   client=client, isolated=isolated)
    except MasterUnavailable as exc:
        log.warning("instrument master not refreshed, keeping the one for %s: %s", index.date, exc.reason)
        return index


def _main(argv: list[str]) -> int:
    """`python -m service.symbols.master RAW_FILE INDEX_FILE YYYY-MM-DD SOURCE`: build one index."""
    raw_file, index_file, day, source = argv
    try:
        read_master(raw_file, date.fromisoformat(day), source).save(index_file)
    except MasterUnavailable as exc:
        print(exc.reason, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
