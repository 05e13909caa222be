"""Chartink's body and TradingView's template through the real app; the allowlist in front of both."""
from __future__ import annotations

import json

import httpx

from tests.support.service import SECRET


def test_a_chartink_scan_opens_one_trade_per_stock(service_factory, tmp_path):
    scans = tmp_path / "scans.json"
    scans.write_text(json.dumps({"Breakout Scan": {"strategy": "ck", "signal": "buy"}}))
    service = service_factory(CHARTINK_SCANS=str(scans))
    service.price(800)
    service.price(1400, token="2885")
    body = {"stocks": "SBIN,RELIANCE", "trigger_prices": "800,1400", "triggered_at": "2:34 pm",
            "scan_name": "Breakout Scan", "scan_url": "breakout-scan", "alert_name": "Alert for Breakout Scan"}
    reply = httpx.post(f"{service.url}/chartink", params={"token": SECRET}, json=body, timeout=10)
    assert reply.status_code == 202, reply.text
    again = httpx.post(f"{service.url}/chartink", params={"token": SECRET}, json=body, timeout=10)
    assert again.status_code == 200  # Chartink's retry of the same scan run: duplicates
    with service.client() as client:
        trades = client.get("/trades", params={"strategy": "ck"}).json()["trades"]
    assert sorted(t["tradingsymbol"] for t in trades) == ["RELIANCE-EQ", "SBIN-EQ"]


def test_tradingview_template_with_position_size(service_factory):
    service = service_factory()
    service.price(800)
    template = {"symbolname": "NSE:SBIN", "signal": "BUY", "price": 800.0, "type": "equity", "strategyname": "tv",
                "position_size": 5, "id": "tv-1", "token": SECRET, "stoploss": {"type": "points", "value": 8}}
    reply = httpx.post(f"{service.url}/opentrade", json=template, timeout=10)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    trade = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN", what="entry")["trade"]
    assert trade["quantity"] == 5
    flat = httpx.post(f"{service.url}/opentrade", json={**template, "signal": "SELL", "position_size": 0, "id": "tv-2"},
                      timeout=10)
    assert flat.json()["closing"] == [trade_id]
    service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="flat")


def test_the_allowlist_refuses_other_addresses(service_factory):
    service = service_factory(WEBHOOK_ALLOWLIST="tradingview")
    body = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "s", "token": SECRET}
    refused = httpx.post(f"{service.url}/opentrade", json=body, timeout=10)
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "client"
    assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
