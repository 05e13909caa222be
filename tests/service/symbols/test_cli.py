from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main
from service.symbols.cli import ProgressDisplay


@pytest.fixture
def env(monkeypatch, tmp_path, master_server):
    """`tickguard` reading its settings from the environment, aimed at the local master server."""
    monkeypatch.setenv("TICKGUARD_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("INSTRUMENT_MASTER_URL", master_server.url)
    monkeypatch.setenv("SYMBOLS_DIR", str(tmp_path / "symbols"))
    monkeypatch.setenv("SYMBOL_TOKENS_FILE", str(tmp_path / "symbol_tokens.json"))
    return tmp_path


def test_refresh_downloads_with_progress_and_prints_counts(env, master_server, universe, capsys):
    assert main(["symbols", "refresh"]) == 0
    out, err = capsys.readouterr()
    assert f"{len(universe)} instruments from {master_server.url}" in out
    assert "NFO" in out and "BFO" in out
    assert "instrument master" in err and "100%" in err
    assert json.loads((env / "symbol_tokens.json").read_text())["version"] == 1
    assert (env / "symbols" / "master.idx").is_file()


def test_find_prints_the_matches(env, master_server, capsys):
    assert main(["symbols", "find", "M_M"]) == 0
    assert main(["symbols", "find", "NIFTY25NOV2525000", "--limit", "2"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["TRADINGSYMBOL", "TOKEN", "EXCH", "LOT", "TICK", "EXPIRY", "STRIKE"]
    assert lines[1].split() == ["M&M-EQ", "2031", "NSE", "1", "0.05", "-", "-"]
    assert lines[3].split()[2:] == ["NFO", "75", "0.05", "25NOV2025", "25000"]
    assert lines[3].split()[0] == "NIFTY25NOV2525000CE" and len(lines) == 5
    assert master_server.hits == 1  # the second find used the saved index


def test_find_says_how_many_matched_and_how_many_are_shown(env, master_server, universe, capsys):
    listed = sum(1 for i in universe.instruments if "NIFTY25NOV25" in i.symbol)
    assert main(["symbols", "find", "NIFTY25NOV25", "--limit", "3"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 + 3
    assert f"{listed} matched 'NIFTY25NOV25', 3 shown (--limit 3; raise it to see more)" in err
    assert main(["symbols", "find", "M_M"]) == 0
    out, err = capsys.readouterr()
    assert "1 matched 'M_M', 1 shown\n" in err and "--limit" not in err
    with pytest.raises(SystemExit):
        main(["symbols", "find", "SBIN", "--limit", "0"])
    assert "expected at least 1" in capsys.readouterr().err


def test_find_piped_into_head_stops_quietly(env, master_server):
    """`tickguard symbols find NIFTY --limit 100000 | head -1`: more rows than a pipe holds, the reader
    gone after the first line — the header, and no traceback."""
    assert main(["symbols", "refresh"]) == 0  # the index is built here, so the piped run only reads it
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    finder = subprocess.Popen([sys.executable, "-m", "service.cli", "symbols", "find", "NIFTY", "--limit", "100000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
    head = subprocess.run(["head", "-1"], stdin=finder.stdout, capture_output=True, text=True, timeout=60)
    finder.stdout.close()
    with finder.stderr:
        err = finder.stderr.read().decode()
    assert finder.wait(timeout=60) == 0, err
    assert head.stdout.split() == ["TRADINGSYMBOL", "TOKEN", "EXCH", "LOT", "TICK", "EXPIRY", "STRIKE"]
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_find_without_matches_and_without_a_master(env, master_server, capsys):
    assert main(["symbols", "find", "NOTHINGLIKEIT"]) == 1
    assert "no instrument matches 'NOTHINGLIKEIT'" in capsys.readouterr().err
    master_server.status = 404
    assert main(["symbols", "refresh"]) == 2
    assert "HTTP 404" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_terminal_line():
    screen = Terminal()
    display = ProgressDisplay(screen)
    for received in range(0, 30_000_001, 1_000_000):
        display(received, 30_000_000)
    display.finish()
    text = screen.getvalue()
    assert text.startswith("\r") and text.endswith("100%\n") and text.count("\n") == 1
    assert "30.0 / 30.0 MB" in text


def test_progress_in_a_log_is_a_line_per_quarter():
    log = io.StringIO()
    display = ProgressDisplay(log)
    for received in range(0, 101, 5):
        display(received * 1000, 100_000)
    display.finish()
    assert [line.split()[-1] for line in log.getvalue().splitlines()] == ["0%", "25%", "50%", "75%", "100%"]
    unknown = io.StringIO()
    display = ProgressDisplay(unknown)
    display(2_000_000, None)
    display(4_000_000, None)
    display.finish()
    assert unknown.getvalue().splitlines()[-1].endswith("4.0 MB")


def test_public_names_are_exported():
    import importlib

    import service.symbols as package

    for module in ("book", "cache", "cli", "errors", "freeze", "index", "master", "model", "resolve"):
        loaded = importlib.import_module(f"service.symbols.{module}")
        assert all(hasattr(loaded, name) for name in loaded.__all__), module
    assert all(hasattr(package, name) for name in package.__all__)
    public = {name for name in vars(package) if not name.startswith("_") and name[0].isupper()}
    assert public <= set(package.__all__)
