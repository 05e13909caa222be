from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from service.symbols import CachedSymbol, SymbolCache
from service.symbols.cache import CACHE_VERSION

from .conftest import DAY

ROOT = Path(__file__).resolve().parents[3]


def written(path: Path, master_date=DAY, **symbols: dict) -> Path:
    path.write_text(json.dumps({"version": CACHE_VERSION, "master_date": master_date.isoformat(), "symbols": symbols}))
    return path


SBIN = {"token": "3045", "exchange": "NSE", "tradingsymbol": "SBIN-EQ", "lotsize": 1, "tick_size": 5}


def test_entries_round_trip(tmp_path, resolver):
    cache = SymbolCache(tmp_path / "symbol_tokens.json", DAY)
    assert cache.rebuilt == "no cache file yet" and len(cache) == 0
    cache.put("NSE:SBIN", resolver.equity("NSE:SBIN"))
    cache.put("NIFTY1!", resolver.equity("NIFTY1!"))
    cache.save()
    again = SymbolCache(tmp_path / "symbol_tokens.json", DAY)
    assert again.rebuilt is None and not again.dirty
    assert again.get("NSE:SBIN") == CachedSymbol(**SBIN)
    assert again.get("NIFTY1!").lotsize == 75
    stored = json.loads((tmp_path / "symbol_tokens.json").read_text())
    assert stored["version"] == 1 and stored["master_date"] == DAY.isoformat()
    assert stored["symbols"]["NSE:SBIN"] == SBIN


@pytest.mark.parametrize("content", [
    "", "{", "not json", "[]", '{"symbols": {}}', '{"version": "1"}',
    '{"version": 1, "master_date": "2025-11-25", "symbols": {"SBIN": {"token": 3045}}}',
    '{"version": 1, "master_date": "yesterday", "symbols": {}}',
    '{"version": 1, "master_date": "2025-11-25", "symbols": [], "extra": 1}',
])
def test_a_corrupt_file_is_set_aside_and_rebuilt(tmp_path, content):
    path = tmp_path / "symbol_tokens.json"
    path.write_text(content)
    cache = SymbolCache(path, DAY)
    assert cache.rebuilt.startswith("corrupt") and len(cache) == 0 and cache.dirty
    assert (tmp_path / "symbol_tokens.json.corrupt").read_text() == content
    cache.save()
    assert json.loads(path.read_text()) == {"version": 1, "master_date": DAY.isoformat(), "symbols": {}}


def test_another_version_is_rebuilt(tmp_path):
    path = tmp_path / "symbol_tokens.json"
    path.write_text(json.dumps({"version": 2, "symbols": {"NSE:SBIN": SBIN}}))
    cache = SymbolCache(path, DAY)
    assert cache.rebuilt == "version 2, expected 1" and len(cache) == 0 and cache.pending == []


def test_a_stale_file_keeps_its_keys_to_resolve_again(tmp_path):
    path = written(tmp_path / "symbol_tokens.json", DAY - timedelta(days=1), **{"NSE:SBIN": SBIN, "NIFTY1!": SBIN})
    cache = SymbolCache(path, DAY)
    assert cache.rebuilt.startswith("stale") and len(cache) == 0
    assert cache.pending == ["NSE:SBIN", "NIFTY1!"]


def test_a_file_naming_no_master_day_is_rebuilt_not_trusted(tmp_path):
    # As an older release shipped it: no master day, so stale by definition.
    shipped = tmp_path / "symbol_tokens.json"
    shipped.write_text('{"version": 1, "symbols": {}}')
    cache = SymbolCache(shipped, DAY)
    assert cache.rebuilt.startswith("stale") and cache.pending == []


