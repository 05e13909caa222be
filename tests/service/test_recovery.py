"""Crash safety: SIGKILL the service at the worst moments, move the market while it is down, restart.

The paper exchange runs in the test process; tickguard runs as a real subprocess (`python -m
service.cli serve`), so a SIGKILL is a real crash with nothing flushed on the way out.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.paper import DEMO
from tests.support.postgres import fresh_database
from tests.support.service import BACKENDS, HEADERS, SECRET
from tests.support.waiting import wait_for

ROOT = "/rest/secure/angelbroking"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    def __init__(self, tmp_path: Path, paper_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_"))},
            "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"), "PAPER_URL": paper_url,
            "TICKGUARD_DB": str(tmp_path / "tickguard.db"), "SYMBOLS_DIR": str(tmp_path / "symbols"),
            "SYMBOL_TOKENS_FILE": str(tmp_path / "symbol_tokens.json"), "STREAM_STALL_S": "30",
            "LOG_LEVEL": "WARNING", **env,
        }
        self.log = tmp_path / "service.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tickguard did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def get(self, path: str) -> dict:
        return httpx.get(f"{self.url}{path}", headers=HEADERS, timeout=10).json()


@pytest.fixture(params=BACKENDS)
def service_process(request, tmp_path):
    """tickguard as a process, its store in a SQLite file or in a PostgreSQL database of the test's own
    (the crash tests run on both)."""
    processes: list[Process] = []
    with contextlib.ExitStack() as stack:
        backend = {} if request.param == "sqlite" else {"DATABASE_URL": stack.enter_context(fresh_database())}

        def make(paper_url: str, **env: str) -> Process:
            process = Process(tmp_path, paper_url, **backend, **env)
            processes.append(process)
            return process

        yield make
        for process in processes:  # stopped before a database is dropped under them
            process.stop()


class Broker:
    """The test's own view of the paper exchange, as the account holder would look at it."""

    def __init__(self, paper, login=DEMO) -> None:
        self.paper = paper
        body = {"clientcode": login.clientcode, "password": login.pin, "totp": paper.totp(login)}
        headers = {"X-PrivateKey": login.api_key}
        jwt = httpx.post(f"{paper.url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body, headers=headers).json()["data"]["jwtToken"]
        self.headers = {**headers, "Authorization": f"Bearer {jwt}"}

    def orders(self) -> list[dict]:
        return httpx.get(f"{self.paper.url}{ROOT}/order/v1/getOrderBook", headers=self.headers).json()["data"] or []

    def net(self) -> int:
        rows = httpx.get(f"{self.paper.url}{ROOT}/order/v1/getPosition", headers=self.headers).json()["data"] or []
        return sum(int(r["netqty"]) for r in rows)

    def price(self, ltp: float) -> None:
        assert self.paper.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": ltp}).status_code == 200


def wait(predicate, what: str, timeout: float = 20):
    return wait_for(predicate, what, timeout, every=0.05)


def post_alert(service: Process) -> int:
    body = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "crash",
            "quantity": 5, "stoploss": {"type": "points", "value": 10}}
    reply = httpx.post(f"{service.url}/opentrade", json=body, headers=HEADERS, timeout=10)
    assert reply.status_code == 202, reply.text
    return reply.json()["trades"][0]


def assert_clean_end(service: Process, broker: Broker, trade_id: int) -> None:
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["state"] == "CLOSED", "the trade to close")
    tags = sorted(o["ordertag"] for o in broker.orders())
    assert tags == [f"tg{trade_id}E1", f"tg{trade_id}X1"], tags
    assert broker.net() == 0


def test_killed_after_the_ack_before_the_entry_fill(paper_factory, service_process):
    paper = paper_factory(fill_latency_ms=2000)
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url)
    service.start()
    trade_id = post_alert(service)
    wait(lambda: [o for o in broker.orders() if o["ordertag"] == f"tg{trade_id}E1"], "the entry at the exchange")
    service.kill()
    wait(lambda: broker.net() == 5, "the entry to fill while tickguard is down")
    broker.price(789)  # through the stop ...
    broker.price(800)  # ... and back, all while down
    service.start()
    assert_clean_end(service, broker, trade_id)
    fired = next(e for e in service.get(f"/trades/{trade_id}")["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "STOP" and fired["data"]["source"].startswith("candle")


@pytest.mark.parametrize("prices_while_down", [
    (785, 801),  # through the stop and back while down
    (785,),  # still through the stop when tickguard comes back: the resting exit is resumed, never doubled
])
def test_killed_after_the_exit_was_sent_before_it_filled(paper_factory, service_process, prices_while_down):
    paper = paper_factory()
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url, EXIT_CHASE_MS="60000")
    service.start()
    trade_id = post_alert(service)
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["stop"] is not None, "the trade to be armed")
    paper.control("POST", "/faults", json={"kind": "open", "count": 1})  # the exit rests unfilled
    broker.price(789)
    wait(lambda: [o for o in broker.orders() if o["ordertag"] == f"tg{trade_id}X1"], "the exit at the exchange")
    service.kill()
    for price in prices_while_down:
        broker.price(price)
    service = service_process(paper.url, EXIT_CHASE_MS="200")
    service.start()
    assert_clean_end(service, broker, trade_id)


@pytest.mark.parametrize("rests", [False, True])
def test_an_exit_the_store_never_recorded_is_adopted_not_doubled(paper_factory, service_process, rests):
    """Exits leave before their row is committed: killed in between, the exit is at the broker and not in
    the store. Here the exit is placed on the trade's tag while tickguard is down, as that crash leaves it."""
    paper = paper_factory()
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url)
    service.start()
    trade_id = post_alert(service)
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["stop"] is not None, "the trade to be armed")
    service.kill()
    if rests:
        paper.control("POST", "/faults", json={"kind": "open", "count": 1})
    body = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE",
            "transactiontype": "SELL", "ordertype": "LIMIT", "producttype": "INTRADAY", "duration": "DAY",
            "price": "796", "quantity": "5", "ordertag": f"tg{trade_id}X1"}
    reply = httpx.post(f"{paper.url}{ROOT}/order/v1/placeOrder", json=body, headers=broker.headers)
    assert reply.json()["status"] is True, reply.text
    service = service_process(paper.url, EXIT_CHASE_MS="200")
    service.start()
    assert_clean_end(service, broker, trade_id)
    kinds = [e["kind"] for e in service.get(f"/trades/{trade_id}")["events"]]
    assert kinds.count("exit_fired") == 1 and kinds.count("exit_sent") == 1 and "unprotected" not in kinds
