from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.alerts.parse import AlertInvalid, Signal, dedup_key, parse_alert

BASE = {"symbolname": "SBIN", "signal": "buy", "price": 812.5, "type": "equity", "strategyname": "s1"}


def errors(body) -> dict[str, str]:
    with pytest.raises(AlertInvalid) as caught:
        parse_alert(body)
    return {e["field"]: e["reason"] for e in caught.value.errors}


def test_minimal_alert():
    alert = parse_alert(BASE)
    assert alert.signal is Signal.BUY and alert.price == Decimal("812.5")
    assert alert.product == "INTRADAY" and alert.stop_basis == "option"


@pytest.mark.parametrize("word, signal, chartink", [
    ("BUY", Signal.BUY, False), ("Sell", Signal.SELL, False), ("exit", Signal.EXIT, False),
    ("short", Signal.SELL, True), ("COVER", Signal.BUY, True),
])
def test_signal_words(word, signal, chartink):
    alert = parse_alert({**BASE, "signal": word})
    assert (alert.signal, alert.chartink_word) == (signal, chartink)


def test_every_problem_is_reported_at_once():
    found = errors({"signal": "hold", "price": -3, "type": "future", "colour": "red"})
    assert found == {
        "symbolname": "required", "strategyname": "required",
        "signal": "expected one of buy, sell, exit, short, cover",
        "price": "must be at least 0.01 and at most 1000000000", "type": "expected one of equity, option", "colour": "unknown field",
    }


@pytest.mark.parametrize("patch, field", [
    ({"price": "abc"}, "price"), ({"price": True}, "price"), ({"price": float("inf")}, "price"),
    ({"quantity": 1.5}, "quantity"), ({"quantity": 0}, "quantity"), ({"quantity": 5, "lots": 1}, "lots"),
    ({"stoploss": {"type": "points"}}, "stoploss"), ({"stoploss": {"type": "ticks", "value": 1}}, "stoploss.type"),
    ({"stoploss": {"type": "entry_pct", "value": 150}}, "stoploss.value"),
    ({"trail": {"type": "rupees", "value": 5}}, "trail.type"),
    ({"trail": {"type": "points", "value": 5, "activation": {"type": "fund_pct", "value": 1}}}, "trail.activation.type"),
    ({"stop_basis": "underlying"}, "stop_basis"), ({"option": {"strike": "ATM"}}, "option"),
    ({"product": "MIS"}, "product"), ({"accounts": []}, "accounts"), ({"exchange": "NYSE"}, "exchange"),
    ({"symbolname": "x" * 65}, "symbolname"), ({"id": ""}, "id"),
])
def test_bad_fields_are_named(patch, field):
    assert field in errors({**BASE, **patch})


def test_option_alert_with_everything():
    alert = parse_alert({**BASE, "symbolname": "NIFTY", "type": "option", "price": 24012,
                         "option": {"expiry": "monthly", "strike": "otm2", "right": "pe"}, "stop_basis": "underlying",
                         "lots": 2, "stoploss": {"type": "points", "value": 20},
                         "trail": {"type": "points", "value": 10, "activation": {"type": "points", "value": 15}}})
    assert alert.option is not None and (alert.option.expiry, alert.option.strike, alert.option.right) == ("monthly", "OTM2", "PE")
    assert alert.trail is not None and alert.trail.activation is not None and alert.trail.activation.value == 15
    assert alert.lots == 2 and alert.stop_basis == "underlying"


@pytest.mark.parametrize("field", ["symbolname", "signal", "price", "type", "strategyname"])
def test_a_required_field_sent_as_null_is_required(field):
    assert errors({**BASE, field: None})[field] == "required"


def test_non_objects_are_refused():
    assert errors([1, 2]) == {"body": "expected a JSON object"}


