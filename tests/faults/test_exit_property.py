"""Whatever faults the broker throws at exits, no trade's exits could sell more than its position and
no position flips (`exit_scenarios.py` says what is injected and checked). `make test` plays a few
dozen derandomized scenarios; `make faults` plays thousands (`EXIT_SCENARIOS`)."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings

from tests.faults.exit_scenarios import Scenario, run, scenarios

EXAMPLES = int(os.environ.get("EXIT_SCENARIOS", "25"))


@settings(max_examples=EXAMPLES, derandomize=EXAMPLES <= 100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_exits_never_exceed_the_position_whatever_the_broker_does(scenario: Scenario):
    violations = run(scenario)
    assert not violations, "\n".join(violations)
