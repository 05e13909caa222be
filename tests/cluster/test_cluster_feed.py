"""What an intake shows of work done elsewhere in the cluster: the live feed of a trade alerted through
the other intake (its alert, events, prices and close), the trades API, and a halt set through the other
intake, which refuses this intake's alerts too."""
from __future__ import annotations

import pytest

from tests.service.test_feed import STOP_10, open_feed
from tests.support.cluster import REGISTERED, Cluster
from tests.support.postgres import fresh_database
from tests.support.waiting import wait_for


@pytest.fixture
def cluster(tmp_path, paper_factory):
    """Two intakes, both executors, one guard shard."""
    paper = paper_factory(static_ips=REGISTERED)
    with fresh_database() as url:
        running = Cluster(tmp_path, paper, url, shards=1)
        try:
            yield running.start(intakes=2, standbys=False)
        finally:
            running.stop()


def test_the_other_intakes_feed_shows_the_trade_its_prices_and_its_close(cluster):
    cluster.price(800)
    with open_feed(cluster.roles["intake-1"]) as feed:
        assert feed.next()["type"] == "snapshot"
        reply = cluster.alert("intake-0", accounts=["MAIN"], price=800, stoploss=STOP_10, quantity=5)
        assert reply.status_code == 202, reply.text
        (trade_id,) = reply.json()["trades"]
        assert feed.event("alert_accepted")["data"]["trades"] == [trade_id]
        for kind in ("entry_sent", "entry_fill", "armed"):
            feed.event(kind, trade_id)
        cluster.price(795)
        prices = feed.until(lambda m: m["type"] == "prices" and m["prices"][0]["ltp"] == 79500, what="the guard's price")
        assert prices["prices"] == [{"trade_id": trade_id, "ltp": 79500, "pnl": -500 * 5}]
        cluster.price(789)
        assert feed.event("exit_fired", trade_id)["data"]["reason"] == "STOP"
        feed.event("closed", trade_id)
        if not any(m["type"] == "trade" and m["trade"]["state"] == "CLOSED" for m in feed.seen):
            feed.until(lambda m: m["type"] == "trade" and m["trade"]["state"] == "CLOSED", what="the closed row")
        row = [m for m in feed.seen if m["type"] == "trade" and m["trade"]["state"] == "CLOSED"][-1]["trade"]
        assert row["pnl"] == row["realised_pnl"] < 0
    with cluster.client("intake-1") as client:
        assert [t["id"] for t in client.get("/trades").json()["trades"]] == [trade_id]


def test_a_halt_set_through_one_intake_holds_on_the_other(cluster):
    with cluster.client("intake-0") as client:
        assert client.post("/halt", json={"halted": True, "reason": "desk says stop"}).status_code == 200
    with cluster.client("intake-1") as client:
        wait_for(lambda: client.get("/halt").json()["halted"], what="the halt heard by the other intake")
    reply = cluster.alert("intake-1", accounts=["MAIN"], stoploss=STOP_10)
    assert reply.status_code == 409, reply.text
    with cluster.client("intake-1") as client:
        assert client.post("/halt", json={"halted": False}).status_code == 200
    with cluster.client("intake-0") as client:
        wait_for(lambda: not client.get("/halt").json()["halted"], what="the halt lifted on the other intake")
    cluster.price(800)
    assert cluster.alert("intake-0", accounts=["MAIN"], stoploss=STOP_10).status_code == 202
