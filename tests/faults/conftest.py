"""Fault-suite harness: tickguard (the real app, in a thread) against a paper exchange that knows a login
made of distinctive secret values, with every log line captured; helpers shared by the quick suite
(`make test`) and the full one (`make faults`).

Every wait is a condition with a deadline; nothing sleeps to make a point.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from paper.auth import PaperLogin
from service.logs import configure_logging
from tests.support.paper import RunningPaper
from tests.support.service import OPERATOR_TOKEN, RunningService
from tests.support.waiting import wait_for  # noqa: F401  (re-exported to the fault tests)

ROOT = "/rest/secure/angelbroking"
SBIN = "3045"
STOP_10 = {"type": "points", "value": 10}


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Distinctive values, so a leak is found by plain substring search.
FAULT_LOGIN = PaperLogin("F0042", "pin-F4ULT-7391", "apikey-F4ULT-52d8e0", "FAULTSUITETOTPSECRETQZXWVKJHGF23")
WEBHOOK_SECRET = "whsec-F4ULT-9c1e7b3a5d"
TELEGRAM_BOT_TOKEN = "987654321:tgtoken-F4ULT-Xy7Qp"


DEAD_URL = f"http://127.0.0.1:{dead_port()}"  # Telegram and the webhook notifier point here: nothing answers


def secret_env() -> dict[str, str]:
    dead = DEAD_URL
    return {
        "SMARTAPI_USER": FAULT_LOGIN.clientcode, "SMARTAPI_PASS": FAULT_LOGIN.pin,
        "SMARTAPI_KEY": FAULT_LOGIN.api_key, "TOTP_SECRET": FAULT_LOGIN.totp_secret,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_BOT_TOKEN, "TELEGRAM_CHAT_ID": "42", "TELEGRAM_API_URL": dead,
        "NOTIFY_WEBHOOK_URLS": f"{dead}/hooks/nwh-F4ULT-8q2z", "NOTIFY_ATTEMPTS": "1",
    }


def secret_values(env: dict[str, str]) -> dict[str, str]:
    """Each configured secret by setting name (the Telegram token also by its parts)."""
    names = ("SMARTAPI_PASS", "SMARTAPI_KEY", "TOTP_SECRET", "WEBHOOK_SECRET", "TELEGRAM_BOT_TOKEN",
             "NOTIFY_WEBHOOK_URLS")
    values = {name: env[name] for name in names if env.get(name)}
    if "TELEGRAM_BOT_TOKEN" in values:
        values["TELEGRAM_BOT_TOKEN (after the colon)"] = values["TELEGRAM_BOT_TOKEN"].split(":", 1)[1]
    if "NOTIFY_WEBHOOK_URLS" in values:
        values["NOTIFY_WEBHOOK_URLS (path)"] = "nwh-F4ULT-8q2z"
    return values


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


@dataclass
class Desk:
    """The running service seen from outside: the configured webhook secret for alerts, the demo
    operator's API token for the rest."""

    service: RunningService
    env: dict[str, str]
    secret: str
    http: httpx.Client = field(init=False)
    seen: list[str] = field(default_factory=list)  # every body this harness read, for the secret search

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.service.url, headers={"X-Webhook-Secret": self.secret, "Authorization": f"Bearer {OPERATOR_TOKEN}"},
                                 timeout=15)

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def paper(self) -> RunningPaper:
        return self.service.paper

    def keep(self, reply: httpx.Response) -> httpx.Response:
        self.seen.append(f"{reply.status_code} {dict(reply.headers)} {reply.text}")
        return reply

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.keep(self.http.post(path, **kwargs))

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.keep(self.http.get(path, **kwargs))

    def alert(self, **body: Any) -> httpx.Response:
        values = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "faults"}
        values.update(body)
        return self.post("/opentrade", json=values)

    def trade(self, trade_id: int) -> dict:
        reply = self.get(f"/trades/{trade_id}")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def wait_trade(self, trade_id: int, predicate, what: str, timeout: float = 15) -> dict:
        last: dict = {}

        def check():
            nonlocal last
            last = self.trade(trade_id)
            return predicate(last["trade"])

        try:
            wait_for(check, what, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {last.get('trade')} events={[e['kind'] for e in last.get('events', [])]}") from None
        return last

    def counts(self) -> tuple[int, int]:
        """(alerts, trades) as the store holds them."""
        return self.service.trade_count_in_store()

    def price(self, ltp: float, token: str = SBIN, exchange: str = "NSE") -> None:
        reply = self.paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": ltp})
        assert reply.status_code == 200, reply.text

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        reply = self.paper.control(method, path, **kwargs)
        assert reply.status_code < 300, f"{path}: {reply.status_code} {reply.text}"
        return reply

    def open_trade(self, price: float = 800, **alert: Any) -> int:
        """An armed long (or whatever `alert` says) trade: the entry filled and the stop known."""
        self.price(price)
        alert.setdefault("stoploss", STOP_10)
        alert.setdefault("quantity", 2)
        reply = self.alert(price=price, **alert)
        assert reply.status_code == 202, reply.text
        (trade_id,) = reply.json()["trades"]
        self.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, "entry fill and arming")
        return trade_id

    def ws_url(self, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return self.url.replace("http://", "ws://") + "/ws/trades" + (f"?{params}" if params else "")


class Broker:
    """The account holder's own view of the paper exchange (its own session)."""

    def __init__(self, paper: RunningPaper, login: PaperLogin = FAULT_LOGIN) -> None:
        self.paper = paper
        self.login = login
        self._session()

    def _session(self) -> None:
        body = {"clientcode": self.login.clientcode, "password": self.login.pin, "totp": self.paper.totp(self.login)}
        headers = {"X-PrivateKey": self.login.api_key}
        reply = httpx.post(f"{self.paper.url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body,
                           headers=headers, timeout=10)
        self.headers = {**headers, "Authorization": f"Bearer {reply.json()['data']['jwtToken']}"}

    def _get(self, route: str) -> list[dict]:
        reply = httpx.get(f"{self.paper.url}{ROOT}{route}", headers=self.headers, timeout=10).json()
        if reply.get("errorCode") in ("AG8001", "AG8002"):  # the suite expired every session
            self._session()
            reply = httpx.get(f"{self.paper.url}{ROOT}{route}", headers=self.headers, timeout=10).json()
        return reply.get("data") or []

    def orders(self, tag_prefix: str = "") -> list[dict]:
        return [o for o in self._get("/order/v1/getOrderBook") if o.get("ordertag", "").startswith(tag_prefix)]

    def net(self, token: str = SBIN) -> int:
        return sum(int(r["netqty"]) for r in self._get("/order/v1/getPosition") if r.get("symboltoken") == token)


@contextlib.contextmanager
def captured_logs(secrets: list[str]) -> Iterator[io.StringIO]:
    """Every log record of the process as tickguard writes it (JSON, redacted), into a string buffer."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("DEBUG", secrets=secrets, stream=stream)
    handler = root.handlers[-1]
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def desk_factory(service_factory, paper_factory):
    """`make(**env)`: a running service with the distinctive secrets (both sides) and `env` on top."""

    made: list[Desk] = []

    def make(paper: RunningPaper | None = None, **env: str) -> Desk:
        values = {**secret_env(), **env}
        paper = paper or paper_factory(logins=(FAULT_LOGIN,))
        service = service_factory(paper=paper, **values)
        made.append(Desk(service, values, values["WEBHOOK_SECRET"]))
        return made[-1]

    yield make
    for desk in made:
        desk.http.close()


@pytest.fixture
def logs():
    """Captured logs with the distinctive secrets registered in the redactor, as the CLI does."""
    env = secret_env()
    with captured_logs([v for k, v in env.items() if k in secret_values(env)]) as stream:
        yield stream


def feed_messages(desk: Desk, count_until: Callable[[list[dict]], bool], timeout: float = 10, **query: str) -> list[dict]:
    """Read the trade feed until `count_until(messages)` holds (or the deadline)."""
    messages: list[dict] = []
    with connect(desk.ws_url(**query), additional_headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, open_timeout=10,
                 close_timeout=1) as ws:
        deadline = time.monotonic() + timeout
        while not count_until(messages):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"feed: timed out; last messages {messages[-3:]}")
            try:
                messages.append(json.loads(ws.recv(timeout=left)))
            except TimeoutError:
                continue
    return messages
