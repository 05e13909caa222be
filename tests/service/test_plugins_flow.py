"""Plug-ins named in PLUGINS, through `tickguard serve` (a real subprocess) and the paper exchange."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.service.test_recovery import Broker, free_port, post_alert, service_process, wait  # noqa: F401
from tests.support.service import HEADERS, SECRET

SPIKE = {"stage": "tick", "factory": "streams.examples.spike_filter:spike_filter", "kwargs": {"max_jump_pct": 5},
         "name": "spike_filter"}
TIME_EXIT = {"stage": "signal", "factory": "streams.examples.time_exit:time_exit", "kwargs": {"after_s": 1},
             "name": "time_exit"}
JOURNAL = '''
"""An observer of the desk's own: one line per engine output, appended to a file."""
from reactivex import operators as ops


def journal(path):
    def write(output):
        with open(path, "a") as file:
            reason = getattr(output, "reason", "")
            file.write(f"{type(output).__name__} {reason} {getattr(output, 'source', '')}".rstrip() + "\\n")

    return ops.do_action(write)
'''


def subscriptions(paper) -> int:
    return sum(c["subscriptions"] for c in paper.control("GET", "/feed").json()["market"])


def metric_samples(service) -> dict[tuple[str, frozenset], float]:
    reply = httpx.get(f"{service.url}/metrics", headers=HEADERS, timeout=10)
    assert reply.status_code == 200, reply.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def exit_fired(service, trade_id: int) -> dict:
    return next(e for e in service.get(f"/trades/{trade_id}")["events"] if e["kind"] == "exit_fired")["data"]


def closed(service, trade_id: int) -> None:
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["state"] == "CLOSED", f"trade {trade_id} to close")


def test_the_spike_filter_withholds_a_spike_and_a_real_move_still_stops_out(paper_factory, service_process):
    paper = paper_factory()
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url, PLUGINS=json.dumps([SPIKE]), DEDUP_WINDOW_S="0")  # the same alert twice
    service.start()
    labels = frozenset({"name": "spike_filter", "stage": "tick", "factory": SPIKE["factory"]}.items())
    assert metric_samples(service)["tickguard_plugin_info", labels] == 1

    first = post_alert(service)  # long 5 SBIN at 800, stop 10 points: 790
    wait(lambda: service.get(f"/trades/{first}")["trade"]["stop"] == 79_000, "the trade to be armed")
    wait(lambda: subscriptions(paper) == 1, "the guard's subscription (the filter's first price is 800)")
    broker.price(750)  # a bad print 6.25 % below: through the stop, held back by the filter ...
    broker.price(800)  # ... and gone at once
    broker.price(795)
    broker.price(789)  # a real move through the stop
    closed(service, first)
    fired = exit_fired(service, first)
    assert (fired["reason"], fired["level"], fired["tick_ltp"]) == ("STOP", 79_000, 78_900)  # not the 750 print

    wait(lambda: subscriptions(paper) == 0, "the guard to let go of the token")
    second = post_alert(service)  # long at about 789, stop 10 points below
    wait(lambda: service.get(f"/trades/{second}")["trade"]["stop"] is not None, "the second trade to be armed")
    wait(lambda: subscriptions(paper) == 1, "the guard's subscription")
    broker.price(740)  # a real gap: the filter holds back this crossing tick ...
    broker.price(738)  # ... and is overruled on the next one
    closed(service, second)
    fired = exit_fired(service, second)
    assert (fired["reason"], fired["tick_ltp"]) == ("STOP", 73_800)
    samples = metric_samples(service)
    assert samples["tickguard_plugin_withheld_total", frozenset({"name": "spike_filter"}.items())] == 1
    assert samples["tickguard_plugin_unplugged", frozenset({"name": "spike_filter"}.items())] == 0


def test_the_time_exit_fires_and_an_observer_from_plugins_path_sees_it(paper_factory, service_process, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tg_desk_journal.py").write_text(JOURNAL)
    journal = tmp_path / "journal.txt"
    observer = {"stage": "observer", "factory": "tg_desk_journal:journal", "kwargs": {"path": str(journal)},
                "name": "journal"}
    paper = paper_factory()
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url, PLUGINS=json.dumps([TIME_EXIT, observer]), PLUGINS_PATH=str(mine))
    service.start()

    trade_id = post_alert(service)  # the price stays at 800: no stop or target is ever crossed
    closed(service, trade_id)
    fired = exit_fired(service, trade_id)
    assert (fired["reason"], fired["source"], fired["level"]) == ("CUSTOM", "time_exit", None)
    lines = journal.read_text().splitlines()
    assert lines.index("Armed") < lines.index("ExitIntent CUSTOM time_exit"), lines
    samples = metric_samples(service)
    for name, stage, factory in (("time_exit", "signal", TIME_EXIT["factory"]),
                                 ("journal", "observer", "tg_desk_journal:journal")):
        assert samples["tickguard_plugin_info", frozenset({"name": name, "stage": stage, "factory": factory}.items())] == 1
    assert samples["tickguard_exits_total", frozenset({"reason": "CUSTOM"}.items())] == 1


def command_env(tmp_path: Path, **env: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_", "PLUGINS"))},
        "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"), "PAPER_URL": "http://127.0.0.1:9",
        "TICKGUARD_DB": str(tmp_path / "tickguard.db"), "SYMBOLS_DIR": str(tmp_path / "symbols"),
        "SYMBOL_TOKENS_FILE": str(tmp_path / "symbol_tokens.json"), "LOG_LEVEL": "WARNING", **env,
    }


def tickguard(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=command_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=60)


def test_settings_lists_the_plugins(tmp_path):
    done = tickguard(tmp_path, "settings", PLUGINS=json.dumps([SPIKE, TIME_EXIT]))
    assert done.returncode == 0, done.stderr
    assert f"PLUGINS={json.dumps([SPIKE, TIME_EXIT])}" in done.stdout.splitlines()
    assert "plug-in 1: tick spike_filter = streams.examples.spike_filter:spike_filter {\"max_jump_pct\":5}" \
        in done.stdout.splitlines()
    assert "plug-in 2: signal time_exit = streams.examples.time_exit:time_exit {\"after_s\":1}" \
        in done.stdout.splitlines()


BAD = [
    ({"stage": "tik", "factory": "streams.examples.spike_filter:spike_filter"},
     "PLUGINS: entry 2 (streams.examples.spike_filter:spike_filter): stage: expected \"tick\", \"signal\" or "
     "\"observer\", got 'tik'"),
    ({"stage": "signal", "factory": "streams.examples.time_exit:time_exit", "kwargs": {"after_s": -1}},
     "PLUGINS: entry 2 (streams.examples.time_exit:time_exit): the factory raised ValueError: after_s must be > 0"),
    ({"stage": "observer", "factory": "tg_nowhere.journal:make"},
     "PLUGINS: entry 2 (tg_nowhere.journal:make): cannot import tg_nowhere.journal: ModuleNotFoundError: "
     "No module named 'tg_nowhere' (not installed; set PLUGINS_PATH to the directory that holds it)"),
]


def test_a_bad_plugin_keeps_tickguard_from_starting_and_settings_names_it(tmp_path):
    for entry, message in BAD:
        port = free_port()
        served = tickguard(tmp_path, "serve", "--port", str(port), PLUGINS=json.dumps([SPIKE, entry]))
        assert served.returncode == 2, served.stdout + served.stderr
        assert served.stderr.splitlines() == [f"tickguard: invalid settings: {message}"], served.stderr  # one line
        assert f":{port}" not in served.stdout  # refused before anything listened
        shown = tickguard(tmp_path, "settings", PLUGINS=json.dumps([SPIKE, entry]))
        assert shown.returncode == 2
        assert shown.stderr.splitlines() == [f"tickguard: invalid settings: {message}"], shown.stderr
