"""`WS /ws/trades` against the real app and a paper exchange: snapshot, events, prices, overflow, auth."""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator

import httpx
import msgspec
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from service.logs import JsonFormatter, Redactor
from service.settings import PAPER_OPERATOR, PAPER_OPERATOR_PASSWORD
from service.web.feed import QUEUE_SIZE, FeedHub
from tests.support.service import HEADERS, OPERATOR_TOKEN, SECRET

SIGNED_OUT = {"authenticated": False, "operator": None, "role": None}

STOP_10 = {"type": "points", "value": 10}


class Feed:
    """A sync feed client that keeps every message it has read."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.seen: list[dict] = []

    def next(self, timeout: float = 10) -> dict:
        message = json.loads(self.connection.recv(timeout=timeout))
        self.seen.append(message)
        return message

    def until(self, predicate: Callable[[dict], bool], timeout: float = 10, what: str = "a message") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; last: {self.seen[-3:]}")
            try:
                message = self.next(timeout=left)
            except TimeoutError:
                continue
            if predicate(message):
                return message

    def event(self, kind: str, trade_id: int | None = None, timeout: float = 10) -> dict:
        return self.until(lambda m: m["type"] == "event" and m["kind"] == kind
                          and (trade_id is None or m["trade_id"] == trade_id), timeout, f"event {kind}")


def ws_url(service, **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return service.url.replace("http://", "ws://") + "/ws/trades" + (f"?{params}" if params else "")


@contextlib.contextmanager
def open_feed(service, headers: dict[str, str] | None = None, **query: str) -> Iterator[Feed]:
    headers = HEADERS if headers is None else headers
    with connect(ws_url(service, **query), additional_headers=headers, open_timeout=10, close_timeout=1) as connection:
        yield Feed(connection)


def open_trade(service, price: float = 800, **alert) -> int:
    service.price(price)
    reply = service.alert(price=price, **alert)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="entry and arming")
    return trade_id


def hub_of(service) -> FeedHub:
    return service.app.state.feed


def on_server_loop(service, work: Callable[[FeedHub], object]) -> object:
    """Run `work(hub)` on the server's event loop, in one callback: nothing else runs meanwhile."""
    hub = hub_of(service)

    async def run() -> object:
        return work(hub)

    return asyncio.run_coroutine_threadsafe(run(), hub.loop).result(timeout=10)


def test_snapshot_then_prices_events_and_close(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss=STOP_10, quantity=5)
    with open_feed(service) as feed:
        snapshot = feed.next()
        assert snapshot["type"] == "snapshot" and snapshot["reason"] == "connect" and snapshot["halted"] is False
        (trade,) = snapshot["trades"]
        assert (trade["id"], trade["state"], trade["stop"], trade["entry_price"]) == (trade_id, "OPEN", 79000, 80000)
        assert trade["ltp"] == 80000 and trade["pnl"] == 0 and trade["open_quantity"] == 5
        kinds = [e["kind"] for e in snapshot["events"] if e["trade_id"] == trade_id]
        assert kinds[0] == "created" and "entry_fill" in kinds and kinds[-1] == "armed"
        assert all(e["id"] for e in snapshot["events"])

        service.price(795)
        prices = feed.until(lambda m: m["type"] == "prices" and m["prices"][0]["ltp"] != 80000, what="a price update")
        assert prices["prices"] == [{"trade_id": trade_id, "ltp": 79500, "pnl": -500 * 5}]

        service.price(789)
        fired = feed.event("exit_fired", trade_id)
        assert fired["data"]["reason"] == "STOP" and fired["id"] > snapshot["events"][-1]["id"]
        feed.event("exit_sent", trade_id)
        feed.event("closed", trade_id)
        if not any(m["type"] == "trade" and m["trade"]["state"] == "CLOSED" for m in feed.seen):
            feed.until(lambda m: m["type"] == "trade" and m["trade"]["state"] == "CLOSED", what="the closed row")
        row = [m for m in feed.seen if m["type"] == "trade" and m["trade"]["state"] == "CLOSED"][-1]["trade"]
        assert row["pnl"] == row["realised_pnl"] < 0
        versions = [m["trade"]["version"] for m in feed.seen if m["type"] == "trade"]
        assert versions == sorted(versions)


