"""Chartink's scan alerts: one /opentrade alert per stock, and the endpoint on the real app."""
from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Route

from service.alerts.parse import AlertInvalid, parse_alert
from service.alerts.chartink import ChartinkScan, chartink_id, load_chartink_scans, parse_chartink
from service.web.chartink import chartink
from service.errors import SettingsError
from tests.support.service import SECRET

# Chartink's documented sample webhook body.
SAMPLE = {
    "stocks": "SEPOWER,ASTEC,EDUCOMP,KSERASERA,IOLCP,GUJAPOLLO,EMCO",
    "trigger_prices": "3.75,541.8,2.1,0.2,329.6,166.8,1.25",
    "triggered_at": "2:34 pm",
    "scan_name": "Short term breakouts",
    "scan_url": "short-term-breakouts",
    "alert_name": "Alert for Short term breakouts",
    "webhook_url": "http://your-web-hook-url.com",
}
SCANS = {"short term breakouts": ChartinkScan(strategy="breakouts", signal="buy")}
DAY = date(2025, 11, 20)


def test_the_sample_body_becomes_one_alert_per_stock():
    alerts = parse_chartink(SAMPLE, {}, SCANS, day=DAY)
    assert alerts[:2] == [
        {"symbolname": "SEPOWER", "signal": "buy", "price": "3.75", "type": "equity", "strategyname": "breakouts",
         "id": "chartink:Short term breakouts:2025-11-20 2:34 pm:SEPOWER"},
        {"symbolname": "ASTEC", "signal": "buy", "price": "541.8", "type": "equity", "strategyname": "breakouts",
         "id": "chartink:Short term breakouts:2025-11-20 2:34 pm:ASTEC"},
    ]
    assert [(a["symbolname"], a["price"]) for a in alerts] == list(zip(
        SAMPLE["stocks"].split(","), SAMPLE["trigger_prices"].split(",")))
    for alert in alerts:  # every one is a valid /opentrade alert
        parsed = parse_alert(alert)
        assert parsed.signal == "buy" and parsed.id == alert["id"]


def test_without_a_day_the_id_is_scan_time_and_stock():
    (first, *_) = parse_chartink(SAMPLE, {}, SCANS)
    assert first["id"] == "chartink:Short term breakouts:2:34 pm:SEPOWER"


def test_query_parameters_override_the_scan_table():
    alerts = parse_chartink(SAMPLE, {"signal": "SHORT", "strategy": "fades"}, SCANS, day=DAY)
    assert {(a["signal"], a["strategyname"]) for a in alerts} == {("short", "fades")}
    unknown = parse_chartink({**SAMPLE, "scan_name": "Gap  downs"}, {"signal": "sell"}, SCANS, day=DAY)
    assert unknown[0]["strategyname"] == "Gap downs" and unknown[0]["signal"] == "sell"


def test_scan_names_match_ignoring_case_and_spacing():
    alerts = parse_chartink({**SAMPLE, "scan_name": "  SHORT term   Breakouts "}, {}, SCANS, day=DAY)
    assert alerts[0]["strategyname"] == "breakouts"


def test_a_long_id_is_hashed_to_fit():
    name = "A very long scan name that somebody typed into Chartink one afternoon"
    alert_id = chartink_id(name, "2:34 pm", "SBIN", DAY)
    assert alert_id.startswith("chartink:") and len(alert_id) <= 64
    assert alert_id == chartink_id(name, "2:34 pm", "SBIN", DAY) != chartink_id(name, "2:35 pm", "SBIN", DAY)


def errors_of(body, query=None, scans=SCANS) -> dict[str, str]:
    with pytest.raises(AlertInvalid) as caught:
        parse_chartink(body, query or {}, scans, day=DAY)
    return {e["field"]: e["reason"] for e in caught.value.errors}


def test_mismatched_counts_are_refused():
    errors = errors_of({**SAMPLE, "trigger_prices": "3.75,541.8"})
    assert errors == {"trigger_prices": "2 prices for 7 stocks"}


def test_an_unknown_scan_without_a_signal_is_refused():
    errors = errors_of({**SAMPLE, "scan_name": "Gap downs"})
    assert "not in CHARTINK_SCANS" in errors["signal"] and "?signal=" in errors["signal"]


def test_empty_and_missing_fields_are_named_together():
    assert errors_of({"stocks": "", "trigger_prices": "", "scan_name": "Short term breakouts",
                      "triggered_at": "2:34 pm"}) == {"stocks": "no stock in the alert"}
    errors = errors_of({"stocks": "SBIN,,TCS", "trigger_prices": "800,x,-1"}, {"signal": "hold"})
    assert set(errors) == {"stocks[1]", "trigger_prices[1]", "trigger_prices[2]", "scan_name", "triggered_at",
                           "signal"}
    assert errors_of(["not", "an", "object"]) == {"body": "expected a JSON object"}
    assert errors_of({**SAMPLE, "stocks": 5}) == {"stocks": "required, a comma-separated list"}


