"""The account service down, slow, or answering garbage: entries are refused with a clear 503 (fast
enough for TradingView's 3 s), exits never wait on it, and it recovers when the service does."""
from __future__ import annotations

import asyncio
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.accounts.directory import FETCH_TIMEOUT_S
from tests.faults.conftest import STOP_10
from tests.support.servers import ServerThread

ACCOUNTS = {"accountslist": [
    {"accountId": "A1", "pseudoAccountName": "Asha", "fund": 100000, "stoplosstype": "number", "stoploss": 500}]}
TRADINGVIEW_GIVES_UP_S = 3.0


class AccountService:
    """`mode`: ok, 500, slow (past the client's timeout), html, garbage (not the contract), truncated, huge."""

    def __init__(self) -> None:
        self.mode = "ok"

    def app(self) -> Starlette:
        async def users(request):
            mode = self.mode
            if mode == "slow":
                await asyncio.sleep(FETCH_TIMEOUT_S + 3)
            if mode == "500":
                return JSONResponse({"error": "down"}, 500)
            if mode == "html":
                return Response("<html>maintenance</html>", media_type="text/html")
            if mode == "garbage":
                return JSONResponse({"users": [{"id": 1}], "accountslist": "none"})
            if mode == "truncated":
                return Response(b'{"accountslist": [{"accountId": "A1", "fu', media_type="application/json")
            if mode == "huge":
                return Response(b'{"accountslist": [' + b'{"x": 1},' * 600_000 + b'{"x": 1}]}', media_type="application/json")
            if mode == "badrows":
                return JSONResponse({"accountslist": [{"accountId": "A1", "fund": "lots"}, None, 5]})
            return JSONResponse(ACCOUNTS)

        return Starlette(routes=[Route("/users", users)])


@pytest.fixture
def accounts():
    service = AccountService()
    with ServerThread(service.app()) as server:
        service.url = f"{server.url}/users"
        service.server = server
        yield service


def timed_alert(desk, **alert):
    started = time.monotonic()
    reply = desk.alert(accounts=["A1"], stoploss=STOP_10, quantity=2, **alert)
    return reply, time.monotonic() - started


@pytest.mark.parametrize("mode", ["500", "slow", "html", "garbage", "truncated", "huge", "badrows", "unreachable"])
def test_a_failing_account_service_refuses_entries_fast_and_exits_still_fire(desk_factory, accounts, mode):
    desk = desk_factory(USERS_URL=accounts.url, ACCOUNTS_TTL_S="0.2")
    desk.price(800)
    trade_id = desk.open_trade(accounts=["A1"])
    if mode == "unreachable":
        accounts.server.__exit__(None, None, None)  # connection refused from now on
    else:
        accounts.mode = mode
    deadline = time.monotonic() + 5

    def refused():
        before = desk.counts()
        reply, took = timed_alert(desk, strategyname="during-outage", id=f"outage-{time.monotonic_ns()}")
        return (reply, took, before) if reply.status_code != 202 else None

    time.sleep(0.25)  # let the cached list age past its 0.2 s TTL (not an assertion: the loop below decides)
    result = None
    while result is None and time.monotonic() < deadline:
        result = refused()
    assert result is not None, "entries were still accepted with the account service failing"
    reply, took, before = result
    assert reply.status_code == 503, reply.text
    assert "account" in reply.json()["errors"][0]["reason"]
    assert took < TRADINGVIEW_GIVES_UP_S, f"the refusal took {took:.2f} s"
    assert desk.counts()[1] == before[1]  # no trade created
    started = time.monotonic()
    desk.price(789)
    desk.wait_trade(trade_id, lambda t: t["state"] in ("EXITING", "CLOSED"), "the exit during the outage", timeout=5)
    assert time.monotonic() - started < 1.5, "the exit waited on the account service"
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit confirmed during the outage")


def test_entries_resume_when_the_account_service_recovers(desk_factory, accounts):
    desk = desk_factory(USERS_URL=accounts.url, ACCOUNTS_TTL_S="0.2")
    desk.price(800)
    accounts.mode = "500"
    first, _ = timed_alert(desk, id="before-any-good-copy")
    assert first.status_code == 503, first.text
    accounts.mode = "ok"
    deadline = time.monotonic() + 15  # the directory waits a pause after a failure before asking again
    reply = first
    while reply.status_code != 202 and time.monotonic() < deadline:
        reply, _ = timed_alert(desk, id=f"after-{time.monotonic_ns()}")
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    desk.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"], "the entry after recovery")
