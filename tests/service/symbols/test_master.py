from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from service.settings import load_settings
from service.symbols import IndexCorrupt, MasterIndex, MasterUnavailable, ensure_index, master_day, parse_master
from service.symbols.index import INDEX_FORMAT
from service.symbols.master import INDEX_FILE, LIVE_MASTER_URL, download_master, is_stale, master_url, refresh_index

from .conftest import DAY, ist

ROW = {
    "token": "1", "symbol": "X", "name": "X", "expiry": "", "strike": "-1.000000", "lotsize": "1",
    "instrumenttype": "", "exch_seg": "NSE", "tick_size": "5.000000",
}


def rows(*changes: dict[str, str]) -> bytes:
    return msgspec.json.encode([{**ROW, **change} for change in changes])


# Parsing ----------------------------------------------------------------------------------------
def test_every_paper_row_is_indexed_with_its_values(universe, master_index):
    assert len(master_index) == len(universe) and master_index.skipped == 0
    for instrument in universe.instruments:
        row = master_index.by_token(instrument.exchange, instrument.token)
        assert row is not None
        symbol = master_index.symbol(row)
        assert (symbol.tradingsymbol, symbol.name, symbol.instrumenttype) == (instrument.symbol, instrument.name, instrument.instrumenttype)
        assert (symbol.lotsize, symbol.tick_size, symbol.expiry) == (instrument.lotsize, instrument.tick_paise, instrument.expiry)
        assert (symbol.strike, symbol.option_type) == (instrument.strike_paise, instrument.option_type)
        assert master_index.by_symbol(instrument.exchange, instrument.symbol.lower()) == row


def test_strikes_ticks_and_expiries_convert_to_paise_and_dates():
    index = parse_master(rows(
        {"token": "10", "symbol": "NIFTY28NOV2424000CE", "name": "NIFTY", "expiry": "28NOV2024",
         "strike": "2400000.000000", "lotsize": "25", "instrumenttype": "OPTIDX", "exch_seg": "NFO"},
        {"token": "11", "symbol": "SBIN28NOV24812.5PE", "name": "SBIN", "expiry": "28NOV2024",
         "strike": "81250.000000", "lotsize": "750", "instrumenttype": "OPTSTK", "exch_seg": "NFO", "tick_size": "10.000000"},
        {"token": "12", "symbol": "USDINR25OCT8325CE", "name": "USDINR", "expiry": "25OCT2024",
         "strike": "832500000.000000", "instrumenttype": "OPTCUR", "exch_seg": "CDS", "tick_size": "0.250000"},
        {"token": "99926000", "symbol": "Nifty 50", "name": "NIFTY", "strike": "0", "instrumenttype": "AMXIDX",
         "tick_size": "0.000000"},
    ), DAY)
    nifty = index.symbol(index.by_token("NFO", "10"))
    assert (nifty.strike, nifty.option_type, nifty.expiry, nifty.lotsize) == (2_400_000, "CE", date(2024, 11, 28), 25)
    sbin = index.symbol(index.by_token("NFO", "11"))
    assert (sbin.strike, sbin.tick_size) == (81_250, 10)
    assert index.symbol(index.by_token("CDS", "12")).strike == 8_325  # x10^7 in the master
    spot = index.symbol(index.by_token("nse", "99926000"))
    assert (spot.strike, spot.tick_size, spot.is_index) == (None, 0, True)


def test_unreadable_rows_are_skipped_and_counted():
    index = parse_master(rows(
        {"token": "1", "symbol": "GOOD-EQ"},
        {"token": "2", "symbol": "BADLOT-EQ", "lotsize": "many"},
        {"token": "3", "symbol": "BADEXP28NOV24FUT", "expiry": "2024-11-28", "instrumenttype": "FUTSTK"},
        {"token": "4", "symbol": "NORIGHT28NOV24100XX", "expiry": "28NOV2024", "instrumenttype": "OPTSTK"},
        {"token": "", "symbol": "NOTOKEN-EQ"},
        {"token": "6", "symbol": "BADSTRIKE28NOV24100CE", "expiry": "28NOV2024", "instrumenttype": "OPTSTK", "strike": "nan"},
    ), DAY)
    assert len(index) == 1 and index.skipped == 5


@pytest.mark.parametrize("raw", [b"", b"<html>maintenance</html>", b"{}", b"[1, 2]", b"[]", b'[{"token": "1"}]'])
def test_a_file_that_is_not_a_master_is_refused(raw):
    with pytest.raises(MasterUnavailable):
        parse_master(raw, DAY, "http://example/master.json")


