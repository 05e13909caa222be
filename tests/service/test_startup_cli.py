"""`tickguard serve` as an operator runs it, in a process of its own: a failed start is one line on stderr
and its own exit status; a broker that is not up yet is waited for; the banner and the stop warning."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.exits import ExitCode
from tests.support.paper import DEMO
from tests.support.service import HEADERS, SECRET
from tests.support.waiting import wait_for

ALERT = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "s1", "quantity": 2,
         "stoploss": {"type": "points", "value": 10}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_", "LOG_"))}
    return {**kept, "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"), "TICKGUARD_DB": str(tmp_path / "tickguard.db"),
            "SYMBOLS_DIR": str(tmp_path / "symbols"), "SYMBOL_TOKENS_FILE": str(tmp_path / "symbol_tokens.json"),
            "PAPER_DB": str(tmp_path / "paper.db"), "PAPER_PORT": "0", "PAPER_TICK_MS": "0", "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json"}




def tickguard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def assert_one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    assert lines[0].startswith("tickguard: ") and all(word in lines[0] for word in words), lines[0]
    return lines[0]


def test_the_service_port_in_use_is_one_line_and_status_5(base_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = tickguard(base_env, "serve", "--port", str(port))
    assert_one_line(result, ExitCode.ADDRESS_IN_USE, f"127.0.0.1:{port}", "address already in use", "--port")
    assert result.stdout == ""  # nothing started, nothing announced


def test_the_paper_port_in_use_is_one_line_and_status_5(base_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = tickguard({**base_env, "PAPER_PORT": str(port)}, "serve", "--port", "0")
        alone = tickguard({**base_env, "PAPER_PORT": str(port)}, "paper")
    assert_one_line(served, ExitCode.ADDRESS_IN_USE, "paper exchange", f"127.0.0.1:{port}", "PAPER_PORT")
    assert_one_line(alone, ExitCode.ADDRESS_IN_USE, "paper exchange", f"127.0.0.1:{port}")


@pytest.mark.parametrize("make", ["directory", "not_utf8"])
def test_a_settings_file_that_cannot_be_read_is_one_line_and_status_2(base_env, tmp_path, make):
    path = tmp_path / "settings.env"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"TICKGUARD_MODE=paper\nWEBHOOK_SECRET=\xff\xfe\n")
    result = tickguard({**base_env, "TICKGUARD_ENV_FILE": str(path)}, "serve", "--port", "0")
    assert_one_line(result, ExitCode.SETTINGS, "TICKGUARD_ENV_FILE", str(path))


def test_invalid_settings_are_one_line_naming_each_problem(base_env):
    result = tickguard({**base_env, "PAPER_PORT": "many", "EXIT_ATTEMPTS": "0"}, "serve", "--port", "0")
    assert_one_line(result, ExitCode.SETTINGS, "invalid settings", "PAPER_PORT", "EXIT_ATTEMPTS")


def live_env(base_env: dict[str, str], paper_url: str, tmp_path: Path, **login: str) -> dict[str, str]:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accountslist": [{"accountId": "MAIN", "fund": 50000, "stoplosstype": "number",
                                                      "stoploss": 100}]}))
    stream = paper_url.replace("http", "ws", 1)
    operators = tmp_path / "operators.json"
    operators.write_text('{"operators": {}, "tokens": {}}')
    return {**base_env, "TICKGUARD_MODE": "live", "SMARTAPI_ROOT": paper_url, "OPERATORS_FILE": str(operators),
            "SMARTAPI_STREAM_URL": f"{stream}/smart-stream", "SMARTAPI_ORDER_UPDATE_URL": f"{stream}/smart-order-update",
            "INSTRUMENT_MASTER_URL": f"{paper_url}/OpenAPI_File/files/OpenAPIScripMaster.json",
            "SMARTAPI_USER": DEMO.clientcode, "SMARTAPI_PASS": DEMO.pin, "SMARTAPI_KEY": DEMO.api_key,
            "TOTP_SECRET": DEMO.totp_secret, "WEBHOOK_SECRET": "a-live-webhook-secret-1", "DEMO_ACCOUNTS_FILE": str(accounts),
            **login}


@pytest.mark.parametrize(("wrong", "said"), [
    ({"SMARTAPI_PASS": "9999"}, "AB1007"),
    ({"TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, "AB1050"),
    ({"SMARTAPI_KEY": "not-the-key"}, "AG8004"),
])
def test_a_refused_live_login_is_one_line_and_status_4(base_env, paper, tmp_path, wrong, said):
    result = tickguard(live_env(base_env, paper.url, tmp_path, **wrong), "serve", "--port", "0")
    line = assert_one_line(result, ExitCode.LOGIN_REFUSED, "the broker refused the login of P0001", said)
    assert DEMO.pin not in line and DEMO.totp_secret not in line and DEMO.api_key not in line


def start_serve(env: dict[str, str], processes: list[subprocess.Popen]) -> tuple[subprocess.Popen, str]:
    """`tickguard serve --port 0` and its URL, read from the banner's first line."""
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", "0"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    processes.append(proc)
    first = proc.stdout.readline()
    assert first.startswith("tickguard "), first + proc.stderr.read()
    return proc, first.split()[1].rstrip("/")


