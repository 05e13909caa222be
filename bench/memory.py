"""Peak RSS of tickguard with 10 000 armed trades over 1 000 tokens and the instrument master loaded.

tickguard runs as its own process (`bench._tickguard`) against the paper exchange, whose master it
downloads and indexes at start; the 10 000 trades are stored and armed once it is up, and the peak
resident set (VmHWM) is read 1 s after their armed events are stored, before any tick reaches it.
Baseline: the same program with no trades, read 1 s after it first answered, in the same run. Both
processes are the run's shared ones (`bench._shared`): the figures are read before either serves
another benchmark.
"""
from __future__ import annotations

from bench import _shared
from bench._shared import TRADES
from bench.common import Figure


def run(quick: bool) -> list[Figure]:
    with _shared.shared() as services:
        services.begin_seeded()  # starting beside the idle one, if that is not up yet: neither's peak is the other's
        empty = services.idle().peak_kb
        loaded = services.seeded().peak_kb
    return [Figure(f"peak RSS, {TRADES:,} trades + instrument master", loaded / 1024, "MB", empty / 1024, "<= 200 MB")]
