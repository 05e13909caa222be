"""The public HTTP replies pinned byte for byte: a fixed script of requests against the real app on the
paper exchange, each reply's status, content type and body compared with `golden/http_replies.json`.

The script starts from fresh stores and sends its requests in one order, so alert and trade ids are the
same on every run, and tickguard's clock is moved to a fixed day, so `GET /halt` names the same day. Not
pinned: replies carrying a wall-clock time (a trade's view, the halt view once a halt is set), values that
depend on fills and latencies (`/metrics`), and the unknown-symbol 422, which names the date of the
instrument master (the symbol book reads the wall clock, not the injected one).

    PIN_HTTP_REPLIES=write pytest tests/service/test_http_replies_pinned.py   # rewrite the golden file

Without the variable the replies are compared, and any byte of difference fails the test.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clocks import ShiftedClock
from service.settings import PAPER_OPERATOR, PAPER_OPERATOR_PASSWORD
from tests.support.service import OPERATOR_TOKEN, SECRET, RunningService

GOLDEN = Path(__file__).parent / "golden" / "http_replies.json"
DAY = dt.date(2026, 12, 1)  # tickguard's day (the paper market is open every day, all day)
NIFTY = "99926000"
RELIANCE = "2885"
STOP = {"type": "points", "value": 5}
BUY = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "pin", "quantity": 1,
       "stoploss": STOP}
OPTION = {"symbolname": "NIFTY", "signal": "buy", "price": 24000, "type": "option", "strategyname": "pin-opt",
          "lots": 2, "stoploss": {"type": "points", "value": 20}}
SCAN = {"stocks": "SBIN,RELIANCE", "trigger_prices": "800,1400", "triggered_at": "2:34 pm", "scan_name": "Pin Scan",
        "scan_url": "pin-scan", "alert_name": "Alert for Pin Scan"}


class Replies:
    """The replies of the script, by name, in the order they were received."""

    def __init__(self, service: RunningService) -> None:
        self.service = service
        self.pinned: dict[str, dict[str, Any]] = {}

    def send(self, name: str, method: str, path: str, *, secret: str | None = SECRET, **kwargs: Any) -> httpx.Response:
        """Send one request (with the webhook secret and the demo operator's API token as headers unless
        `secret` is None) and pin its reply."""
        headers = dict(kwargs.pop("headers", {}))
        if secret is not None:
            headers["X-Webhook-Secret"] = secret
            headers.setdefault("Authorization", f"Bearer {OPERATOR_TOKEN}")
        reply = httpx.request(method, f"{self.service.url}{path}", headers=headers, timeout=10, **kwargs)
        assert name not in self.pinned, f"two replies named {name}"
        self.pinned[name] = {"request": f"{method} {reply.request.url.raw_path.decode()}", "status": reply.status_code,
                             "content_type": reply.headers.get("content-type"), "body": reply.content.decode("utf-8")}
        return reply

    def alert(self, name: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.send(name, "POST", "/opentrade", json=body, **kwargs)

    def raw_alert(self, name: str, content: bytes, **kwargs: Any) -> httpx.Response:
        return self.send(name, "POST", "/opentrade", content=content, **kwargs)


def altered(base: dict[str, Any], *left_out: str, **fields: Any) -> dict[str, Any]:
    """`base` without the fields `left_out` (absent, not null) and with `fields` set."""
    return {**{k: v for k, v in base.items() if k not in left_out}, **fields}


def trade_of(reply: httpx.Response) -> int:
    """The one trade an accepted alert opened."""
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    return trade_id


def open_and_armed(service: RunningService, trade_id: int) -> dict[str, Any]:
    return service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                              what=f"trade {trade_id} filled and armed")["trade"]


@pytest.fixture
def service(service_factory, tmp_path) -> RunningService:
    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({"pin-rev": {"policy": "reverse"}}))
    # The paper exchange keeps today's universe: the symbol book picks contracts by the wall clock.
    service = service_factory(clock=ShiftedClock(11, 0, day=DAY), STRATEGIES_FILE=str(strategies))
    service.price(800)
    service.price(1400, token=RELIANCE)
    service.price(24000, token=NIFTY)
    return service


def run_script(replies: Replies, service: RunningService) -> None:
    send, alert, raw_alert = replies.send, replies.alert, replies.raw_alert

    # Before anything is stored: health, the halt view, the API document, the dashboard's login.
    send("healthz", "GET", "/healthz", secret=None)
    send("halt_view_fresh", "GET", "/halt")
    send("openapi", "GET", "/openapi.json")
    send("openapi_no_token", "GET", "/openapi.json", secret=None)
    send("session_without_cookie", "GET", "/session", secret=None)
    send("login_wrong_password", "POST", "/login", secret=None, json={"name": PAPER_OPERATOR, "password": "wrong"})
    send("login_with_the_webhook_secret", "POST", "/login", secret=None, json={"secret": SECRET})
    send("login_not_json_body", "POST", "/login", secret=None, content=b"{",
         headers={"content-type": "application/json"})
    send("login", "POST", "/login", secret=None, json={"name": PAPER_OPERATOR, "password": PAPER_OPERATOR_PASSWORD})
    send("trades_with_the_webhook_secret", "GET", "/trades", secret=None, headers={"X-Webhook-Secret": SECRET})
    send("halt_with_the_webhook_secret", "POST", "/halt", secret=None, headers={"X-Webhook-Secret": SECRET},
         json={"halted": True})
    send("logout", "POST", "/logout", secret=None, json={})

    # /opentrade: who may send, and bodies that are no alert.
    alert("opentrade_no_token", BUY, secret=None)
    alert("opentrade_wrong_header_token", BUY, secret="wrong")
    alert("opentrade_wrong_body_token", {**BUY, "token": "wrong"}, secret=None)
    alert("opentrade_wrong_bearer_token", BUY, secret=None, headers={"Authorization": "Bearer wrong"})
    raw_alert("opentrade_not_json_no_token", b"{not json", secret=None)
    raw_alert("opentrade_not_json", b"{not json")
    raw_alert("opentrade_empty_body", b"")
    raw_alert("opentrade_json_array", b"[1, 2]")
    raw_alert("opentrade_unpaired_surrogate", json.dumps({**BUY, "strategyname": "\ud800"}).encode())
    raw_alert("opentrade_body_too_large", json.dumps({**BUY, "id": "x" * 17_000}).encode())
    raw_alert("opentrade_body_too_large_no_token", b" " * 16_385, secret=None)

    # /opentrade: each validation family, several bad fields at once.
    alert("alert_empty_object", {})
    alert("alert_bad_words_and_unknown_fields", {"symbolname": " ", "signal": "hold", "price": "abc", "type": "future",
                                                 "strategyname": "s" * 65, "colour": "red", "exchange": "LSE",
                                                 "product": "MIS", "token": 5, "id": 7})
    alert("alert_bad_prices_zero", {**BUY, "price": 0})
    alert("alert_bad_prices_below_paisa", {**BUY, "price": 0.005})
    alert("alert_bad_prices_negative_text", {**BUY, "price": "-5"})
    alert("alert_bad_stoploss_shapes", {**BUY, "stoploss": 5, "target": {"type": "points"},
                                        "trail": {"type": "rupees", "value": 1}})
    alert("alert_bad_stoploss_values", {**BUY, "stoploss": {"type": "stars", "value": -1},
                                        "target": {"type": "entry_pct", "value": 100, "extra": 1},
                                        "trail": {"type": "points", "value": 0,
                                                  "activation": {"type": "fund_pct", "value": 1}}})
    alert("alert_bad_trail_shape", {**BUY, "trail": {"value": 1}, "stoploss": {"type": "fund_pct", "value": "150"}})
    alert("alert_bad_quantities", {**BUY, "quantity": 0, "lots": -1})
    alert("alert_bad_quantity_fraction", {**BUY, "quantity": 1.5})
    alert("alert_bad_quantity_text", {**BUY, "quantity": "two"})
    alert("alert_percent_with_buy_and_quantity", {**BUY, "percent": 50})
    alert("alert_percent_with_position_size", altered(BUY, "quantity", signal="exit", percent=150, position_size=1))
    alert("alert_bad_option_block", {**BUY, "option": {"expiry": "soon"}, "stop_basis": "underlying"})
    alert("alert_bad_option_fields", {**OPTION, "option": {"expiry": "31FEB", "strike": "ITM0", "right": "XX"},
                                      "product": "DELIVERY", "stop_basis": "spot"})
    alert("alert_bad_accounts", {**BUY, "accounts": []})
    alert("alert_unknown_accounts", {**BUY, "accounts": ["NOBODY", "NOONE"]})
    alert("alert_option_quantity_not_whole_lots", altered(OPTION, "lots", quantity=1))
    alert("alert_stop_beyond_entry", {**BUY, "stoploss": {"type": "points", "value": 800}})
    alert("alert_percent_sell_under_reverse", altered(BUY, "quantity", strategyname="pin-rev", signal="sell",
                                                       percent=50))
    alert("alert_delivery_short_of_cash_equity", {**BUY, "strategyname": "pin-rev", "signal": "sell",
                                                  "product": "DELIVERY", "quantity": 2})

    # Accepted alerts, a duplicate, and alerts that store a refusal. Ids follow the order sent.
    sbin = trade_of(alert("accept_equity_points_stop", {**BUY, "id": "pin-sbin-1"}))
    alert("duplicate_by_id", {**BUY, "id": "pin-sbin-1", "price": 801})
    reliance = trade_of(alert("accept_equity_pct_stop_target_trail", {
        **BUY, "symbolname": "RELIANCE", "price": 1400, "quantity": 3, "strategyname": "pin-rel",
        "stoploss": {"type": "entry_pct", "value": 1}, "target": {"type": "points", "value": 20},
        "trail": {"type": "points", "value": 5, "activation": {"type": "points", "value": 10}}}))
    option = trade_of(alert("accept_option_premium_stop", OPTION))
    alert("accept_option_underlying_stop", {**OPTION, "strategyname": "pin-opt-u", "lots": 1,
                                            "stop_basis": "underlying", "stoploss": {"type": "points", "value": 50}})
    alert("accept_equity_rupees_stop", {**BUY, "strategyname": "pin-rupees", "quantity": 2,
                                        "stoploss": {"type": "rupees", "value": 50}})
    alert("accept_equity_short_intraday", {**BUY, "strategyname": "pin-short", "signal": "short"})
    alert("accept_equity_sized_fund_pct_stop", altered(BUY, "quantity", strategyname="pin-fund",
                                                        stoploss={"type": "fund_pct", "value": 1}))
    alert("duplicate_by_body", altered(BUY, "quantity", strategyname="pin-fund",
                                        stoploss={"type": "fund_pct", "value": 1}))
    alert("refused_sell_with_nothing_open", {**BUY, "strategyname": "pin-idle", "signal": "sell"})
    alert("refused_exit_with_nothing_open", altered(BUY, "quantity", strategyname="pin-idle", signal="exit"))

    contract = open_and_armed(service, option)["tradingsymbol"]  # the day's contract: in the request, not the reply
    alert("refused_named_contract_sell_to_open", {**OPTION, "symbolname": contract, "signal": "sell",
                                                  "strategyname": "pin-other"})

    # /chartink (Chartink sets no headers: its secret travels as the `token` query parameter).
    send("chartink_no_token", "POST", "/chartink", secret=None, json=SCAN, params={"signal": "buy"})
    send("chartink_wrong_query_token", "POST", "/chartink", secret=None, json=SCAN, params={"token": "wrong"})
    send("chartink_missing_fields", "POST", "/chartink", json={"stocks": "SBIN,", "trigger_prices": "1,2,0.001"},
         params={"signal": "hold", "strategy": "c" * 65})
    send("chartink_unknown_scan", "POST", "/chartink", json=SCAN)
    send("chartink_not_json", "POST", "/chartink", content=b"not json", params={"signal": "buy"})
    send("chartink_accepted", "POST", "/chartink", json=SCAN, params={"signal": "buy", "strategy": "pin-scan"})
    send("chartink_retry_duplicates", "POST", "/chartink", json=SCAN, params={"signal": "buy", "strategy": "pin-scan"})

    # The read API's inputs.
    send("trades_no_token", "GET", "/trades", secret=None)
    send("trades_limit_zero", "GET", "/trades", params={"limit": "0"})
    send("trades_limit_text", "GET", "/trades", params={"limit": "ten"})
    send("trades_limit_too_large", "GET", "/trades", params={"limit": "1001"})
    send("trades_bad_state", "GET", "/trades", params={"state": "OPEN,SLEEPING"})
    send("trade_id_not_a_number", "GET", "/trades/abc")
    send("trade_id_beyond_range", "GET", "/trades/9223372036854775808")
    send("trade_unknown", "GET", "/trades/999")
    send("trades_bad_day", "GET", "/trades", params={"day": "2026-02-30"})
    send("trades_bad_before", "GET", "/trades", params={"before": "-1"})
    send("trades_csv_bad_day", "GET", "/trades.csv", params={"day": "today"})
    send("trades_csv_empty_day", "GET", "/trades.csv", params={"day": "2001-01-01"})
    send("alerts_bad_status", "GET", "/alerts", params={"status": "lost"})
    send("alerts_no_token", "GET", "/alerts", secret=None)
    send("prices_unknown_trade", "GET", "/trades/999/prices")
    send("prices_bad_since", "GET", "/trades/1/prices", params={"since_ms": "soon"})

    # Closing: bad input first, then a part, then the whole, then a trade already closed.
    send("close_no_token", "POST", f"/trades/{sbin}/close", secret=None)
    send("close_bad_trade_id", "POST", "/trades/-1/close")
    send("close_unknown_trade", "POST", "/trades/999/close")
    send("close_unknown_field", "POST", f"/trades/{sbin}/close", json={"qty": 1})
    send("close_not_an_object", "POST", f"/trades/{sbin}/close", json=[1])
    send("close_quantity_zero", "POST", f"/trades/{sbin}/close", json={"quantity": 0})
    send("close_quantity_text", "POST", f"/trades/{sbin}/close", json={"quantity": "all"})
    send("close_body_too_large", "POST", f"/trades/{sbin}/close", content=b" " * 16_385)
    open_and_armed(service, sbin)
    send("close_more_than_open", "POST", f"/trades/{sbin}/close", json={"quantity": 5})
    send("close_part_not_whole_lots", "POST", f"/trades/{option}/close", json={"quantity": 1})
    open_and_armed(service, reliance)
    send("close_part", "POST", f"/trades/{reliance}/close", json={"quantity": 1})
    send("close_whole", "POST", f"/trades/{sbin}/close")
    service.wait_trade(sbin, lambda t: t["state"] == "CLOSED", what=f"trade {sbin} closed")
    send("close_already_closed", "POST", f"/trades/{sbin}/close", json={"quantity": 1})
    send("close_whole_already_closed", "POST", f"/trades/{sbin}/close")

    # The operator's halt: bad bodies, then halted (an entry refused), then lifted.
    send("halt_not_json", "POST", "/halt", content=b"halt")
    send("halt_missing_halted", "POST", "/halt", json={"flatten": True})
    send("halt_flatten_not_bool", "POST", "/halt", json={"halted": True, "flatten": "yes"})
    send("halt_reason_too_long", "POST", "/halt", json={"halted": True, "reason": "r" * 201})
    send("halt_no_token", "POST", "/halt", secret=None, json={"halted": True})
    send("halt_set", "POST", "/halt", json={"halted": True, "reason": "pinning replies"})
    alert("refused_while_halted", {**BUY, "strategyname": "pin-halted"})
    send("chartink_refused_while_halted", "POST", "/chartink", json={**SCAN, "triggered_at": "3:00 pm"},
         params={"signal": "buy", "strategy": "pin-scan-halted"})
    send("healthz_halted", "GET", "/healthz", secret=None)
    send("halt_lifted", "POST", "/halt", json={"halted": False})


def test_public_replies_are_byte_for_byte_the_pinned_ones(service):
    replies = Replies(service)
    run_script(replies, service)
    if os.environ.get("PIN_HTTP_REPLIES") == "write":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(replies.pinned, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing: run this test once with PIN_HTTP_REPLIES=write")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert list(replies.pinned) == list(golden), "the script's replies are not the pinned ones"
    changed = [name for name in golden if replies.pinned[name] != golden[name]]
    # A body is compared as text decoded strictly from UTF-8: equal text is equal bytes.
    assert {name: replies.pinned[name] for name in changed} == {name: golden[name] for name in changed}, \
        f"replies changed: {', '.join(changed)}"
