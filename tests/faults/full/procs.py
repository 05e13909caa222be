"""The paper exchange and tickguard as real processes (`python -m service.cli paper|serve`)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp

from paper.auth import PaperLogin
from tests.support.paper import DEMO
from tests.support.service import HEADERS, OPERATOR_TOKEN, SECRET

__all__ = ["Paper", "Tickguard", "BrokerView", "free_port", "HEADERS", "OPERATOR_TOKEN", "SECRET"]

ROOT = "/rest/secure/angelbroking"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_"))}


def _wait_up(url: str, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


class Paper:
    """The paper exchange alone in its own process; prices still unless moved."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "paper.log"
        self.env = {**_clean_env(), "TICKGUARD_ENV_FILE": str(workdir / "absent.env"),
                    "PAPER_DB": str(workdir / "paper.db"), "PAPER_TICK_MS": "0", "LOG_LEVEL": "WARNING", **env}
        self.proc: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=f"{self.url}/paper/v1", timeout=30)

    def start(self) -> Paper:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "paper", "--port", str(self.port)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _wait_up(f"{self.url}/paper/v1/state", self.proc, self.log, "the paper exchange")
        return self

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        reply = self.http.request(method, path, **kwargs)
        if reply.status_code >= 300:
            raise RuntimeError(f"paper {method} {path}: {reply.status_code} {reply.text}")
        return reply

    def price(self, ltp: float, token: str = "3045", exchange: str = "NSE") -> None:
        self.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": ltp})


class BrokerView:
    """The account holder's own view of the paper exchange (its own session)."""

    def __init__(self, paper: Paper, login: PaperLogin = DEMO, local_address: str | None = None) -> None:
        self.paper_url, self.login = paper.url, login
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.http = httpx.Client(base_url=f"{paper.url}{ROOT}", timeout=30, transport=transport)
        self._login()

    def _login(self) -> None:
        login = self.login
        body = {"clientcode": login.clientcode, "password": login.pin, "totp": pyotp.TOTP(login.totp_secret).now()}
        reply = httpx.post(f"{self.paper_url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body,
                           headers={"X-PrivateKey": login.api_key}, timeout=30).json()
        self.http.headers.update({"X-PrivateKey": login.api_key, "Authorization": f"Bearer {reply['data']['jwtToken']}"})

    def _get(self, route: str) -> list[dict]:
        reply = self.http.get(route).json()
        if reply.get("errorCode") in ("AG8001", "AG8002"):
            self._login()
            reply = self.http.get(route).json()
        return reply.get("data") or []

    def orders(self) -> list[dict]:
        return self._get("/order/v1/getOrderBook")

    def net(self, token: str = "3045") -> int:
        return sum(int(r["netqty"]) for r in self._get("/order/v1/getPosition") if r.get("symboltoken") == token)


class Tickguard:
    """tickguard as `python -m service.cli serve`, against an outside paper exchange; SIGKILL-able."""

    def __init__(self, workdir: Path, paper_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "tickguard.log"
        self.env = {**_clean_env(), "TICKGUARD_ENV_FILE": str(workdir / "absent.env"), "PAPER_URL": paper_url,
                    "TICKGUARD_DB": str(workdir / "tickguard.db"), "SYMBOLS_DIR": str(workdir / "symbols"),
                    "SYMBOL_TOKENS_FILE": str(workdir / "symbol_tokens.json"), "LOG_LEVEL": "WARNING", **env}
        self.proc: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, headers=HEADERS, timeout=30)

    def start(self, **env: str) -> Tickguard:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
                                         env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT)
        _wait_up(f"{self.url}/healthz", self.proc, self.log, "tickguard")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.http.close()
        self.http = httpx.Client(base_url=self.url, headers=HEADERS, timeout=30)

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def get(self, path: str) -> dict:
        return self.http.get(path).json()

    def trade(self, trade_id: int) -> dict:
        return self.get(f"/trades/{trade_id}")