def test_the_index_is_compact(master_index):
    # Columns and packed text, not a dict per row: well under 100 bytes a row (a dict is ~1 kB).
    size = sum(sys.getsizeof(column) for column in master_index._c.values())
    size += sys.getsizeof(master_index._symbols) + sys.getsizeof(master_index._tokens)
    assert size / len(master_index) < 100


def test_search_ranks_exact_symbols_and_names_first(master_index):
    hits = [master_index.symbol_of(r) for r in master_index.search("sbin-eq")]
    assert hits == ["SBIN-EQ"]
    by_name = [master_index.symbol_of(r) for r in master_index.search("SBIN", limit=3)]
    assert by_name[0] == "SBIN" and all("SBIN" in s for s in by_name)
    assert [master_index.symbol_of(r) for r in master_index.search("99926000")] == ["Nifty 50"]
    assert master_index.search("  ") == []


# On disk ----------------------------------------------------------------------------------------
def test_saved_index_loads_back_identical(master_index, tmp_path):
    path = tmp_path / INDEX_FILE
    master_index.save(path)
    loaded = MasterIndex.load(path)
    assert (loaded.date, loaded.source, len(loaded)) == (master_index.date, master_index.source, len(master_index))
    assert all(loaded.symbol(r) == master_index.symbol(r) for r in range(len(master_index)))
    assert loaded.option_expiries("NIFTY", "NFO") == master_index.option_expiries("NIFTY", "NFO")


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "flipped":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "garbage":
        path.write_bytes(b"not an index at all")
    elif how == "other format":
        path.write_bytes(msgspec.msgpack.encode({"format": "something-else", "version": 1}))
    elif how == "other version":
        envelope = msgspec.msgpack.decode(bytes(data))
        path.write_bytes(msgspec.msgpack.encode({**envelope, "version": 99}))
    elif how == "inconsistent":
        envelope = msgspec.msgpack.decode(bytes(data))
        payload = msgspec.msgpack.decode(envelope["payload"])
        payload["columns"]["lotsize"] = payload["columns"]["lotsize"][:-4]
        raw = msgspec.msgpack.encode(payload)
        import zlib

        path.write_bytes(msgspec.msgpack.encode({"format": INDEX_FORMAT, "version": 1, "crc32": zlib.crc32(raw), "payload": raw}))


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage", "other format", "other version", "inconsistent"])
def test_a_damaged_index_is_never_trusted(master_index, tmp_path, how):
    path = tmp_path / INDEX_FILE
    master_index.save(path)
    _damage(path, how)
    with pytest.raises(IndexCorrupt) as caught:
        MasterIndex.load(path)
    assert caught.value.query == str(path) and caught.value.reason


# Freshness --------------------------------------------------------------------------------------
@pytest.mark.parametrize("hour, minute, expected", [
    (0, 30, DAY - timedelta(days=1)), (7, 59, DAY - timedelta(days=1)), (8, 0, DAY), (23, 59, DAY),
])
def test_the_master_day_starts_at_the_refresh_hour(hour, minute, expected):
    assert master_day(ist(hour=hour, minute=minute)) == expected
    assert master_day(ist(hour=hour, minute=minute), refresh_hour=0) == DAY


def test_stale_once_the_next_master_day_begins(master_index):
    assert not is_stale(master_index, ist(DAY + timedelta(days=1), 7, 59))
    assert is_stale(master_index, ist(DAY + timedelta(days=1), 8, 0))


