"""Fixtures for the SmartAPI adapter's stream clients (the paper exchange fixtures are suite-wide).

The clients under test get their credentials, REST LTP and order book from small httpx callables
written here against the paper exchange's REST routes (the adapter's REST client plugs in for them
in production).
"""
from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from reactivex import Observable

from service.broker.smartapi.config import SmartApiConfig, StreamCredentials
from service.broker.smartapi.rows import order_from_row, paise
from service.broker.types import BrokerOrder
from streams import Tick
from tests.support.paper import DEMO, RunningPaper

SECURE = "/rest/secure/angelbroking"


@pytest.fixture(scope="session")
def sdk_parse(smartapi_module):
    """`SmartWebSocketV2._parse_binary_data` on an instance built without __init__ (which writes ./logs)."""
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    return SmartWebSocketV2.__new__(SmartWebSocketV2)._parse_binary_data


def stream_config(paper: RunningPaper, **overrides) -> SmartApiConfig:
    ws = paper.url.replace("http://", "ws://")
    values = {"root": paper.url, "stream_url": f"{ws}/smart-stream", "order_update_url": f"{ws}/smart-order-update",
              "clientcode": DEMO.clientcode, "pin": DEMO.pin, "api_key": DEMO.api_key,
              "totp_secret": DEMO.totp_secret, "timeout_s": 5.0}
    values.update(overrides)
    return SmartApiConfig(**values)


@dataclass
class PaperRest:
    """A logged-in REST session on the paper exchange, and the callables the stream clients take."""

    paper: RunningPaper
    client: httpx.AsyncClient
    credentials: StreamCredentials
    ltp_calls: list[list[tuple[str, str]]] = field(default_factory=list)
    polls: int = 0

    async def login(self) -> StreamCredentials:
        body = {"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": self.paper.totp()}
        reply = await self.client.post("/rest/auth/angelbroking/user/v1/loginByPassword", json=body)
        data = reply.json()["data"]
        self.client.headers["Authorization"] = f"Bearer {data['jwtToken']}"
        self.credentials = StreamCredentials(DEMO.clientcode, DEMO.api_key, data["jwtToken"], data["feedToken"])
        return self.credentials

    async def stream_credentials(self) -> StreamCredentials:
        return self.credentials

    async def ltp(self, pairs: list[tuple[str, str]]) -> list[Tick]:
        """REST LTP through the quote API (50 tokens a request), stamped with the time it was read."""
        self.ltp_calls.append(pairs)
        ticks = []
        for start in range(0, len(pairs), 50):
            tokens: dict[str, list[str]] = {}
            for exchange, token in pairs[start:start + 50]:
                tokens.setdefault(exchange, []).append(token)
            reply = await self.client.post(f"{SECURE}/market/v1/quote", json={"mode": "LTP", "exchangeTokens": tokens})
            now_ms = int(time.time() * 1000)
            for row in reply.json()["data"]["fetched"]:
                ticks.append(Tick(row["symbolToken"], row["exchange"], paise(row["ltp"]), now_ms))
        return ticks

    async def order_book(self) -> list[BrokerOrder]:
        self.polls += 1
        reply = await self.client.get(f"{SECURE}/order/v1/getOrderBook")
        reply.raise_for_status()
        return [order_from_row(row) for row in reply.json()["data"] or []]

    async def place(self, **overrides) -> str:
        params = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE",
                  "transactiontype": "BUY", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY",
                  "price": "0", "quantity": "10"}
        params.update(overrides)
        reply = await self.client.post(f"{SECURE}/order/v1/placeOrder", json=params)
        return reply.json()["data"]["orderid"]

    async def control(self, path: str, body: dict | None = None) -> dict:
        reply = await self.client.post(f"/paper/v1{path}", json=body or {})
        assert reply.status_code == 200, reply.text
        return reply.json()

    async def feed(self) -> dict:
        return (await self.client.get("/paper/v1/feed")).json()

    async def set_ltp(self, rupees: float, token: str = "3045", exchange: str = "NSE") -> None:
        await self.control("/ticks", {"exchange": exchange, "token": token, "ltp": rupees})


@pytest.fixture
async def rest_factory() -> AsyncIterator[Callable]:
    clients: list[httpx.AsyncClient] = []

    async def make(paper: RunningPaper) -> PaperRest:
        client = httpx.AsyncClient(base_url=paper.url, headers={"X-PrivateKey": DEMO.api_key}, timeout=10)
        clients.append(client)
        rest = PaperRest(paper, client, StreamCredentials("", "", "", ""))
        await rest.login()
        return rest

    yield make
    for client in clients:
        await client.aclose()


class Recorder:
    """Everything an observable emitted, with waits on conditions that fail after a deadline."""

    def __init__(self, source: Observable) -> None:
        self.items: list = []
        source.subscribe(self.items.append)

    async def wait(self, predicate: Callable[[object], bool], what: str, timeout: float = 10.0,
                   after: int = 0) -> object:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for item in self.items[after:]:
                if predicate(item):
                    return item
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; saw {self.items[after:][-20:]}")
            await asyncio.sleep(0.01)

    def kinds(self) -> list[str]:
        return [item.kind for item in self.items]


async def until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> object:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


async def bounded(work: Awaitable[object], what: str, seconds: float = 20.0) -> None:
    """`work`, or a failure that says what hung, with every task's stack taken before anything is cancelled
    (after a cancel the stuck tasks are gone, and so is the evidence)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        return task.result()
    stacks = io.StringIO()
    for other in asyncio.all_tasks():
        if other is not asyncio.current_task():
            print(f"--- {other.get_name()} ({other.get_coro()!r})", file=stacks)
            other.print_stack(limit=25, file=stacks)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    raise AssertionError(f"{what} did not end within {seconds:g} s; tasks:\n{stacks.getvalue()}")
