"""Symbols on the paper master: a fixed expiry day, a settable IST clock, and a real master server."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from paper.instruments import Universe, build_universe
from service.settings import Settings, load_settings
from service.symbols import IST, MasterIndex, SymbolResolver, parse_master
from service.symbols.master import MASTER_PATH
from tests.support.servers import ServerThread

# Tuesday 25 Nov 2025: a NIFTY weekly *and* monthly expiry, and BANKNIFTY's monthly one.
DAY = date(2025, 11, 25)
FREEZE = {"NIFTY": 1800, "BANKNIFTY": 900, "FINNIFTY": 1800, "SENSEX": 1000}


def ist(day: date = DAY, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), IST)


@pytest.fixture(scope="session")
def universe() -> Universe:
    return build_universe(DAY)


@pytest.fixture(scope="session")
def master_index(universe: Universe) -> MasterIndex:
    return parse_master(universe.master_json(), DAY, "paper", built_at=ist(hour=8))


@pytest.fixture
def resolver_at(master_index: MasterIndex):
    """A resolver whose clock reads `hour:minute` IST on `day`."""

    def make(hour: int = 10, minute: int = 0, day: date = DAY) -> SymbolResolver:
        moment = ist(day, hour, minute)
        return SymbolResolver(master_index, FREEZE, now=lambda: moment)

    return make


@pytest.fixture
def resolver(resolver_at) -> SymbolResolver:
    return resolver_at()


@dataclass
class MasterServer:
    """Serves a master; `body` can be swapped, `hits` counts downloads, `status` forces a failure,
    and a cleared `gate` holds every download until it is set again."""

    body: bytes
    url: str = ""
    hits: int = 0
    status: int = 200
    chunked: bool = False
    paths: list[str] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    def app(self) -> Starlette:
        async def master(request: Request) -> Response:
            self.hits += 1
            await asyncio.to_thread(self.gate.wait)
            if self.status != 200:
                return Response("unavailable", status_code=self.status)
            if self.chunked:  # no content-length: progress without a total
                body = self.body

                async def pieces():
                    for at in range(0, len(body), 50_000):
                        yield body[at:at + 50_000]

                return StreamingResponse(pieces(), media_type="application/json")
            return Response(self.body, media_type="application/json")

        return Starlette(routes=[Route(MASTER_PATH, master)])


@pytest.fixture
def master_server(universe: Universe) -> Iterator[MasterServer]:
    server = MasterServer(universe.master_json())
    with ServerThread(server.app()) as running:
        server.url = running.url + MASTER_PATH
        try:
            yield server
        finally:
            server.gate.set()  # a held download must not keep the server from stopping


@pytest.fixture
def settings_for(tmp_path: Path):
    """Settings pointing the symbols at `tmp_path` and the master at `url`."""

    def make(url: str, **extra: str) -> Settings:
        env = {
            "INSTRUMENT_MASTER_URL": url,
            "SYMBOLS_DIR": str(tmp_path / "symbols"),
            "SYMBOL_TOKENS_FILE": str(tmp_path / "symbol_tokens.json"),
            **extra,
        }
        return load_settings(env, env_file=str(tmp_path / "absent.env"))

    return make
