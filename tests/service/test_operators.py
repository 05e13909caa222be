"""Operators: who may watch and who may act, their API tokens, sessions that outlive a restart, and the
webhook secret kept to the alert routes (service/operators/, service/web/auth.py)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from pathlib import Path

import httpx
import pytest

from service.operators import OperatorBook, OperatorsFileError
from service.web.auth import LoginBrake
from tests.support.service import SECRET, on_backend

PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "watching all day"
STOP_10 = {"type": "points", "value": 10}


@pytest.fixture(params=["sqlite", "postgres"])
def any_service_factory(request, service_factory):
    yield from on_backend(request.param, service_factory)


def operators_file(tmp_path) -> tuple[str, str, str]:
    """A file with a trader (asha) and a viewer (vik); each one's API token."""
    path = tmp_path / "operators.json"
    book = OperatorBook(_empty(path))
    book.set_operator("asha", "trader", PASSWORD)
    book.set_operator("vik", "viewer", VIEWER_PASSWORD)
    return str(path), book.issue_token("asha", "tests"), book.issue_token("vik")


def _empty(path):
    path.write_text('{"operators": {}, "tokens": {}}')
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The book ----------------------------------------------------------------------------------------------
def test_passwords_are_argon2id_hashes_and_the_file_is_its_owners_alone(tmp_path):
    path, _, _ = operators_file(tmp_path)
    text = Path(path).read_text()
    content = json.loads(text)
    assert content["operators"]["asha"]["password"].startswith("$argon2id$")
    assert PASSWORD not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    book = OperatorBook(path)
    assert book.check_password("asha", PASSWORD).role == "trader"
    assert book.check_password("asha", PASSWORD + "x") is None
    assert book.check_password("nobody", PASSWORD) is None
    assert book.check_password("vik", VIEWER_PASSWORD).may_act is False


def test_a_token_is_its_operators_until_revoked_and_the_running_book_sees_changes(tmp_path):
    path, asha_token, _ = operators_file(tmp_path)
    running = OperatorBook(path)  # what a running tickguard holds
    assert running.check_token(asha_token).name == "asha"
    for forged in (asha_token + "x", asha_token.replace("tgo_", "tga_"), "tgo_", "tgo_.", asha_token.split(".")[0]):
        assert running.check_token(forged) is None
    secret_part = asha_token.split(".", 1)[1]
    assert secret_part not in Path(path).read_text()  # only its hash is kept
    token_id = asha_token[len("tgo_"):].split(".")[0]
    OperatorBook(path).revoke_token(token_id)  # `tickguard operator revoke` in another process
    assert running.check_token(asha_token) is None
    OperatorBook(path).set_operator("asha", "viewer", PASSWORD)
    assert running.operator("asha").role == "viewer"


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not JSON"),
    ('{"operators": {"a": {"role": "admin", "password": "x"}}}', "needs a role"),
    ('{"operators": {}, "tokens": {"t": {"operator": "ghost", "sha256": "00"}}}', "existing operator"),
    ("[]", "expected an object"),
])
def test_a_broken_operators_file_is_refused_with_its_problem(tmp_path, content, problem):
    path = tmp_path / "operators.json"
    path.write_text(content)
    with pytest.raises(OperatorsFileError, match=problem):
        OperatorBook(path)
    with pytest.raises(OperatorsFileError, match="No such file"):
        OperatorBook(tmp_path / "absent.json")


