"""Edges of the HTTP API on the real app against the paper exchange: long alert ids, bodies without a
content type, prices below a paisa and trade ids beyond the store's range."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.support.service import HEADERS, SECRET

ALERT = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "edges",
         "quantity": 1, "stoploss": {"type": "points", "value": 5}}
LONG_ID = "tv:WIPRO:Long Entry Breakout Above VWAP With Volume:2026-12-04T09:15:00Z"
CHARTINK = {"stocks": "SBIN,RELIANCE", "trigger_prices": "800,1400", "triggered_at": "2:34 pm",
            "scan_name": "Edge Scan", "scan_url": "edge-scan", "alert_name": "Alert for Edge Scan"}


@pytest.fixture
def service(service_factory):
    service = service_factory()
    service.price(800)
    service.price(1400, token="2885")
    return service


def post(service, path: str, content: bytes, content_type: str | None, **params) -> httpx.Response:
    headers = HEADERS
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(f"{service.url}{path}", content=content, headers=headers, params=params, timeout=10)


def test_an_alert_id_longer_than_64_characters_trades_once(service):
    assert len(LONG_ID) > 64
    first = post(service, "/opentrade", json.dumps({**ALERT, "id": LONG_ID}).encode(), "application/json")
    assert first.status_code == 202, first.text
    again = post(service, "/opentrade", json.dumps({**ALERT, "id": LONG_ID, "price": 801}).encode(), "application/json")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["trades"] == first.json()["trades"]
    # Another id that shares the first 64 characters is another alert.
    other = post(service, "/opentrade", json.dumps({**ALERT, "id": LONG_ID + ":2"}).encode(), "application/json")
    assert other.status_code == 202, other.text
    assert service.trade_count_in_store() == (3, 2)  # the duplicate is kept as an alert (GET /alerts), without a trade


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_json_body_is_read_whatever_the_content_type_says(service, content_type):
    alert = post(service, "/opentrade", json.dumps({**ALERT, "id": f"ct-{content_type}"}).encode(), content_type)
    assert alert.status_code == 202, alert.text
    scan = post(service, "/chartink", json.dumps(CHARTINK).encode(), content_type, signal="buy",
                strategy=f"ck-{content_type}")
    assert scan.status_code == 202, scan.text
    assert [a["status"] for a in scan.json()["alerts"]] == [202, 202]


def test_a_form_encoded_chartink_body_still_works(service):
    body = "&".join(f"{k}={v}".replace(" ", "+").replace(",", "%2C") for k, v in CHARTINK.items()).encode()
    scan = post(service, "/chartink", body, "application/x-www-form-urlencoded", signal="buy", strategy="ck-form")
    assert scan.status_code == 202, scan.text
    assert [a["symbolname"] for a in scan.json()["alerts"]] == ["SBIN", "RELIANCE"]


@pytest.mark.parametrize("price", [0.005, "0.009", 0.0001])
def test_a_price_below_one_paisa_is_refused_by_name(service, price):
    body = {k: v for k, v in ALERT.items() if k not in ("quantity", "stoploss")}
    reply = post(service, "/opentrade", json.dumps({**body, "price": price}).encode(), "application/json")
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["price"]
    assert service.trade_count_in_store() == (0, 0)


def test_a_chartink_price_below_one_paisa_is_refused_by_name(service):
    scan = post(service, "/chartink", json.dumps({**CHARTINK, "trigger_prices": "800,0.005"}).encode(),
                "application/json", signal="buy")
    assert scan.status_code == 422, scan.text
    assert scan.json()["errors"][0]["field"] == "trigger_prices[1]"


@pytest.mark.parametrize("trade_id", ["9223372036854775808", "99999999999999999999999", "abc", "-1", "1.5"])
def test_a_trade_id_outside_the_store_range_is_a_4xx_with_a_reason(service, trade_id):
    headers = HEADERS
    for method, path in (("GET", f"/trades/{trade_id}"), ("POST", f"/trades/{trade_id}/close")):
        reply = httpx.request(method, f"{service.url}{path}", headers=headers, timeout=10)
        assert reply.status_code == 422, f"{method} {path}: {reply.status_code} {reply.text}"
        assert reply.json()["errors"][0]["field"] == "trade_id"


def test_the_largest_trade_id_is_simply_not_found(service):
    headers = HEADERS
    reply = httpx.get(f"{service.url}/trades/9223372036854775807", headers=headers, timeout=10)
    assert reply.status_code == 404 and reply.json()["errors"][0]["reason"] == "no such trade"


@pytest.mark.parametrize("path", ["/opentrade", "/chartink"])
def test_an_unpaired_surrogate_escape_is_refused_not_a_500(service, path):
    body = {**ALERT, "strategyname": "x\\ud800"} if path == "/opentrade" else {**CHARTINK, "scan_name": "x\\ud800"}
    raw = json.dumps(body).replace("\\\\ud800", "\\ud800").encode()  # the escape itself, as a sender would write it
    assert b'"x\\ud800"' in raw
    reply = post(service, path, raw, "application/json", signal="buy")
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"] == "body"
    assert service.trade_count_in_store() == (0, 0)


def test_an_exchange_prefix_and_the_exchange_field_may_both_be_given(service):
    body = {**ALERT, "symbolname": "NSE:SBIN", "exchange": "NSE", "id": "both"}
    reply = post(service, "/opentrade", json.dumps(body).encode(), "application/json")
    assert reply.status_code == 202, reply.text
    clash = {**ALERT, "symbolname": "NSE:SBIN", "exchange": "BSE", "id": "clash"}
    reply = post(service, "/opentrade", json.dumps(clash).encode(), "application/json")
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "exchange"