def test_the_cache_is_runtime_state_git_never_sees_change():
    """A first `make run` leaves the checkout clean: the cache is ignored, not tracked."""
    tracked = subprocess.run(["git", "ls-files", "symbol_tokens.json"], cwd=ROOT, capture_output=True, text=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", "symbol_tokens.json"], cwd=ROOT)
    assert tracked.stdout.strip() == "" and ignored.returncode == 0


def test_entries_are_checked_against_the_index(tmp_path, master_index, universe):
    option = universe.by_symbol("NFO", "NIFTY25NOV2525000CE")
    path = written(
        tmp_path / "symbol_tokens.json",
        **{
            "NSE:SBIN": {**SBIN, "lotsize": 3, "tick_size": 1},  # sizes follow the master
            "MOVED": {**SBIN, "token": "999999"},  # listed under another token: wrong
            "RENAMED": {**SBIN, "tradingsymbol": "SBI-EQ"},  # token now lists another symbol: wrong
            "NFO:NIFTY25NOV2525000CE": {"token": option.token, "exchange": "NFO",
                                        "tradingsymbol": option.symbol, "lotsize": 75, "tick_size": 5},
            "NEWLISTING": {"token": "777", "exchange": "NSE", "tradingsymbol": "NEWCO-EQ", "lotsize": 1, "tick_size": 5},
            "UNLISTED": {"token": "778", "exchange": "NFO", "tradingsymbol": "NEWCO25NOV25FUT", "lotsize": 9, "tick_size": 5},
        },
    )
    cache = SymbolCache(path, DAY)
    assert master_index.symbol(cache.check("NSE:SBIN", master_index)).tradingsymbol == "SBIN-EQ"
    assert cache.get("NSE:SBIN") == CachedSymbol(**SBIN) and cache.dirty
    assert cache.check("MOVED", master_index) is None and "MOVED" not in cache
    assert cache.check("RENAMED", master_index) is None and "RENAMED" not in cache
    assert master_index.token_of(cache.check("NFO:NIFTY25NOV2525000CE", master_index)) == option.token
    assert cache.check("NEWLISTING", master_index) == -1  # vouched for by searchScrip today
    assert cache.check("UNLISTED", master_index) is None and "UNLISTED" not in cache  # never for derivatives
    assert cache.check("ABSENT", master_index) is None


def test_a_crash_mid_write_leaves_the_old_file_whole(tmp_path, resolver, monkeypatch):
    path = written(tmp_path / "symbol_tokens.json", **{"NSE:SBIN": SBIN})
    before = path.read_bytes()
    cache = SymbolCache(path, DAY)
    cache.put("NIFTY", resolver.equity("NIFTY"))

    def power_cut(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError):
        cache.save()
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["symbol_tokens.json"]  # no temporary file left
    cache.save()
    assert set(json.loads(path.read_text())["symbols"]) == {"NSE:SBIN", "NIFTY"}


def test_a_crash_before_the_rename_leaves_the_old_file_whole(tmp_path, resolver, monkeypatch):
    path = written(tmp_path / "symbol_tokens.json", **{"NSE:SBIN": SBIN})
    before = path.read_bytes()
    cache = SymbolCache(path, DAY)
    cache.put("NIFTY", resolver.equity("NIFTY"))

    def killed(src, dst) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.save()
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["symbol_tokens.json"]


def test_an_entry_checked_against_this_index_is_not_looked_up_again(tmp_path, master_index, monkeypatch):
    """The answer is kept per entry and index: the same again without a look-up; another index, or the entry
    put again or dropped, is checked afresh."""
    cache = SymbolCache(written(tmp_path / "symbol_tokens.json", **{"NSE:SBIN": SBIN, "RENAMED": {**SBIN, "tradingsymbol": "SBI-EQ"}}), DAY)
    row = cache.check("NSE:SBIN", master_index)
    looked: list[str] = []
    real = type(master_index).by_token
    monkeypatch.setattr(type(master_index), "by_token", lambda self, e, t: looked.append(t) or real(self, e, t))
    assert [cache.check("NSE:SBIN", master_index) for _ in range(3)] == [row] * 3 and looked == []
    cache.put("NSE:SBIN", master_index.symbol(row))  # the same symbol: the entry stays the same
    assert cache.check("NSE:SBIN", master_index) == row and looked == []
    cache.drop("NSE:SBIN")
    assert cache.check("NSE:SBIN", master_index) is None
    cache.put("NSE:SBIN", master_index.symbol(row))
    assert cache.check("NSE:SBIN", master_index) == row and looked == ["3045"]
    assert cache.check("RENAMED", master_index) is None and "RENAMED" not in cache  # wrong entries still go
