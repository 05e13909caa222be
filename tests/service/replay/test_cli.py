"""`tickguard replay` and `tickguard export-alerts` on the shipped sample session (a fresh clone's
files): the live variant reproduces the stored exits, the store is only read, alerts replay too."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from service.cli import main
from service.replay.table import read_csv

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "replay-sample"


def _replay(tmp_path: Path, *extra: str) -> dict[tuple[str, int], object]:
    out = tmp_path / "out"
    assert main(["replay", "--ticks", str(SAMPLE / "ticks"), "--variants", str(SAMPLE / "variants.json"),
                 "--out", str(out), *extra]) == 0
    assert (out / "report.html").stat().st_size < 8_000_000
    return {(row.variant, row.trade_id): row for row in read_csv(out / "replay.csv")}


def test_the_live_variant_reproduces_every_stored_exit_and_the_store_is_only_read(tmp_path, capsys):
    db = tmp_path / "tickguard.db"
    shutil.copy(SAMPLE / "tickguard.db", db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    rows = _replay(tmp_path, "--trades", str(db))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tickguard.db"]  # no -wal, no -shm, no migration
    live = [row for (variant, _), row in sorted(rows.items()) if variant == "live"]
    assert len(live) == 6 and {row.variant for row in rows.values()} == {"live", "points5", "pct0.8", "trail-act"}
    for row in live:
        assert row.reason == row.recorded_reason, row
        if row.reason in ("STOP", "TRAIL", "TARGET"):
            assert (row.trigger_ltp, row.trigger_ts_ms) == (row.recorded_trigger_ltp, row.recorded_trigger_ts_ms), row
    assert {row.reason for row in live} == {"TARGET", "TRAIL", "STOP", "SQUARE_OFF", "SIGNAL"}
    printed = capsys.readouterr().out
    assert "19,800 ticks, 4 variant(s)" in printed and "trail-act" in printed


def test_alerts_replay_at_their_times_and_enter_on_the_next_tick(tmp_path):
    rows = _replay(tmp_path, "--alerts", str(SAMPLE / "alerts.jsonl"), "--slippage", "ticks:1")
    lines = [json.loads(line) for line in (SAMPLE / "alerts.jsonl").read_text().splitlines()]
    opening = [n for n, line in enumerate(lines, start=1) if line["body"]["signal"] in ("buy", "short")]
    assert sorted(trade_id for variant, trade_id in rows if variant == "live") == opening
    for n in opening:
        row = rows[("live", n)]
        assert row.entry_ms >= lines[n - 1]["received_ms"] and row.quantity == lines[n - 1]["body"]["quantity"]
    assert any(row.reason == "SIGNAL" for row in rows.values())  # the exit alert closed its trade


def test_export_alerts_writes_the_stores_accepted_alerts_with_their_instruments(tmp_path):
    out = tmp_path / "alerts.jsonl"
    assert main(["export-alerts", "--db", str(SAMPLE / "tickguard.db"), "--out", str(out)]) == 0
    assert out.read_text() == (SAMPLE / "alerts.jsonl").read_text()
    first = json.loads(out.read_text().splitlines()[0])
    assert set(first) == {"received_ms", "body", "instrument"} and "token" not in first["body"]


def test_unreadable_inputs_are_one_line_and_exit_status_2(tmp_path, capsys):
    variants = tmp_path / "v.json"
    variants.write_text('{"live": {}}')
    args = ["replay", "--ticks", str(SAMPLE / "ticks"), "--trades", str(SAMPLE / "tickguard.db"), "--out", str(tmp_path)]
    assert main([*args, "--variants", str(variants)]) == 2
    assert "live: reserved" in capsys.readouterr().err
    assert main(["replay", "--ticks", str(tmp_path / "none"), "--trades", str(SAMPLE / "tickguard.db")]) == 2
    assert "no recording here" in capsys.readouterr().err
    assert main(["replay", "--ticks", str(SAMPLE / "ticks"), "--trades", str(tmp_path / "absent.db")]) == 2
    assert "no tickguard store" in capsys.readouterr().err
    bad = tmp_path / "alerts.jsonl"
    bad.write_text('{"received_ms": 1, "body": {"symbolname": "SBIN"}}\n')
    assert main(["replay", "--ticks", str(SAMPLE / "ticks"), "--alerts", str(bad)]) == 2
    assert "alerts.jsonl:1" in capsys.readouterr().err


@pytest.mark.parametrize("plugins", ['[{"stage": "tick", "factory": "streams.examples.spike_filter:spike_filter",'
                                     ' "kwargs": {"max_jump_pct": 5}}]'])
def test_plug_ins_load_as_plugins_takes_them(tmp_path, plugins):
    rows = _replay(tmp_path, "--trades", str(SAMPLE / "tickguard.db"), "--plugins", plugins)
    assert all(row.reason == row.recorded_reason for (variant, _), row in rows.items() if variant == "live")
    assert main(["replay", "--ticks", str(SAMPLE / "ticks"), "--trades", str(SAMPLE / "tickguard.db"),
                 "--plugins", '[{"stage": "tick", "factory": "nowhere.module:f"}]']) == 2
