"""`tickguard record` in a process of its own against a paper exchange: it logs in, subscribes what it is
given (EXCHANGE:TOKEN and symbols), records until SIGTERM, then writes what is queued and exits 0;
`tickguard record compact` compacts the finished days."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from service.errors import SettingsError
from service.exits import ExitCode
from service.recording import Recorder, day_file, read_ticks
from service.recording.cli import parse_instruments
from streams import Tick
from tests.support.waiting import wait_for

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_", "LOG_", "RECORD_"))}
    return {**kept, "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"), "TICKGUARD_DB": str(tmp_path / "tickguard.db"),
            "SYMBOLS_DIR": str(tmp_path / "symbols"), "SYMBOL_TOKENS_FILE": str(tmp_path / "symbol_tokens.json"),
            "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}




def tickguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_record_writes_the_ticks_of_what_it_was_given_and_exits_0_on_sigterm(paper, env, tmp_path, processes):
    root = tmp_path / "recordings"  # RECORD_DIR unset: beside TICKGUARD_DB
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "record", "--instruments", "NSE:3045",
                             "--symbols", "INFY-EQ"], env={**env, "PAPER_URL": paper.url},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(proc)
    step = iter(range(10**6))

    def both_recorded() -> bool:
        n = next(step)
        for token, base in (("3045", 800), ("1594", 1500)):  # SBIN by token, INFY by its symbol
            paper.control("POST", "/ticks", json={"exchange": "NSE", "token": token, "ltp": base + n % 7 * 0.05})
        return {r.tick.token for r in read_ticks(root)} == {"3045", "1594"}

    wait_for(both_recorded, "ticks of both instruments on disk", timeout=30, every=0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    got = list(read_ticks(root))
    assert all(a.seq < b.seq for a, b in zip(got, got[1:]))
    assert out.splitlines()[0] == f"recording 2 instruments (NSE:3045,NSE:1594) to {root}"
    assert out.splitlines()[-1] == f"recorded {len(got)} ticks (0 dropped) in 1 hour files"


def test_a_killed_recorder_leaves_a_readable_recording_and_the_next_goes_on_from_it(paper, env, tmp_path, processes):
    root = tmp_path / "recordings"
    prices = iter(range(10**6))

    def record() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "record", "--instruments", "NSE:3045"],
                                env={**env, "PAPER_URL": paper.url}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        processes.append(proc)
        return proc

    def recorded_more_than(count: int) -> bool:
        paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800 + next(prices) % 9 * 0.05})
        return len(list(read_ticks(root))) > count

    first = record()
    wait_for(lambda: recorded_more_than(3), "ticks on disk", timeout=30, every=0.1)
    first.kill()  # SIGKILL: no drain, no close
    first.wait(timeout=10)
    before = list(read_ticks(root))
    assert before and all(a.seq < b.seq for a, b in zip(before, before[1:]))
    second = record()
    wait_for(lambda: recorded_more_than(len(before)), "the next recorder's ticks", timeout=30, every=0.1)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
    after = list(read_ticks(root))
    assert after[:len(before)] == before and all(a.seq < b.seq for a, b in zip(after, after[1:]))


def test_record_without_instruments_is_one_line_and_status_2(env):
    result = tickguard(env, "record")
    assert result.returncode == ExitCode.SETTINGS
    assert result.stderr.splitlines() == [
        "tickguard: invalid settings: --instruments: name what to record: --instruments NSE:3045 and/or --symbols SBIN-EQ"]


def test_record_of_a_symbol_the_master_lacks_is_one_line(paper, env):
    result = tickguard({**env, "PAPER_URL": paper.url}, "record", "--symbols", "NOSUCHSYMBOL")
    assert result.returncode == ExitCode.SETTINGS and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("tickguard: ")]
    assert "NOSUCHSYMBOL" in line


def test_instruments_are_exchange_token_pairs():
    assert parse_instruments("NSE:3045, nfo:35000,,") == [("NSE", "3045"), ("NFO", "35000")]
    with pytest.raises(SettingsError) as refused:
        parse_instruments("NSE:3045,3045")
    assert refused.value.problems == [("--instruments", "expected EXCHANGE:TOKEN such as NSE:3045, not '3045'")]


def test_record_compact_compacts_finished_days_only(env, tmp_path):
    root = tmp_path / "elsewhere"
    now = dt.datetime.now(IST)
    yesterday = now - dt.timedelta(days=1)
    for moment in (now, yesterday):  # today first: a recorder's start compacts the days before its own
        recorder = Recorder(root, clock_ns=lambda moment=moment: int(moment.timestamp()) * 10**9)
        recorder.start()
        recorder.offer(Tick("3045", "NSE", 80_000, int(moment.timestamp() * 1000)))
        recorder.stop()
    assert len(list(root.iterdir())) == 2
    assert tickguard(env, "record", "compact").stderr.startswith("nothing to compact")  # RECORD_DIR: none there
    done = tickguard(env, "record", "compact", "--dir", str(root))
    assert done.returncode == 0, done.stderr
    day = yesterday.date().isoformat()
    assert done.stdout.splitlines() == [f"{day}  {day_file(root, day)}"]
    assert day_file(root, day).exists() and not (root / day).exists()
    assert (root / now.date().isoformat()).is_dir()  # today may still be written: left alone
    assert len(list(read_ticks(root))) == 2


def test_record_with_a_login_the_broker_refuses_is_one_line_and_status_4(paper, env):
    wrong = {"SMARTAPI_USER": "P0001", "SMARTAPI_PASS": "9999", "SMARTAPI_KEY": "paper-demo-key",
             "TOTP_SECRET": "TICKGUARDPAPERDEMOTOTPSECRET2345"}
    result = tickguard({**env, **wrong, "PAPER_URL": paper.url}, "record", "--instruments", "NSE:3045")
    assert result.returncode == ExitCode.LOGIN_REFUSED and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("tickguard: the broker refused the login of P0001")
