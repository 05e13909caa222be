"""Fixtures that run the paper exchange (on a free port, in a thread) and the official SDK against it."""
from __future__ import annotations

import json

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import httpx
import pyotp
import pytest

from paper.auth import PaperLogin
from tests.support.servers import ServerThread

if TYPE_CHECKING:
    from paper.exchange import PaperConfig, PaperExchange

DEMO = PaperLogin("P0001", "1234", "paper-demo-key", "TICKGUARDPAPERDEMOTOTPSECRET2345")
OTHER = PaperLogin("P0002", "4321", "paper-other-key", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")


@dataclass
class RunningPaper:
    url: str
    exchange: PaperExchange
    config: PaperConfig

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.url}/paper/v1{path}", timeout=10, **kwargs)

    def totp(self, login: PaperLogin = DEMO) -> str:
        return pyotp.TOTP(login.totp_secret).now()


@pytest.fixture
def paper_factory(tmp_path: Path):
    """Start paper exchanges on free ports (prices still unless tick_ms is given); stopped after the test."""
    started: list[ServerThread] = []

    from paper.app import create_app
    from paper.exchange import PaperConfig, PaperExchange

    def start(**overrides) -> RunningPaper:
        values = dict(logins=(DEMO, OTHER), db_path=tmp_path / "paper.db", tick_ms=0, today=date.today())
        values.update(overrides)
        config = PaperConfig(**values)
        exchange = PaperExchange(config)
        server = ServerThread(create_app(exchange)).__enter__()
        started.append(server)
        return RunningPaper(server.url, exchange, config)

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def paper(paper_factory) -> RunningPaper:
    return paper_factory()


@pytest.fixture(scope="session")
def smartapi_module():
    """The official SDK, imported with its import-time internet call cut off.

    Its constructors each open a log file through logzero and never close the previous one; that
    file logging is switched off (the SDK's code is otherwise untouched).
    """
    import logzero

    with mock.patch("requests.get", side_effect=OSError("no network in tests")):
        import SmartApi  # noqa: F401
        import SmartApi.smartConnect  # noqa: F401
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logzero, "logfile", lambda *args, **kwargs: None)
        yield sys.modules["SmartApi.smartConnect"]


@pytest.fixture
def sdk(smartapi_module, paper: RunningPaper, tmp_path: Path, monkeypatch) -> Iterator:
    """A logged-in SDK client pointed at the paper exchange (both `root=` and `_rootUrl`)."""
    monkeypatch.chdir(tmp_path)  # the SDK writes ./logs/<date>/app.log
    SmartConnect = smartapi_module.SmartConnect
    monkeypatch.setattr(SmartConnect, "_rootUrl", paper.url)
    client = SmartConnect(api_key=DEMO.api_key, root=paper.url)
    session = client.generateSession(DEMO.clientcode, DEMO.pin, paper.totp())
    assert session["status"] is True, session
    client.paper = paper
    yield client


def two_logins(tmp_path: Path, other_address: str) -> tuple[Path, Path]:
    """CREDENTIALS_FILE with the second demo login (its orders from `other_address`) and an account
    list of two: MAIN on the default login, OWN on the second. Both paths, written."""
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps([{"clientcode": OTHER.clientcode, "password": OTHER.pin, "api_key": OTHER.api_key,
                                        "totp_secret": OTHER.totp_secret, "source_address": other_address}]))
    credentials.chmod(0o600)
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accountslist": [
        {"accountId": "MAIN", "fund": 50000, "stoplosstype": "number", "stoploss": 100},
        {"accountId": "OWN", "fund": 50000, "stoplosstype": "number", "stoploss": 100,
         "clientcode": OTHER.clientcode}]}))
    return credentials, accounts
