"""`/opentrade` with 10 000 trades open: the alert path's cost must not grow with the book.

The run's seeded tickguard (`bench._shared`: 10 000 trades armed over 1 000 tokens, its stream on a
held blaster, after the ingest benchmark's window) takes the same `/opentrade` load as the run's idle
tickguard (no seeded trades; only the alerts benchmark's entries before), one right after the other,
each after its warm-up (`bench.alerts.measure`): the same program, the same paper exchange, the same
SQLite set-up. The open-trade count is tickguard's own gauge (`tickguard_open_trades`), read before the
load.
"""
from __future__ import annotations

import httpx

from bench import _procs, _shared
from bench.alerts import measure
from bench.common import Figure


def open_trades(url: str) -> int:
    for line in httpx.get(f"{url}/metrics", headers=_procs.HEADERS, timeout=10).text.splitlines():
        if line.startswith("tickguard_open_trades "):
            return int(float(line.split()[1]))
    raise RuntimeError("tickguard_open_trades missing from /metrics")


def run(quick: bool) -> list[Figure]:
    count = 2_000 if quick else 10_000
    with _shared.shared() as services:
        seeded, idle, paper = services.seeded(), services.idle(), services.paper()
        few, many = open_trades(idle.service.url), open_trades(seeded.service.url)
        rate, _, p99 = measure(services.scratch, paper.url, idle.service, count, offset=7_000_000)
        book_rate, _, book_p99 = measure(services.scratch, paper.url, seeded.service, count, offset=8_000_000)
    return [
        Figure(f"/opentrade, {many:,} trades open (vs {few:,})", book_rate, "alerts/s", rate, ">= 0.9x"),
        Figure(f"/opentrade p99, {many:,} trades open (vs {few:,})", book_p99, "ms", p99, "<= 20 ms"),
    ]
