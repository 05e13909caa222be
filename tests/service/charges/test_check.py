"""`tickguard charges check` against the paper exchange's own calculator: none differ, then a planted
difference in the paper exchange's rates is found in every trade it touches."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import httpx

from service.broker import EstimatedCharges, OrderSide
from service.charges_check import compare, legs_of
from service.store import OrderRecord
from service.trades import TradeEvent, TradeRecord, fold
from tests.service.test_desk_api import closed_by_stop, open_trade
from tests.support.paper import DEMO


def _check(service, *extra: str) -> tuple[int, dict]:
    env = {**os.environ, "PAPER_URL": service.paper.url, "TICKGUARD_DB": service.settings.tickguard_db,
           "SYMBOLS_DIR": service.settings.symbols_dir, "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "service.cli", "charges", "check", "--json", *extra], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 6), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_check_agrees_with_the_broker_then_finds_a_planted_difference(service_factory):
    service = service_factory()
    service.price(800)
    first = closed_by_stop(service, open_trade(service, quantity=7))
    service.price(800)
    second = closed_by_stop(service, open_trade(service, quantity=3, strategyname="s2"))
    code, report = _check(service)
    assert (code, report["trades"], report["differing"]) == (0, 2, 0), report
    planted = service.paper.control("PUT", "/charges", json={"segments": {"equity_intraday": {"NSE": {"stt": "0.05"}}}})
    assert planted.status_code == 200, planted.text
    code, report = _check(service)
    assert code == 6 and report["differing"] == 2, report
    for row in report["differences"]:
        assert row["trade_id"] in (first["id"], second["id"])
        found = {d["component"]: d for d in row["differences"]}
        assert set(found) == {"stt", "total"}, found
        stt = found["stt"]
        assert Decimal(stt["broker_paise"]) > 2 * stt["tickguard_paise"] - 2  # 0.05 % against 0.025 %


def test_the_paper_calculator_answers_the_hand_case(paper_factory):
    paper = paper_factory()
    with httpx.Client(base_url=paper.url, timeout=10) as client:
        login = client.post("/rest/auth/angelbroking/user/v1/loginByPassword",
                            headers={"X-PrivateKey": DEMO.api_key},
                            json={"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": paper.totp()})
        jwt = login.json()["data"]["jwtToken"]
        headers = {"X-PrivateKey": DEMO.api_key, "Authorization": f"Bearer {jwt}"}
        order = {"product_type": "INTRADAY", "quantity": "100", "exchange": "NSE", "symbol_name": "SBIN-EQ", "token": "3045"}
        reply = client.post("/rest/secure/angelbroking/brokerage/v1/estimateCharges", headers=headers, json={"orders": [
            {**order, "transaction_type": "BUY", "price": "800"}, {**order, "transaction_type": "SELL", "price": "810"}]})
        body = reply.json()
        assert body["status"] is True, body
        summary = body["data"]["summary"]
        assert abs(Decimal(str(summary["total_charges"])) - Decimal("75.68")) < Decimal("0.01"), summary
        assert summary["trade_value"] == 161000 and len(body["data"]["charges"]) == 2
        assert [g["name"] for g in summary["breakup"]] == ["Angel One Brokerage", "External Charges", "Taxes"]
        bad = client.post("/rest/secure/angelbroking/brokerage/v1/estimateCharges", headers=headers,
                          json={"orders": [{**order, "transaction_type": "HOLD", "price": "800"}]})
        assert bad.json()["status"] is False and "transaction_type" in bad.json()["message"]


def _order(role: str, side: str, filled: int, price: int, tag: str) -> OrderRecord:
    return OrderRecord(id=1, trade_id=1, role=role, attempt=1, tag=tag, broker_order_id="1", unique_order_id="u",
                       side=side, kind="MARKET", quantity=filled, price=0, status="complete", filled=filled,
                       average_price=price, text="", created_ms=0, updated_ms=0)


def test_a_square_off_by_the_broker_is_one_order_of_its_own():
    trade = TradeRecord(id=1, alert_id=None, account="A", strategy="s", exchange="NSE", token="3045",
                        tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY")
    trade = fold(trade, TradeEvent(kind="entry_fill", at_ms=1, data={"quantity": 10, "price": 80_000, "tag": "tg1E1"}))
    trade = fold(trade, TradeEvent(kind="exit_fill", at_ms=2, data={"quantity": 4, "price": 81_000, "tag": "tg1X1"}))
    trade = fold(trade, TradeEvent(kind="exit_fill", at_ms=3, data={"quantity": 6, "price": 79_000}))
    legs = legs_of(trade, [_order("entry", "BUY", 10, 80_000, "tg1E1"), _order("exit", "SELL", 4, 81_000, "tg1X1")])
    assert [(leg.side, leg.quantity, leg.price) for leg in legs] == [
        (OrderSide.BUY, 10, 80_000), (OrderSide.SELL, 4, 81_000), (OrderSide.SELL, 6, 79_000)]


def test_rounding_is_not_a_difference_but_a_paisa_more_is():
    ours = {"brokerage": 4000, "stt": 2025, "exchange_txn": 478, "sebi": 16, "stamp": 240, "gst": 809, "total": 7568}
    close = EstimatedCharges(total=Decimal("75.6812"), components={
        "brokerage": Decimal("40"), "stt": Decimal("20.25"), "exchange_txn": Decimal("4.7817"),
        "sebi": Decimal("0.161"), "stamp": Decimal("2.4"), "gst": Decimal("8.0893")})
    assert compare(ours, close, tolerance=1) == ()
    off = EstimatedCharges(total=close.total + Decimal("0.02"), components={**close.components, "stt": Decimal("20.27")})
    assert [d.component for d in compare(ours, off, tolerance=1)] == ["stt"]
