from __future__ import annotations

import json

import pytest

from service.replay.errors import VariantsError
from service.replay.variants import LIVE, load_variants, parse_variants
from tests.service.replay.synth import plan, rules


def test_live_is_always_first_and_the_files_variants_follow_in_order():
    variants = parse_variants({"b": {"stoploss": {"type": "points", "value": 5}},
                               "a": {"stoploss": {"type": "entry_pct", "value": 0.8}}})
    assert [v.name for v in variants] == [LIVE, "b", "a"]
    assert [v.name for v in load_variants(None)] == [LIVE]


def test_a_variant_replaces_the_rules_and_extends_live_keeps_the_rest():
    record = plan(rules_=rules(stop=("points", 5), target=("points", 9))).first
    live, own, wider = parse_variants({
        "own": {"trail": {"type": "entry_pct", "value": 0.5, "activation": {"type": "points", "value": 0}}},
        "wider": {"extends": "live", "stoploss": {"type": "points", "value": 10}, "target": None}})
    assert live.apply(record) is record
    assert own.apply(record).spec.rules == {"stop": None, "target": None, "trail": {
        "type": "entry_pct", "value": "0.5", "activation": {"type": "points", "value": "0"}}}
    assert wider.apply(record).spec.rules == {"stop": {"type": "points", "value": "10"}, "target": None, "trail": None}
    assert wider.apply(record).spec.rule_source == "variant wider"


def test_every_problem_is_named_at_once():
    with pytest.raises(VariantsError) as caught:
        parse_variants({"live": {}, "x": {"stoploss": {"type": "ticks", "value": 5}},
                        "y": {"trail": {"type": "rupees", "value": 0}}, "z": {"stop": {}}, "empty": {},
                        "pct": {"stoploss": {"type": "entry_pct", "value": 100}}})
    problems = caught.value.problems
    assert any(p.startswith("live:") for p in problems)
    assert any(p.startswith("x: stoploss.type") for p in problems)
    assert any(p.startswith("y: trail.type") for p in problems) and any(p.startswith("y: trail.value") for p in problems)
    assert any(p.startswith("z:") and "stop" in p for p in problems)
    assert any(p.startswith("empty:") for p in problems)
    assert any(p.startswith("pct: stoploss.value") for p in problems)


def test_a_file_that_is_not_json_is_refused_with_its_path(tmp_path):
    path = tmp_path / "v.json"
    path.write_text("{not json")
    with pytest.raises(VariantsError, match="v.json"):
        load_variants(path)
    path.write_text(json.dumps(["a list"]))
    with pytest.raises(VariantsError, match="JSON object"):
        load_variants(path)
