"""`/opentrade`: alerts/s acknowledged durably, and their p99, with the load from another process.

Baseline: a bare Starlette JSON endpoint (`bench._bare`) under the same uvicorn set-up, loaded the same
way in the same run. The load (`bench._load`) posts distinct buy alerts over 32 keep-alive
connections, each waiting for its reply; tickguard (`bench._tickguard`, its own process: the run's
idle tickguard, `bench._shared`, whose only earlier work is its memory reading; the paper exchange in
a third) answers 202 only after the alert and its trade are committed to SQLite (synchronous=FULL);
then the same load against a tickguard of its own with the store in PostgreSQL (`DATABASE_URL`, a
database of the run's own on the local server), on the same exchange, against SQLite's figures of the
same run. Every accepted alert also queues a real entry (`service/execution/entries.py`): ten a
second go out at the broker's pace, and the ones still queued after ENTRY_TTL_S expire — background
work the run includes.
"""
from __future__ import annotations

import json

import httpx

from bench import _procs, _shared
from bench.common import Figure
from tests.support.postgres import fresh_database

CONNECTIONS = 32


def load(scratch, port: int | list[int], count: int, *, alerts: bool, offset: int = 0) -> tuple[float, float, float, dict]:
    """(requests/s, p50 ms, p99 ms, statuses) of `count` posts over CONNECTIONS, dealt out among `port`s."""
    ports = [port] if isinstance(port, int) else port
    args = ["-m", "bench._load", *(a for p in ports for a in ("--port", str(p))), "--count", str(count),
            "--connections", str(CONNECTIONS), "--offset", str(offset)] + (["--alerts"] if alerts else [])
    with _procs.Process(f"load{offset}", args, scratch) as generator:
        generator.wait(120)
    sent, seconds, p50, p99, statuses = generator.tail().strip().splitlines()[-1].split(" ", 4)
    return int(sent) / float(seconds), float(p50), float(p99), json.loads(statuses)


def run(quick: bool) -> list[Figure]:
    count = 2_000 if quick else 10_000
    with _shared.shared() as services:
        scratch, port = services.scratch, _procs.free_port()
        bare = _procs.Process("bare", ["-m", "bench._bare", "--port", str(port)], scratch,
                              health_url=f"http://127.0.0.1:{port}/healthz")
        with bare:
            load(scratch, port, 500, alerts=False)  # warm-up
            bare_rate, _, bare_p99, _ = load(scratch, port, count, alerts=False)
        rate, p50, p99 = measure(scratch, services.paper().url, services.idle().service, count, offset=1)
        with fresh_database() as url, _procs.tickguard(scratch, services.paper().url, name="postgres",
                                                       DATABASE_URL=url) as service:  # the same load, the store in PostgreSQL
            pg_rate, pg_p50, pg_p99 = measure(scratch, services.paper().url, service, count // 4 if quick else count,
                                              offset=5_000_000)  # ~500 alerts/s: a quarter is enough in a quick run
    return [
        Figure("bare Starlette JSON endpoint", bare_rate, "alerts/s"),
        Figure("/opentrade alerts acknowledged durably", rate, "alerts/s", bare_rate, ">= 0.3x, >= 1000/s"),
        Figure("/opentrade p50", p50, "ms"),
        Figure("/opentrade p99", p99, "ms", bare_p99, "<= 20 ms"),
        Figure("/opentrade durably, PostgreSQL (vs SQLite)", pg_rate, "alerts/s", rate),
        Figure("/opentrade p50, PostgreSQL", pg_p50, "ms"),
        Figure("/opentrade p99, PostgreSQL (vs SQLite)", pg_p99, "ms", p99),
    ]


def opentrade(scratch, count: int, **env: str) -> tuple[float, float, float]:
    """(alerts/s, p50, p99) of `count` alerts against a tickguard of its own with `env` (its store), after a warm-up."""
    with _procs.paper(scratch) as paper, _procs.tickguard(scratch, paper.url, **env) as service:
        return measure(scratch, paper.url, service, count, offset=1 if not env else 5_000_000)


def measure(scratch, paper_url: str, service: _procs.Process, count: int, offset: int) -> tuple[float, float, float]:
    """(alerts/s, p50, p99) of `count` alerts against `service`, after a warm-up; `offset` keeps the alerts' ids
    apart from any other load's on the same tickguard."""
    # The load's alerts say SBIN at 800: the market says so too, so the price check (on) passes them.
    httpx.post(f"{paper_url}/paper/v1/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800},
               timeout=10).raise_for_status()
    port = int(service.url.rsplit(":", 1)[1])
    _, _, _, warm = load(scratch, port, 100, alerts=True, offset=offset)  # symbols, accounts, first commits
    if warm.get("202") != 100:
        raise RuntimeError(f"warm-up alerts were not all accepted: {warm}\n{service.tail()}")
    rate, p50, p99, statuses = load(scratch, port, count, alerts=True, offset=offset + 1_000_000)
    if statuses.get("202") != count:
        raise RuntimeError(f"alerts not all accepted: {statuses}\n{service.tail()}")
    return rate, p50, p99