def test_alerts_orders_halt_as_they_happen(service_factory):
    service = service_factory()
    service.price(800)
    with open_feed(service) as feed:
        assert feed.next()["trades"] == []
        reply = service.alert(price=800, stoploss=STOP_10, quantity=2)
        (trade_id,) = reply.json()["trades"]
        accepted = feed.event("alert_accepted")
        assert accepted["data"]["trades"] == [trade_id] and "token" not in accepted["data"]["alert"]
        for kind in ("entry_sent", "entry_fill", "armed"):
            feed.event(kind, trade_id)
        states = [m["trade"]["state"] for m in feed.seen if m["type"] == "trade"]
        assert states[0] == "PENDING_ENTRY" and "OPEN" in states

        with service.client() as client:
            assert client.post("/halt", json={"halted": True}).status_code == 200
        assert feed.event("halt")["data"]["halted"] is True
        refused = service.alert(price=800, stoploss=STOP_10, quantity=2, strategyname="s9")
        assert refused.status_code == 409
        assert "halted" in feed.event("alert_refused")["data"]["reason"]
    with open_feed(service) as feed:
        assert feed.next()["halted"] is True


def test_prices_are_coalesced_per_trade_latest_wins(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    with open_feed(service) as feed:
        feed.next()
        points = [round(800 + i * 0.05, 2) for i in range(1, 201)]  # 200 ticks in one second
        reply = service.paper.control("POST", "/paths", json={"exchange": "NSE", "token": "3045", "points": points,
                                                              "interval_ms": 5})
        assert reply.status_code in (200, 201, 202), reply.text
        started = time.monotonic()
        last = feed.until(lambda m: m["type"] == "prices" and m["prices"][-1]["ltp"] == 81000, timeout=10,
                          what="the last price of the path")
        elapsed = time.monotonic() - started
    updates = [p for m in feed.seen if m["type"] == "prices" for p in m["prices"] if p["trade_id"] == trade_id]
    assert last["prices"] == [{"trade_id": trade_id, "ltp": 81000, "pnl": 1000}]
    assert 2 <= len(updates) <= 10 * elapsed + 3, (len(updates), elapsed)
    ltps = [p["ltp"] for p in updates]
    assert ltps == sorted(ltps) and len(set(ltps)) == len(ltps)


def burst(count: int, first_version: int) -> Callable[[FeedHub], object]:
    def work(hub: FeedHub) -> object:
        trade = next(iter(hub._open.values()))
        for n in range(count):
            hub.on_trade(msgspec.structs.replace(trade, version=first_version + n))
        return None
    return work


def test_a_client_that_falls_behind_gets_a_fresh_snapshot_not_the_backlog(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    with open_feed(service) as feed:
        feed.next()
        on_server_loop(service, burst(QUEUE_SIZE * 4, 1000))  # faster than any socket: all queued at once
        resync = feed.until(lambda m: m["type"] == "snapshot", what="the overflow snapshot")
        assert resync["reason"] == "overflow" and [t["id"] for t in resync["trades"]] == [trade_id]
        assert len([m for m in feed.seen if m["type"] == "trade"]) <= QUEUE_SIZE
        assert hub_of(service).overflows == 1
        service.price(803)  # the feed goes on after the resync
        feed.until(lambda m: m["type"] == "prices" and m["prices"][0]["ltp"] == 80300, what="a price after it")


def test_a_stuck_client_stays_bounded_and_never_holds_up_the_others(service_factory):
    service = service_factory()
    open_trade(service, stoploss=STOP_10, quantity=1)
    account = service.settings.demo_account
    hub = hub_of(service)
    # The stuck client reads nothing (max_queue=1), so its socket buffers fill up and stay full; without
    # compression, since a run of near-identical rows would deflate to almost nothing.
    with connect(ws_url(service, account=account), additional_headers=HEADERS,
                 max_queue=1, close_timeout=0.5, compression=None), open_feed(service) as feed:
        feed.next()
        version = 10_000
        for _ in range(80):  # 16 000 rows of ~0.6 kB: more than the socket buffers hold
            on_server_loop(service, burst(200, version))
            version += 200
            feed.until(lambda m, v=version - 1: m["type"] == "trade" and m["trade"]["version"] == v, what="the burst")
            (stuck,) = [c for c in hub.clients if c.account == account]
            assert len(stuck.queue) <= QUEUE_SIZE
        assert hub.overflows >= 1 and stuck.resync == "overflow"
    versions = [m["trade"]["version"] for m in feed.seen if m["type"] == "trade" and m["trade"]["version"] >= 10_000]
    assert versions == list(range(10_000, version))  # the reading client missed nothing
    assert [m for m in feed.seen if m["type"] == "snapshot"][1:] == []


def test_filters_by_strategy_and_account(service_factory):
    service = service_factory()
    first = open_trade(service, stoploss=STOP_10, quantity=1, strategyname="s1")
    with open_feed(service, strategy="s2") as feed, open_feed(service, account="ELSEWHERE") as other_account:
        assert feed.next()["trades"] == []
        assert other_account.next()["trades"] == []
        second = open_trade(service, stoploss=STOP_10, quantity=1, strategyname="s2")
        feed.event("armed", second)
        service.price(789)  # stops the s1 trade out, the s2 one too
        feed.event("closed", second)
        service.wait_trade(first, lambda t: t["state"] == "CLOSED", what="s1 closed")
        with pytest.raises(TimeoutError):
            while True:  # of DEMO's trades, nothing reaches a client watching another account
                message = other_account.next(timeout=0.3)
                assert message["type"] == "event" and message["trade_id"] is None
    assert {m["trade"]["strategy"] for m in feed.seen if m["type"] == "trade"} == {"s2"}
    assert {m["trade_id"] for m in feed.seen if m["type"] == "event" and m["trade_id"]} == {second}
    assert all(m["data"]["alert"]["strategyname"] == "s2" for m in feed.seen
               if m["type"] == "event" and m["kind"] == "alert_accepted")
    assert all(p["trade_id"] == second for m in feed.seen if m["type"] == "prices" for p in m["prices"])
    with open_feed(service, account=service.settings.demo_account, strategy="s1") as mine:
        assert [t["id"] for t in mine.next()["trades"]] == [first]


def test_the_feed_needs_an_operators_token_or_session_never_the_webhook_secret(service_factory):
    service = service_factory()
    for headers, query in (({}, {}), ({"X-Webhook-Secret": "wrong"}, {}), ({}, {"token": "wrong"}),
                           ({"Cookie": "tickguard_session=made-up"}, {}), ({"X-Webhook-Secret": SECRET}, {}),
                           ({"Authorization": f"Bearer {SECRET}"}, {}), ({}, {"token": SECRET}),
                           ({}, {"token": OPERATOR_TOKEN + "x"})):
        with pytest.raises(InvalidStatus) as refused, open_feed(service, headers=headers, **query):
            pass
        assert refused.value.response.status_code == 403
    with open_feed(service, headers={}, token=OPERATOR_TOKEN) as feed:
        assert feed.next()["type"] == "snapshot"


def refused_feed(service, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as refused, open_feed(service, headers=headers):
        pass
    return refused.value.response.status_code


def test_login_sets_a_strict_http_only_cookie_that_the_feed_and_controls_accept(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    origin = service.url
    with httpx.Client(base_url=service.url, timeout=10) as browser:
        assert browser.post("/login", json={"name": PAPER_OPERATOR, "password": "wrong"}).status_code == 401
        assert browser.post("/login", json={"secret": SECRET}).status_code == 401  # the webhook secret is no login
        assert browser.get("/session").json() == SIGNED_OUT
        assert browser.get("/trades").status_code == 401
        reply = browser.post("/login", json={"name": PAPER_OPERATOR, "password": PAPER_OPERATOR_PASSWORD})
        assert reply.status_code == 200
        cookie = reply.headers["set-cookie"]
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= attributes and "secure" not in attributes
        assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
        session = browser.cookies["tickguard_session"]
        assert len(session) >= 40
        assert browser.get("/session").json() == {"authenticated": True, "operator": PAPER_OPERATOR, "role": "trader"}

        assert browser.get("/trades").status_code == 200
        assert browser.post("/halt", json={"halted": False}).status_code == 403  # no Origin: refused
        assert browser.post("/halt", json={"halted": False}, headers={"Origin": "http://evil.example"}).status_code == 403
        assert browser.post("/halt", json={"halted": False}, headers={"Origin": origin}).status_code == 200
        assert browser.post("/halt", json={"halted": False}, headers={"Referer": origin + "/"}).status_code == 200

        with open_feed(service, headers={"Cookie": f"tickguard_session={session}", "Origin": origin}) as feed:
            assert [t["id"] for t in feed.next()["trades"]] == [trade_id]
            assert refused_feed(service, {"Cookie": f"tickguard_session={session}", "Origin": "http://evil.example"}) == 403
            closing = browser.post(f"/trades/{trade_id}/close", headers={"Origin": origin})
            assert closing.status_code == 202
            feed.event("closed", trade_id)

        assert browser.post("/logout", json={}).status_code == 200
        assert browser.get("/session").json() == SIGNED_OUT
        browser.cookies.set("tickguard_session", session)  # a copy kept after logout is worth nothing
        assert browser.get("/trades").status_code == 401
        assert refused_feed(service, {"Cookie": f"tickguard_session={session}", "Origin": origin}) == 403

        form = browser.post("/login", data={"name": PAPER_OPERATOR, "password": PAPER_OPERATOR_PASSWORD},
                            follow_redirects=False)
        assert form.status_code == 303 and form.headers["location"] == "/"
        assert "tickguard_session" in form.headers["set-cookie"]
        failed = browser.post("/login", data={"name": PAPER_OPERATOR, "password": "nope"}, follow_redirects=False)
        assert failed.status_code == 303 and failed.headers["location"] == "/?login=failed"


def test_the_page_is_served_with_a_strict_policy(service_factory):
    service = service_factory()
    page = httpx.get(service.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_query_strings_never_reach_the_logs(service_factory):
    service = service_factory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor()))  # no secrets configured: the query is masked as such
    server_log = logging.getLogger("uvicorn.error")
    level = server_log.level
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    try:
        with open_feed(service, headers={}, token=OPERATOR_TOKEN, strategy="s1") as feed:
            feed.next()
        assert refused_feed(service, {"X-Unused": "1"}) == 403
        with pytest.raises(InvalidStatus), open_feed(service, headers={}, token="a-wrong-guess"):
            pass
    finally:
        server_log.removeHandler(handler)
        server_log.setLevel(level)
    lines = stream.getvalue()
    assert "/ws/trades" in lines
    assert OPERATOR_TOKEN not in lines and "a-wrong-guess" not in lines and "strategy=s1" not in lines


def test_events_while_nobody_listened_are_not_read_and_never_replayed_after_the_snapshot(service_factory):
    """With no browser open the feed reads nothing per trade change; the first client's snapshot holds the
    past, and only what happens after it comes as events."""
    service = service_factory()
    store = service.app.state.runtime.store
    reads: list[str] = []
    real_last = store.last_event_id

    async def counted() -> int:
        reads.append("last_event_id")
        return await real_last()

    store.last_event_id = counted
    first = open_trade(service, stoploss=STOP_10, quantity=5)  # created, entry, fill, armed: nobody listening
    assert reads == []
    with open_feed(service) as feed:
        snapshot = feed.next()
        assert snapshot["type"] == "snapshot" and {e["trade_id"] for e in snapshot["events"]} == {first}
        past = max(e["id"] for e in snapshot["events"])
        second = open_trade(service, stoploss=STOP_10, quantity=3)
        armed = feed.event("armed", second)
        assert armed["id"] > past
        rows = [m for m in feed.seen if m["type"] == "event" and m.get("trade_id") is not None]  # (not announcements)
        assert rows and all(m["trade_id"] == second and m["id"] > past for m in rows)  # nothing of the first again