def test_an_id_of_any_length_is_accepted_and_a_long_one_keyed_by_its_digest():
    long_id = "tv:WIPRO:Long Entry Breakout Above VWAP With Volume:2026-12-04T09:15:00Z"
    assert parse_alert({**BASE, "id": long_id}).id == long_id
    assert parse_alert({**BASE, "id": "x" * 10_000}).id == "x" * 10_000
    key = dedup_key({**BASE, "id": long_id})
    assert key.startswith("id-sha256:") and len(key) <= 80
    assert key == dedup_key({**BASE, "id": f"  {long_id} ", "price": 1})
    assert key != dedup_key({**BASE, "id": long_id + "2"})
    assert dedup_key({**BASE, "id": "short-id"}) == "id:short-id"  # keys stored before stay valid


@pytest.mark.parametrize("price", [0.005, "0.009", 0.0001, "0.00", 0, "1e3", "+5", " 5.", "1_000", "١٢"])
def test_a_price_must_be_at_least_one_paisa_written_as_digits(price):
    assert "price" in errors({**BASE, "price": price})


@pytest.mark.parametrize("price, value", [(0.01, "0.01"), ("0.01", "0.01"), (" 812.50\n", "812.50"),
                                          ("0001000000000.000", "1000000000.000"), (1e9, "1000000000.0")])
def test_prices_from_one_paisa_to_a_billion(price, value):
    assert parse_alert({**BASE, "price": price}).price == Decimal(value)


def test_words_ignore_case_and_surrounding_whitespace_but_nothing_else():
    alert = parse_alert({**BASE, "signal": " SeLL\t", "type": "EQUITY ", "product": "delivery", "exchange": "nse"})
    assert (alert.signal, alert.type, alert.product, alert.exchange) == (Signal.SELL, "equity", "DELIVERY", "NSE")
    assert "signal" in errors({**BASE, "signal": "ſell"})  # long s: not an ASCII letter
    assert "type" in errors({**BASE, "type": "equ ity"})


def test_optional_fields_sent_as_null_are_left_out():
    nulls = {f: None for f in ("id", "token", "position_size", "exchange", "product", "quantity", "stoploss",
                                "target", "trail", "stop_basis", "option", "accounts")}
    alert = parse_alert({**BASE, **nulls})
    assert alert.id is None and alert.stoploss is None and alert.product == "INTRADAY"


@pytest.mark.parametrize("patch, field", [
    ({"stoploss": {"type": "points", "value": None}}, "stoploss.value"),
    ({"stoploss": {"type": None, "value": 5}}, "stoploss.type"),
    ({"trail": {"value": 5}}, "trail"), ({"trail": {"type": "points", "value": None}}, "trail.value"),
    ({"token": 5}, "token"), ({"quantity": None, "lots": None}, "lots"),
    ({"type": "option", "option": {"expiry": "12DEC2026\nx"}}, "option.expiry"),
    ({"type": "option", "option": {"strike": "24000"}}, "option.strike"),
    ({"quantity": "5.5"}, "quantity"), ({"quantity": "1000000001"}, "quantity"),
])
def test_what_was_silently_ignored_is_refused(patch, field):
    assert field in errors({**BASE, **patch})


def test_dedup_key_ignores_the_secret_and_prefers_the_id():
    assert dedup_key({**BASE, "token": "s3cret"}) == dedup_key(BASE)
    assert dedup_key({**BASE, "id": "a1"}) == dedup_key({**BASE, "id": "a1", "price": 1})
    assert dedup_key(BASE) != dedup_key({**BASE, "price": 812.55})
    assert "s3cret" not in dedup_key({**BASE, "token": "s3cret"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(sorted(BASE) + ["quantity", "stoploss", "trail", "option", "x"]), json_values)
       | st.builds(lambda patch: {**BASE, **patch}, st.dictionaries(st.sampled_from(sorted(BASE)), json_values)))
def test_arbitrary_bodies_either_parse_or_name_fields(body):
    try:
        parse_alert(body)
    except AlertInvalid as exc:
        assert exc.errors and all(set(e) == {"field", "reason"} and e["reason"] for e in exc.errors)
