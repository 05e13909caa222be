"""The broker-stop fault campaign (`tests/faults/full/backstop.py`, `make faults`) in small, for `make test`:
tickguard and the paper exchange as processes (BROKER_STOP=backup), two rounds — the price gapping
through both stops while tickguard is down, then a live crossing with tickguard killed while its exit
and the withdrawal of the broker stop race — each with a restart, checked against the exchange's
books by tag. The full campaign runs 30 rounds of every kind (`--backstop-rounds`).
"""
from __future__ import annotations

from tests.faults.full import backstop
from tests.faults.full.tally import Tally


def test_broker_stops_across_kills_settle_every_trade_with_no_double_exit(tmp_path):
    tally = Tally()
    # the restart's recovery under the parallel suite's load: "fires soon" is 5 s here, 1 s in the full run
    backstop.run(tmp_path, tally, rounds=2, seed=4, kinds=("gap", "racing"), fire_within_s=5.0)
    assert tally.figures["backstop rounds"] == 2 and tally.figures["backstop SIGKILLs"] >= 2
    assert tally.failed() == [], tally.findings
    assert tally.figures["alerts acknowledged"] >= 2