symbols = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ&-", min_size=1, max_size=12)
prices = st.decimals(min_value="0.05", max_value="99999", places=2)


@given(st.lists(st.tuples(symbols, prices), min_size=1, max_size=40))
def test_n_stocks_and_n_prices_give_n_alerts_in_order(rows):
    body = {**SAMPLE, "stocks": ",".join(s for s, _ in rows), "trigger_prices": ",".join(str(p) for _, p in rows)}
    alerts = parse_chartink(body, {}, SCANS, day=DAY)
    assert [(a["symbolname"], a["price"]) for a in alerts] == [(s, str(p)) for s, p in rows]
    assert all(a["id"] == chartink_id("Short term breakouts", "2:34 pm", s, DAY) for a, (s, _) in zip(alerts, rows))


@given(symbols, st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=5))
def test_any_count_mismatch_is_refused(symbol, stocks, prices):
    body = {**SAMPLE, "stocks": ",".join([symbol] * stocks), "trigger_prices": ",".join(["10"] * prices)}
    if stocks == prices:
        assert len(parse_chartink(body, {}, SCANS)) == stocks
    else:
        with pytest.raises(AlertInvalid):
            parse_chartink(body, {}, SCANS)


def test_the_scans_file_is_validated(tmp_path):
    path = tmp_path / "scans.json"
    path.write_text(json.dumps({"Short term breakouts": {"strategy": "breakouts", "signal": "Buy",
                                                         "product": "delivery"}}))
    scans = load_chartink_scans(str(path))
    assert parse_chartink(SAMPLE, {}, scans)[0]["product"] == "DELIVERY"
    assert load_chartink_scans("") == {}
    path.write_text(json.dumps({"x": {"strategy": "s", "signal": "hold"}, "y": {"strategy": "s", "signal": "buy",
                                                                               "size": 1}}))
    with pytest.raises(SettingsError, match="CHARTINK_SCANS"):
        load_chartink_scans(str(path))
    path.write_text(json.dumps({"x": {"strategy": "s", "signal": "hold"}}))
    with pytest.raises(SettingsError, match="signal must be one of"):
        load_chartink_scans(str(path))


# The endpoint, on the real app against the paper exchange -------------------------------------------
@pytest.fixture
def chartink_service(service_factory, tmp_path):
    scans = tmp_path / "scans.json"
    scans.write_text(json.dumps({"Short term breakouts": {"strategy": "breakouts", "signal": "buy"}}))
    service = service_factory(CHARTINK_SCANS=str(scans))
    service.app.router.routes.append(Route("/chartink", chartink, methods=["POST"]))
    service.price(800, "3045")
    service.price(1400, "2885")
    return service


def test_the_endpoint_answers_per_stock_and_retries_are_duplicates(chartink_service):
    body = {**SAMPLE, "stocks": "SBIN,RELIANCE,NOSUCHSTOCK", "trigger_prices": "800,1400,12"}
    url = f"{chartink_service.url}/chartink"
    reply = httpx.post(url, params={"token": SECRET}, json=body, timeout=10)
    assert reply.status_code == 202, reply.text
    alerts = reply.json()["alerts"]
    assert [(a["symbolname"], a["status"]) for a in alerts] == [("SBIN", 202), ("RELIANCE", 202), ("NOSUCHSTOCK", 422)]
    assert len(alerts[0]["trades"]) == 1 and alerts[2]["errors"][0]["field"] == "symbolname"
    again = httpx.post(url, headers={"X-Webhook-Secret": SECRET}, json=body, timeout=10)
    assert [(a["symbolname"], a["status"], a.get("duplicate")) for a in again.json()["alerts"]] == [
        ("SBIN", 200, True), ("RELIANCE", 200, True), ("NOSUCHSTOCK", 422, None)]
    assert again.status_code == 422  # nothing accepted: the first error's status
    assert again.json()["alerts"][0]["trades"] == alerts[0]["trades"]


def test_the_endpoint_refuses_without_the_secret_and_names_bad_fields(chartink_service):
    url = f"{chartink_service.url}/chartink"
    assert httpx.post(url, json=SAMPLE, timeout=10).status_code == 401
    assert httpx.post(url, params={"token": "wrong"}, json=SAMPLE, timeout=10).status_code == 401
    reply = httpx.post(url, params={"token": SECRET}, json={**SAMPLE, "scan_name": "Unknown"}, timeout=10)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "signal"
    reply = httpx.post(url, params={"token": SECRET}, content=b"not json", timeout=10)
    assert reply.status_code == 422
    assert reply.json()["errors"] == [{"field": "body", "reason": "expected a JSON object"}]
    assert chartink_service.trade_count_in_store() == (0, 0)
