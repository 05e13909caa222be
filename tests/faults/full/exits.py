"""The exit property at volume (`tests/faults/exit_scenarios.py`): thousands of hypothesis scenarios of
broker faults against exits, on the model broker in this process. A scenario that breaks an invariant
is shrunk by hypothesis to the smallest one that still does, and reported with it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tests.faults.exit_scenarios import STATS, Scenario, run as play, scenarios
from tests.faults.full.tally import Tally

FIGURES = ("positions flipped", "exits beyond position", "trades not settled")  # each violation starts with its figure


def run(workdir: Path, tally: Tally, examples: int = 3000, rng_seed: int = 11) -> None:
    started = time.monotonic()

    @seed(rng_seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(scenarios())
    def exits_never_exceed_the_position(scenario: Scenario) -> None:
        violations = play(scenario)
        assert not violations, "\n".join([repr(scenario), *violations])

    STATS.clear()
    quiet = logging.getLogger("tickguard")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # each scenario's warnings are its faults, by design
    try:
        exits_never_exceed_the_position()
    except AssertionError as exc:  # the shrunk scenario, then what it broke
        scenario, *violations = str(exc).splitlines()
        for violation in violations:
            name = next((figure for figure in FIGURES if violation.startswith(figure)), "trades not settled")
            tally.bad(name, f"{violation} in {scenario}")
    finally:
        quiet.setLevel(level)
    tally.add("exit scenarios", STATS["scenarios"])
    tally.add("faults injected", STATS["faults injected"])
    print(f"  exit scenarios: {STATS['scenarios']} in {time.monotonic() - started:.0f} s; "
          + ", ".join(f"{name} {count}" for name, count in sorted(STATS.items()) if name != "scenarios"), flush=True)
