"""Peak RSS of tickguard with 10 000 armed trades over 1 000 tokens and the instrument master loaded.

tickguard runs as its own process (`bench._tickguard`) against the paper exchange, whose master it
downloads and indexes at start; the 10 000 trades are stored and armed once it is up, and the peak
resident set (VmHWM) is read after their armed events are stored. Baseline: the same process with
no trades, in the same run.
"""
from __future__ import annotations

import json
import time

from bench import _procs
from bench._blaster import base_price, fake_token
from bench.common import Figure

TRADES, TOKENS = 10_000, 1_000


def peak_kb(scratch, paper_url: str, trades: int) -> int:
    seeds = scratch / "seed_tokens.json"
    seeds.write_text(json.dumps([["NSE", fake_token(n), f"BENCH{n}-EQ", base_price(n)] for n in range(TOKENS)]))
    seeded = scratch / f"seeded{trades}"
    env = {"TICKGUARD_DB": str(scratch / f"tickguard{trades}.db"), "BENCH_SEEDED_FILE": str(seeded)}
    with _procs.tickguard(scratch, paper_url, seed_trades=trades, seed_tokens=str(seeds), **env) as service:
        if trades:
            _procs.wait_for(seeded.exists, "the trades armed", 120)
        time.sleep(1.0)
        return _procs.rss_peak_kb(service.pid)


def run(quick: bool) -> list[Figure]:
    with _procs.Scratch() as scratch, _procs.paper(scratch) as paper:
        empty = peak_kb(scratch, paper.url, 0)
        loaded = peak_kb(scratch, paper.url, TRADES)
    return [Figure(f"peak RSS, {TRADES:,} trades + instrument master", loaded / 1024, "MB", empty / 1024, "<= 200 MB")]
