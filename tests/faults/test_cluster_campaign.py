"""The cluster fault campaign (`tests/faults/full/cluster.py`, `make faults`) in small, for `make test`: a
cluster of real processes (2 intakes, an executor per login behind the static-IP rule, 2 guard shards
each with a standby) under a supervisor that restarts what exits, three rounds — a guard leader paused
past its lease while its stops are crossed, a guard leader killed while they are crossed, an executor
killed as its exits go out — each checked against the exchange's books by tag, its positions per login
and where every order came from. The full campaign runs 30 rounds of every kind (`--cluster-rounds`).
"""
from __future__ import annotations

import pytest

from tests.faults.full import cluster
from tests.faults.full.tally import Tally

SCRIPT = [("pause", "crossing"), ("leader", "crossing"), ("executor", "exits")]


@pytest.mark.timeout(300)
def test_a_cluster_under_kills_and_pauses_settles_every_trade_and_fails_over_in_time(tmp_path):
    tally = Tally()
    cluster.run(tmp_path, tally, rounds=3, seed=5, script=list(SCRIPT))
    figures = tally.figures
    assert figures["cluster rounds"] == 3 and figures["cluster SIGKILLs"] == 2
    assert figures["cluster leaders paused past their lease"] == 1
    assert tally.failed() == [], tally.findings
    assert figures["alerts acknowledged"] >= 6 and figures["cluster trades"] >= 6
    # Each outage round crossed stops of its own shard while its leader was down, and they fired in time.
    assert figures["stop crossings with the leader paused"] >= 1 and figures["stop crossings with the leader killed"] >= 1