def test_the_login_brake_counts_failures_per_address_within_its_window():
    now = [1000.0]
    brake = LoginBrake(failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert brake.wait_s("10.0.0.1") == 0
        brake.failed("10.0.0.1")
    assert brake.wait_s("10.0.0.1") == pytest.approx(60)
    assert brake.wait_s("10.0.0.2") == 0  # another address is not braked
    now[0] += 59.5
    assert brake.wait_s("10.0.0.1") == pytest.approx(0.5)
    now[0] += 1
    assert brake.wait_s("10.0.0.1") == 0
    brake.failed("10.0.0.1")
    brake.succeeded("10.0.0.1")
    assert brake.wait_s("10.0.0.1") == 0


# The command line ---------------------------------------------------------------------------------------
def tickguard(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_operator_commands_add_issue_list_and_revoke(tmp_path):
    env = {"OPERATORS_FILE": str(tmp_path / "ops.json"), "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env")}
    added = tickguard("operator", "add", "asha", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    short = tickguard("operator", "add", "vik", "--role", "viewer", "--password-stdin", env=env, stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert tickguard("operator", "add", "vik", "--role", "viewer", "--password-stdin", env=env,
                     stdin=VIEWER_PASSWORD + "\n").returncode == 0
    issued = tickguard("operator", "token", "asha", "--label", "grafana", env=env)
    token = issued.stdout.strip()
    assert issued.returncode == 0 and token.startswith("tgo_")
    assert OperatorBook(env["OPERATORS_FILE"]).check_token(token).name == "asha"
    listed = tickguard("operator", "list", env=env).stdout
    assert "asha\ttrader" in listed and "vik\tviewer" in listed and "grafana" in listed
    assert token.split(".")[1] not in listed and "$argon2" not in listed
    unknown = tickguard("operator", "token", "nobody", env=env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no operator 'nobody'" in unknown.stderr
    token_id = token[len("tgo_"):].split(".")[0]
    assert tickguard("operator", "revoke", token_id, env=env).returncode == 0
    assert OperatorBook(env["OPERATORS_FILE"]).check_token(token) is None


def test_token_ids_are_never_read_as_an_option(tmp_path):
    """A token id is a command-line argument of `revoke`: one starting with "-" was read as an option."""
    book = OperatorBook(_empty(tmp_path / "ops.json"))
    book.set_operator("asha", "trader", PASSWORD)
    ids = [book.issue_token("asha")[len("tgo_"):].split(".")[0] for _ in range(300)]
    assert all(token_id.isalnum() and len(token_id) == 10 for token_id in ids), ids


# The service ---------------------------------------------------------------------------------------------
def test_a_viewer_watches_a_trader_acts_and_the_operators_name_is_recorded(service_factory, tmp_path):
    path, asha, vik = operators_file(tmp_path)
    service = service_factory(OPERATORS_FILE=path, METRICS_TOKEN="scraper-token-0123456789")
    service.price(800)
    reply = httpx.post(f"{service.url}/opentrade", json={"symbolname": "SBIN", "signal": "buy", "price": 800,
                       "type": "equity", "strategyname": "s1", "quantity": 1, "stoploss": STOP_10},
                       headers={"X-Webhook-Secret": SECRET}, timeout=10)
    (trade_id,) = reply.json()["trades"]
    with httpx.Client(base_url=service.url, timeout=10) as client:
        wait = lambda: client.get(f"/trades/{trade_id}", headers=bearer(vik)).json()["trade"]  # noqa: E731
        assert client.get("/trades", headers=bearer(vik)).status_code == 200
        assert client.get("/halt", headers=bearer(vik)).status_code == 200
        for method, path_ in (("POST", f"/trades/{trade_id}/close"), ("POST", "/halt")):
            refused = client.request(method, path_, headers=bearer(vik), json={"halted": True} if path_ == "/halt" else None)
            assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "role", refused.text
            assert client.request(method, path_, headers={"X-Webhook-Secret": SECRET}).status_code == 401
        service_wait(lambda: wait()["state"] == "OPEN")
        assert client.post(f"/trades/{trade_id}/close", headers=bearer(asha)).status_code == 202
        service_wait(lambda: wait()["state"] == "CLOSED")
        events = client.get(f"/trades/{trade_id}", headers=bearer(asha)).json()["events"]
        (asked,) = [e for e in events if e["kind"] == "close_requested"]
        assert asked["data"] == {"operator": "asha", "quantity": 1}
        halted = client.post("/halt", headers=bearer(asha), json={"halted": True, "reason": "lunch"})
        assert halted.status_code == 200
        assert client.get("/halt", headers=bearer(vik)).json()["global"]["operator"] == "asha"
        # /metrics: an operator, or METRICS_TOKEN; never the webhook secret
        assert client.get("/metrics", headers=bearer("scraper-token-0123456789")).status_code == 200
        assert client.get("/metrics", headers=bearer(vik)).status_code == 200
        assert client.get("/metrics", headers=bearer(SECRET)).status_code == 401
        assert client.get("/metrics", headers=bearer("scraper-token-012345678")).status_code == 401
        # the demo operator does not exist once OPERATORS_FILE is set
        assert client.post("/login", json={"name": "demo", "password": "paper-demo"}).status_code == 401


def service_wait(predicate) -> None:
    from tests.support.waiting import wait_for

    wait_for(predicate, "the trade's state", timeout=15)


def test_a_session_survives_a_restart_and_a_logout_ends_it(any_service_factory, tmp_path):
    path, _, _ = operators_file(tmp_path)
    first = any_service_factory(OPERATORS_FILE=path)
    with httpx.Client(base_url=first.url, timeout=10) as browser:
        signed = browser.post("/login", json={"name": "asha", "password": PASSWORD})
        assert signed.json() == {"authenticated": True, "operator": "asha", "role": "trader"}
        cookie = browser.cookies["tickguard_session"]
    first.stop()
    again = any_service_factory(OPERATORS_FILE=path)  # the same store, a new process's memory
    with httpx.Client(base_url=again.url, timeout=10, cookies={"tickguard_session": cookie}) as browser:
        assert browser.get("/session").json() == {"authenticated": True, "operator": "asha", "role": "trader"}
        assert browser.get("/trades").status_code == 200
        OperatorBook(path).set_operator("asha", "viewer", PASSWORD)  # a role change counts at once
        assert browser.get("/session").json()["role"] == "viewer"
        assert browser.post("/logout", json={}).status_code == 200
    with httpx.Client(base_url=again.url, timeout=10, cookies={"tickguard_session": cookie}) as browser:
        assert browser.get("/trades").status_code == 401


def test_failed_logins_are_braked_per_address(service_factory, tmp_path):
    path, _, _ = operators_file(tmp_path)
    service = service_factory(OPERATORS_FILE=path)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        for _ in range(5):
            assert client.post("/login", json={"name": "asha", "password": "guess"}).status_code == 401
        braked = client.post("/login", json={"name": "asha", "password": PASSWORD})  # even the right one waits
        assert braked.status_code == 429 and int(braked.headers["retry-after"]) > 0
        assert braked.json()["errors"][0]["field"] == "login"