def read_banner(proc: subprocess.Popen) -> dict[str, str]:
    """The banner's state lines (label -> text), read up to the calendar's."""
    lines: dict[str, str] = {}
    while "calendar" not in lines:
        line = proc.stdout.readline()
        assert line, "the banner ended early"
        label, _, text = line.rstrip("\n").partition("  ")
        lines[label.strip()] = text.strip()
    return lines


def test_a_broker_not_up_yet_is_waited_for_then_trades_go_through(base_env, tmp_path, processes):
    paper_port = free_port()
    paper_url = f"http://127.0.0.1:{paper_port}"
    proc, url = start_serve({**base_env, "PAPER_URL": paper_url}, processes)
    health = wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5), "/healthz to answer")
    assert health.status_code == 503
    body = health.json()
    assert body["ready"] is False and body["status"] == "waiting"
    assert "broker unreachable for P0001" in body["reason"] and str(paper_port) in body["reason"]
    refused = httpx.post(f"{url}/opentrade", json=ALERT, headers={"X-Webhook-Secret": SECRET}, timeout=5)
    assert refused.status_code == 503 and "not ready" in refused.json()["errors"][0]["reason"]

    paper = subprocess.Popen([sys.executable, "-m", "service.cli", "paper", "--port", str(paper_port)],
                             env={**base_env, "PAPER_DB": str(tmp_path / "outside-paper.db")},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes.append(paper)
    wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code == 200, "ready once the broker answers",
             timeout=60)
    assert read_banner(proc)["mode"] == "paper"
    httpx.post(f"{paper_url}/paper/v1/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800}, timeout=5)
    reply = httpx.post(f"{url}/opentrade", json=ALERT, headers={"X-Webhook-Secret": SECRET}, timeout=10)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    wait_for(lambda: httpx.get(f"{url}/trades/{trade_id}", headers=HEADERS,
                               timeout=5).json()["trade"]["state"] == "OPEN", "the entry to fill")
    warnings = [json.loads(line) for line in proc_stderr_until_exit(proc) if line.startswith("{")]
    assert any(w["logger"] == "tickguard.startup" and w["msg"].startswith("broker unreachable") for w in warnings)


def proc_stderr_until_exit(proc: subprocess.Popen, sig: int = signal.SIGINT) -> list[str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    return err.splitlines()


def test_the_banner_tells_the_state_and_ctrl_c_warns_of_unguarded_trades(base_env, processes):
    env = {**base_env, "BROKER_STOP": "off"}
    proc, url = start_serve(env, processes)
    banner = read_banner(proc)
    # `make run` tells the quick start's demo credentials: the webhook secret, the operator, its token
    assert banner["webhook secret"].startswith(SECRET)
    assert banner["operator"].startswith("demo / paper-demo") and "tgo_demo.paper-demo-token" in banner["operator"]
    assert banner["mode"] == "paper" and banner["halted"] == "no" and banner["open trades"] == "none"
    assert banner["broker stops"] == "off (BROKER_STOP)" and banner["calendar"].startswith("always open")
    secret = HEADERS  # the webhook secret for the alert, the demo operator's token for the rest
    reply = httpx.post(f"{url}/opentrade", json=ALERT, headers=secret, timeout=10)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    wait_for(lambda: httpx.get(f"{url}/trades/{trade_id}", headers=secret, timeout=5).json()["trade"]["stop"],
             "the entry to fill and arm")
    halted = httpx.post(f"{url}/halt", json={"halted": True, "reason": "lunch"}, headers=secret, timeout=10)
    assert halted.status_code == 200, halted.text
    stderr = proc_stderr_until_exit(proc, signal.SIGINT)
    assert proc.returncode == ExitCode.INTERRUPTED
    warnings = [json.loads(line) for line in stderr if line.startswith("{") and '"WARNING"' in line]
    assert [w["msg"] for w in warnings if w["logger"] == "tickguard"] == [
        "stopping: 1 open trade is unguarded until the next start; no broker stop covers it (BROKER_STOP=off)"]

    again, _ = start_serve({**env, "LOG_LEVEL": "ERROR"}, processes)
    banner = read_banner(again)
    assert banner["halted"] == "YES: no new entries (lunch)"
    assert banner["open trades"] == "1 (1 guarded)"
    assert banner["broker stops"] == "off (BROKER_STOP): 0 of 1 open trades covered at the broker"
    proc_stderr_until_exit(again, signal.SIGTERM)
