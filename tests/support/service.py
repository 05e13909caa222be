"""Run tickguard itself (the real app, on a free port in a thread) against a paper exchange."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.web.app import create_app
from service.settings import PAPER_OPERATOR_TOKEN, PAPER_WEBHOOK_SECRET, Settings, load_settings
from tests.support.paper import RunningPaper
from tests.support.servers import ServerThread

SECRET = PAPER_WEBHOOK_SECRET
OPERATOR_TOKEN = PAPER_OPERATOR_TOKEN
# The alert routes read the webhook secret; every other route the demo operator's API token.
HEADERS = {"X-Webhook-Secret": SECRET, "Authorization": f"Bearer {OPERATOR_TOKEN}"}


@dataclass
class RunningService:
    url: str
    settings: Settings
    paper: RunningPaper
    app: Any
    server: ServerThread | None = None

    def stop(self) -> None:
        """Shut tickguard down as a SIGTERM would (its store stays for the next start)."""
        if self.server is not None:
            self.server.__exit__(None, None, None)
            self.server = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=HEADERS, timeout=10)

    def alert(self, **body) -> httpx.Response:
        values = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "s1"}
        values.update(body)
        with self.client() as client:
            return client.post("/opentrade", json=values)

    def trade(self, trade_id: int) -> dict:
        with self.client() as client:
            return client.get(f"/trades/{trade_id}").json()

    def wait_trade(self, trade_id: int, predicate, timeout: float = 15, what: str = "trade state") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            view = self.trade(trade_id)
            if predicate(view["trade"]):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {view['trade']}")
            time.sleep(0.02)

    def trade_count_in_store(self) -> tuple[int, int]:
        """(alerts, trades) as the store holds them, read straight from its file or database."""
        tables = ("alerts", "trades")
        if self.settings.database_url:
            import psycopg

            with psycopg.connect(self.settings.database_url) as db:
                return tuple(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables)
        import sqlite3

        db = sqlite3.connect(self.settings.tickguard_db)
        try:
            return tuple(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables)
        finally:
            db.close()

    def price(self, ltp: float, token: str = "3045", exchange: str = "NSE") -> None:
        reply = self.paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": ltp})
        assert reply.status_code == 200, reply.text


@pytest.fixture
def service_factory(tmp_path: Path, paper_factory):
    started: list[ServerThread] = []

    def start(paper: RunningPaper | None = None, clock=None, **env: str) -> RunningService:
        paper = paper or paper_factory()
        values = {
            "PAPER_URL": paper.url, "TICKGUARD_DB": str(tmp_path / "tickguard.db"),
            "SYMBOLS_DIR": str(tmp_path / "symbols"), "SYMBOL_TOKENS_FILE": str(tmp_path / "symbol_tokens.json"),
            "STREAM_STALL_S": "30", "EXIT_CHASE_MS": "100", "LOG_LEVEL": "WARNING",
        }
        values.update(env)
        settings = load_settings(values, env_file=str(tmp_path / "absent.env"))
        from service.runtime import Runtime

        app = create_app(settings, Runtime(settings, clock=clock) if clock is not None else None)
        server = ServerThread(app).__enter__()
        started.append(server)
        return RunningService(server.url, settings, paper, app, server)

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


BACKENDS = ["sqlite", "postgres"]


def on_backend(backend: str, service_factory):
    """`service_factory` on a back end: the SQLite file, or a PostgreSQL database of the test's own.
    A module runs its tests on both with

        @pytest.fixture(params=BACKENDS)
        def service_factory(request, service_factory):
            yield from on_backend(request.param, service_factory)
    """
    if backend == "sqlite":
        yield service_factory
        return
    from tests.support.postgres import fresh_database

    with fresh_database() as url:
        started: list[RunningService] = []

        def start(*args, **env) -> RunningService:
            service = service_factory(*args, **{"DATABASE_URL": url, **env})
            started.append(service)
            return service

        yield start
        for service in started:  # stopped before their database is dropped under them
            service.stop()
