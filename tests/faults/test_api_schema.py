"""tickguard against its own OpenAPI document, with schemathesis: every operation, valid and invalid
requests generated from the schema, every check — no 5xx, only documented statuses and media types,
replies matching their schemas, valid data accepted and invalid data refused.

The quick run (`make test`): a few hundred cases, derandomized, against the real app and a paper
exchange. The long run (thousands of cases and the stateful links from /opentrade to the trade
routes) is `make faults` (tests/faults/full/schema.py). Positive cases are moved inside the service's
data (a listed symbol, the demo account) by tests/faults/schema_hooks.py; see there why.
"""
from __future__ import annotations

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from service.alerts.parse import AlertInvalid, parse_alert
from service.web.openapi import ALERT, SPEC
from tests.faults import schema_hooks  # noqa: F401  (registers the hooks)
from tests.faults.full.procs import Paper, Tickguard
from tests.support.service import HEADERS

EXAMPLES = 12  # per operation and mode: 24 runs x 12 = 288 cases
QUICK = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Halting refuses every entry after it: the trade routes and /halt go last.
OPERATIONS.sort(key=lambda op: (op.path.startswith(("/halt", "/trades/")), op.path, op.method))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """tickguard and its paper exchange as processes of their own: the generator's use of `random`
    never races a server thread's."""
    workdir = tmp_path_factory.mktemp("schema")
    paper = Paper(workdir).start()
    # The alert price check (PRICE_SANITY_PCT) compares a price with the market, which no schema can say:
    # off here, so a generated alert is judged by the schema's rules alone (test_price_check_flow.py has it).
    tickguard = Tickguard(workdir, paper.url, PRICE_SANITY_PCT="0")
    try:
        tickguard.start()
        yield tickguard.url
    finally:
        tickguard.stop()
        paper.stop()


def _negatable(operation) -> bool:
    """Whether the operation takes anything a request could get wrong (a body, a parameter, a secret)."""
    return bool(operation.body or operation.query or operation.path_parameters or operation.definition.raw.get("security"))


CASES = [(op, mode) for op in OPERATIONS for mode in GenerationMode if mode is GenerationMode.POSITIVE or _negatable(op)]


@pytest.mark.parametrize("operation, mode", CASES, ids=lambda v: f"{v.method.upper()} {v.path}" if hasattr(v, "path") else v.value)
def test_every_operation_answers_as_its_schema_says(service, operation, mode):
    statuses: list[int] = []

    @QUICK
    @given(operation.as_strategy(generation_mode=mode))
    def check(case):
        reply = case.call_and_validate(base_url=service, headers=HEADERS, timeout=15)
        statuses.append(reply.status_code)

    check()
    if mode is GenerationMode.POSITIVE and operation.path in ("/opentrade", "/chartink"):
        assert 202 in statuses, f"no valid {operation.path} request was acknowledged: {statuses}"


def _accepts(body) -> bool:
    try:
        parse_alert(body)
    except AlertInvalid:
        return False
    return True


def test_the_alert_schema_and_the_validator_agree_both_ways():
    """Thousands of alert bodies, valid and not, judged by the schema (jsonschema-rs) and by the
    validator: the same verdict every time. No server: the parsing alone."""
    judge = jsonschema_rs.validator_for(ALERT)
    opentrade = SCHEMA["/opentrade"]["POST"]

    @settings(QUICK, max_examples=500)
    @given(opentrade.as_strategy(generation_mode=GenerationMode.POSITIVE)
           | opentrade.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case):
        if isinstance(case.body, dict):
            assert judge.is_valid(case.body) == _accepts(case.body), case.body

    check()
