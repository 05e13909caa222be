"""Security: who gets an answer without the secret, whether a configured secret ever leaves the process
in a log line, an error body, `/metrics` or the feed, CORS, the paper control API in live mode, and a
credentials file that others can read."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from paper.app import create_app as create_paper_app
from paper.exchange import PaperExchange
from service.web.app import create_app
from service.cli import paper_config
from service.errors import CredentialsError
from service.settings import load_settings
from tests.faults.conftest import (
    FAULT_LOGIN,
    STOP_10,
    Broker,
    feed_messages,
    leaks,
    secret_env,
    secret_values,
    wait_for,
)
from tests.support.servers import ServerThread
from tests.support.service import OPERATOR_TOKEN

# The dashboard has to load and log in before it holds a session; these answer without one and say
# nothing about trades (checked below).
LOGIN_SURFACE = {"/", "/login", "/logout", "/session", "/static"}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(:[^}]+)?\}", "1", path)


def test_nothing_but_health_and_the_login_page_answers_without_the_secret(desk_factory):
    desk = desk_factory()
    trade_id = desk.open_trade()
    anonymous = httpx.Client(base_url=desk.url, timeout=10)
    wrong = httpx.Client(base_url=desk.url, timeout=10, headers={"X-Webhook-Secret": desk.secret[:-1] + "X"})
    # The right webhook secret, every way it can be offered: it opens the alert routes and nothing else.
    webhook_only = [httpx.Client(base_url=desk.url, timeout=10, headers=headers, params=params) for headers, params in (
        ({"X-Webhook-Secret": desk.secret}, None), ({"Authorization": f"Bearer {desk.secret}"}, None),
        ({}, {"token": desk.secret}))]
    checked = []
    try:
        for route in desk.service.app.router.routes:
            if isinstance(route, WebSocketRoute):
                for headers in ({}, {"X-Webhook-Secret": "nope"}, {"Authorization": f"Bearer {desk.secret}x"},
                                {"X-Webhook-Secret": desk.secret}, {"Authorization": f"Bearer {desk.secret}"}):
                    with pytest.raises(InvalidStatus) as refused, connect(desk.ws_url(), additional_headers=headers,
                                                                          open_timeout=10):
                        pass
                    assert refused.value.response.status_code == 403
                checked.append(route.path)
                continue
            if isinstance(route, Mount):
                assert route.path in LOGIN_SURFACE, f"{route.path} is mounted without authentication"
                continue
            assert isinstance(route, Route)
            path = concrete(route.path).replace("/trades/1", f"/trades/{trade_id}")
            for method in sorted(route.methods - {"HEAD"}):
                alert_route = route.path in ("/opentrade", "/chartink")
                for client in (anonymous, wrong, *([] if alert_route else webhook_only)):
                    reply = client.request(method, path, json={"halted": True} if path == "/halt" else None)
                    if route.path == "/healthz":
                        # warnings: calendar gaps only (exchange codes, a year or a date), never a trade
                        assert reply.status_code == 200 and set(reply.json()) == {"status", "ready", "mode", "halted", "warnings"}
                    elif route.path in LOGIN_SURFACE:
                        assert reply.status_code < 500
                        assert "trades" not in reply.text.lower() or route.path == "/", (path, reply.text[:200])
                        assert str(trade_id) not in re.sub(r"\d{2,}", "", reply.text) or route.path == "/"
                    else:
                        assert reply.status_code in (401, 403), f"{method} {path}: {reply.status_code} {reply.text[:200]}"
                checked.append(f"{method} {route.path}")
        # The token travels in the query for senders that cannot set headers; a wrong one is still refused.
        assert anonymous.get("/trades", params={"token": "x" + desk.secret}).status_code == 401
        assert anonymous.post("/opentrade", json={"token": desk.secret[:-1]}).status_code == 401
        assert desk.get("/halt").json()["halted"] is False  # none of the refused calls changed anything
        with pytest.raises(InvalidStatus) as refused, connect(f"{desk.ws_url()}?token={desk.secret}", open_timeout=10):
            pass
        assert refused.value.response.status_code == 403
    finally:
        for client in (anonymous, wrong, *webhook_only):
            client.close()
    assert {"POST /opentrade", "POST /chartink", "GET /trades", "GET /metrics", "/ws/trades"} <= set(checked)


def test_cors_is_closed_by_default(desk_factory):
    desk = desk_factory()
    evil = {"Origin": "https://evil.example"}
    preflight = desk.http.options("/opentrade", headers={**evil, "Access-Control-Request-Method": "POST",
                                                          "Access-Control-Request-Headers": "x-webhook-secret"})
    assert not any(h.lower().startswith("access-control-allow") for h in preflight.headers), preflight.headers
    for path in ("/trades", "/healthz", "/metrics", "/openapi.json"):
        reply = desk.http.get(path, headers=evil)
        assert not any(h.lower().startswith("access-control-allow") for h in reply.headers), (path, reply.headers)


def test_the_paper_control_api_is_refused_in_live_mode(tmp_path):
    live = load_settings({**secret_env(), "TICKGUARD_MODE": "live", "SMARTAPI_USER": FAULT_LOGIN.clientcode,
                          "OPERATORS_FILE": str(tmp_path / "operators.json"),
                          "PAPER_DB": str(tmp_path / "paper.db")}, env_file=str(tmp_path / "absent.env"))
    exchange = PaperExchange(paper_config(live))
    control = [("POST", "/ticks", {"exchange": "NSE", "token": "3045", "ltp": 1}), ("POST", "/paths", {}),
               ("GET", "/paths", None), ("DELETE", "/paths/1", None), ("POST", "/faults", {"kind": "reject"}),
               ("DELETE", "/faults", None), ("POST", "/sessions/expire", {}), ("POST", "/reset", {}),
               ("GET", "/state", None), ("GET", "/feed", None), ("POST", "/feed/stall", {}), ("POST", "/feed/resume", {}),
               ("POST", "/feed/drop", {}), ("POST", "/feed/garbage", {"kind": "text"}),
               ("POST", "/feed/orders/pause", {}), ("POST", "/feed/orders/resume", {})]
    with ServerThread(create_paper_app(exchange)) as server:
        for method, path, body in control:
            reply = httpx.request(method, f"{server.url}/paper/v1{path}", json=body, timeout=10)
            assert reply.status_code == 403, f"{method} {path}: {reply.status_code} {reply.text}"
    assert exchange.config.control_api is False


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_credentials_file_others_can_read_is_refused(tmp_path, mode):
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps([{"clientcode": "P0002", "password": "pin-F4ULT-other",
                                        "api_key": "apikey-F4ULT-other", "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}]))
    credentials.chmod(mode)
    settings = load_settings({**secret_env(), "CREDENTIALS_FILE": str(credentials), "TICKGUARD_DB": str(tmp_path / "t.db")},
                             env_file=str(tmp_path / "absent.env"))
    with pytest.raises(CredentialsError) as refused:
        create_app(settings)
    assert "chmod 600" in str(refused.value) and "pin-F4ULT-other" not in str(refused.value)


def test_the_command_refuses_a_loose_credentials_file_without_printing_a_secret(tmp_path):
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps([{"clientcode": "P0002", "password": "pin-F4ULT-other",
                                        "api_key": "apikey-F4ULT-other", "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}]))
    credentials.chmod(0o644)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_"))},
           **secret_env(), "CREDENTIALS_FILE": str(credentials), "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"),
           "TICKGUARD_DB": str(tmp_path / "t.db"), "PAPER_URL": "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--port", "0"], check=False, env=env,
                          capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 2, done.stderr[-2000:]
    assert "chmod 600" in done.stderr
    output = done.stdout + done.stderr
    secrets = {**secret_values(env), "other PIN": "pin-F4ULT-other", "other key": "apikey-F4ULT-other"}
    assert leaks(output, secrets) == []


def test_configured_secrets_never_reach_logs_errors_metrics_or_the_feed(desk_factory, logs, capfd):
    desk = desk_factory(EXIT_ATTEMPTS="1")
    secrets = secret_values(desk.env)
    seen = desk.seen
    with connect(desk.ws_url(), additional_headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, open_timeout=10) as feed:
        # A trade through its whole life: alert with the secret in the body and in the query, entry,
        # stop, exit; a session expiry (a fresh login sends the PIN and TOTP); notifications to a dead
        # Telegram and webhook; an exit rejected until the trade is UNPROTECTED; refused calls.
        desk.price(800)
        body = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "leak",
                "quantity": 2, "stoploss": STOP_10, "token": desk.secret}
        reply = desk.keep(httpx.post(f"{desk.url}/opentrade", json=body, timeout=10))
        assert reply.status_code == 202, reply.text
        (first,) = reply.json()["trades"]
        desk.wait_trade(first, lambda t: t["state"] == "OPEN" and t["stop"], "armed")
        desk.control("POST", "/sessions/expire", json={})
        desk.price(789)
        desk.wait_trade(first, lambda t: t["state"] == "CLOSED", "stop exit after the session expired")
        query = desk.keep(httpx.post(f"{desk.url}/opentrade", params={"token": desk.secret}, timeout=10,
                                     json={**body, "token": None, "strategyname": "leak2", "id": "leak-2"}))
        assert query.status_code in (202, 422), query.text
        desk.price(800)
        second = desk.open_trade(strategyname="leak3")
        desk.control("POST", "/faults", json={"kind": "reject", "count": 3, "text": f"RMS {desk.secret[:4]}"})
        desk.price(789)
        desk.wait_trade(second, lambda t: t["state"] == "UNPROTECTED", "unprotected after rejected exits")
        # Bodies carrying a secret where a symbol or a name belongs: a 422 may echo them to their own
        # sender (not searched), but they must not reach the logs or the feed.
        for bad in ({"symbolname": desk.secret}, {"price": desk.env["SMARTAPI_KEY"]}, {"id": [desk.secret]}):
            desk.http.post("/opentrade", json={**body, **bad})
        desk.keep(httpx.post(f"{desk.url}/login", json={"secret": desk.secret + "x"}, timeout=10))
        desk.keep(httpx.get(f"{desk.url}/trades", params={"token": desk.secret + "x"}, timeout=10))
        desk.http.post("/chartink", params={"token": desk.secret, "signal": "buy"},
                  json={"stocks": desk.secret, "trigger_prices": "1", "triggered_at": "x", "scan_name": desk.secret})
        desk.get("/metrics")
        desk.get("/openapi.json")
        desk.get("/trades")
        for trade_id in (first, second):
            desk.get(f"/trades/{trade_id}")
        wait_for(lambda: "notification given up" in logs.getvalue(), "a failed notification to be logged")
        frames = []
        while True:
            try:
                frames.append(feed.recv(timeout=0.5))
            except TimeoutError:
                break
    assert any('"unprotected"' in f for f in frames)
    later = feed_messages(desk, lambda m: len(m) >= 1)
    captured = capfd.readouterr()
    where = {"logs": logs.getvalue(), "replies": "\n".join(seen), "feed": "\n".join(frames) + json.dumps(later),
             "stdout": captured.out, "stderr": captured.err}
    found = {place: leaks(text, secrets) for place, text in where.items() if leaks(text, secrets)}
    assert found == {}, found
    assert re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", where["logs"] + where["replies"] + where["feed"]) is None
    assert Broker(desk.paper).net() >= 2  # the UNPROTECTED trade is still really open at the broker