def test_master_url_follows_the_mode(tmp_path):
    paper = load_settings({"PAPER_URL": "http://127.0.0.1:9999/"}, env_file=str(tmp_path / "none"))
    assert master_url(paper) == "http://127.0.0.1:9999/OpenAPI_File/files/OpenAPIScripMaster.json"
    live = load_settings({"TICKGUARD_MODE": "live", "SMARTAPI_USER": "A1", "SMARTAPI_PASS": "1", "SMARTAPI_KEY": "k", "WEBHOOK_SECRET": "a-live-webhook-secret", "OPERATORS_FILE": "operators.json",
                          "TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, env_file=str(tmp_path / "none"))
    assert master_url(live) == LIVE_MASTER_URL
    own = load_settings({"INSTRUMENT_MASTER_URL": "https://mirror.example/m.json"}, env_file=str(tmp_path / "none"))
    assert master_url(own) == "https://mirror.example/m.json"


# Download ---------------------------------------------------------------------------------------
async def test_download_reports_progress_to_the_full_size(master_server, tmp_path):
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "master.json"
    size = await download_master(master_server.url, dest, progress=lambda got, total: seen.append((got, total)))
    assert size == len(master_server.body) == dest.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert [got for got, _ in seen] == sorted(got for got, _ in seen)
    assert not (tmp_path / "master.json.part").exists()


async def test_download_without_a_length_reports_bytes_only(master_server, tmp_path):
    master_server.chunked = True
    seen: list[tuple[int, int | None]] = []
    await download_master(master_server.url, tmp_path / "m.json", progress=lambda got, total: seen.append((got, total)))
    assert seen[-1] == (len(master_server.body), None) and len(seen) > 1


async def test_a_failed_download_keeps_the_previous_file(master_server, tmp_path):
    dest = tmp_path / "master.json"
    dest.write_bytes(b"previous")
    master_server.status = 503
    with pytest.raises(MasterUnavailable, match="HTTP 503"):
        await download_master(master_server.url, dest)
    with pytest.raises(MasterUnavailable, match="download failed"):
        await download_master("http://127.0.0.1:9/nothing-listens-here", dest, timeout=2)
    assert dest.read_bytes() == b"previous" and not (tmp_path / "master.json.part").exists()


async def test_refresh_builds_the_index_in_a_child_process(master_server, tmp_path, master_index):
    index = await refresh_index(master_server.url, tmp_path, now=ist(hour=9))
    assert (index.date, len(index), index.source) == (DAY, len(master_index), master_server.url)
    assert MasterIndex.load(tmp_path / INDEX_FILE).date == DAY
    assert list(tmp_path.iterdir()) == [tmp_path / INDEX_FILE]  # the raw download is not kept
    master_server.body = b"<html>down for maintenance</html>"
    with pytest.raises(MasterUnavailable, match="not an instrument master"):
        await refresh_index(master_server.url, tmp_path, now=ist(hour=9))


async def test_ensure_index_downloads_only_when_missing_corrupt_or_stale(master_server, tmp_path):
    fresh = await ensure_index(master_server.url, tmp_path, now=ist(hour=9), isolated=False)
    assert (fresh.date, master_server.hits) == (DAY, 1)
    await ensure_index(master_server.url, tmp_path, now=ist(hour=23), isolated=False)
    assert master_server.hits == 1  # fresh: no download
    _damage(tmp_path / INDEX_FILE, "flipped")
    rebuilt = await ensure_index(master_server.url, tmp_path, now=ist(hour=9), isolated=False)
    assert (rebuilt.date, master_server.hits) == (DAY, 2)
    tomorrow = ist(DAY + timedelta(days=1), 8, 30)
    assert (await ensure_index(master_server.url, tmp_path, now=tomorrow, isolated=False)).date == DAY + timedelta(days=1)
    assert master_server.hits == 3


async def test_a_stale_index_serves_while_the_master_is_unreachable_but_a_corrupt_one_never(master_server, tmp_path):
    await ensure_index(master_server.url, tmp_path, now=ist(hour=9), isolated=False)
    master_server.status = 500
    kept = await ensure_index(master_server.url, tmp_path, now=ist(DAY + timedelta(days=1), 9), isolated=False)
    assert kept.date == DAY and master_server.hits == 2
    _damage(tmp_path / INDEX_FILE, "garbage")
    with pytest.raises(MasterUnavailable):
        await ensure_index(master_server.url, tmp_path, now=ist(hour=9), isolated=False)


def test_a_master_fetched_before_the_refresh_hour_counts_for_the_day_before():
    early = datetime(2025, 11, 25, 2, 0, tzinfo=ist().tzinfo)
    assert master_day(early) == date(2025, 11, 24)


def test_a_full_size_master_stays_small():
    """The real master has ~150 000 rows; tickguard's RSS budget (10 000 trades + master) is 200 MB."""
    from service.symbols.index import MasterRecord

    expiries = [DAY + timedelta(days=7 * n) for n in range(6)]
    records = [
        MasterRecord("NFO", str(100_000 + n), f"U{n // 300:03d}{expiries[n % 6]:%d%b%y}{1000 + n % 50 * 10}{'CE' if n % 2 else 'PE'}".upper(),
                     f"U{n // 300:03d}", "OPTSTK", expiries[n % 6], (1000 + n % 50 * 10) * 100, "CE" if n % 2 else "PE", 500, 5)
        for n in range(150_000)
    ]
    index = MasterIndex.build(records, DAY, ist(), "synthetic")
    del records
    size = sum(sys.getsizeof(column) for column in index._c.values())
    size += sys.getsizeof(index._symbols) + sys.getsizeof(index._tokens) + sum(sys.getsizeof(n) for n in index.names)
    assert size < 12_000_000, f"{size / 1e6:.1f} MB"
    row = index.by_token("NFO", "100301")
    assert index.symbol(row).name == "U001"
    assert index.symbol_of(index.by_symbol("NFO", index.symbol_of(row).lower())) == index.symbol_of(row)
