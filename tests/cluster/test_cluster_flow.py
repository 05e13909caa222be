"""The cluster end to end on one machine: 2 intakes, one executor per login (P0001 from 127.0.0.2,
P0002 from 127.0.0.3, the paper exchange enforcing both), 2 guard shards each with a standby, the local
NATS and a PostgreSQL database of the test's own. Alerts go to one intake, trades are read through the
other; the equity and option slices run as on `tickguard serve`."""
from __future__ import annotations

import pytest

from tests.support.cluster import REGISTERED, Cluster
from tests.support.postgres import fresh_database


@pytest.fixture
def cluster(tmp_path, paper_factory):
    paper = paper_factory(static_ips=REGISTERED)
    with fresh_database() as url:
        running = Cluster(tmp_path, paper, url)
        try:
            yield running.start()
        finally:
            running.stop()


def peers_of(paper, trade_id: int) -> dict[str, tuple[str, str, str]]:
    """Each order request of the trade as the exchange saw it: tag -> (client code, peer, refusal)."""
    rows = paper.control("GET", "/sources").json()["orders"]
    return {r["ordertag"]: (r["clientcode"], r["peer"], r["refused"]) for r in rows
            if r["ordertag"].startswith(f"tg{trade_id}")}


def fired(view: dict) -> dict:
    return next(e for e in view["events"] if e["kind"] == "exit_fired")["data"]


def test_equity_and_option_slices_through_the_cluster(cluster):
    # Equity: one alert for both accounts, each trading on its own login.
    cluster.price(800)
    far = cluster.alert(accounts=["MAIN", "OWN"], price=900, stoploss={"type": "points", "value": 10})
    assert far.status_code == 422 and far.json()["errors"][0]["field"] == "price", far.text  # the intake's own read
    assert "800.00" in far.json()["errors"][0]["reason"]
    reply = cluster.alert(accounts=["MAIN", "OWN"], stoploss={"type": "points", "value": 10})
    assert reply.status_code == 202, reply.text
    trades = reply.json()["trades"]
    assert len(trades) == 2
    views = {}
    for trade_id in trades:  # read through the other intake: trade versions and events come over the bus
        view = cluster.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                                  what="entry filled and armed by its shard's guard", intake="intake-1")["trade"]
        views[view["account"]] = view
    assert views["MAIN"]["stop"] == views["MAIN"]["entry_price"] - 1000
    cluster.price(789)
    for trade_id in trades:
        view = cluster.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the stop's exit")
        assert fired(view)["reason"] == "STOP" and fired(view)["tick_ltp"] == 78_900
        assert view["trade"]["realised_pnl"] < 0
    main, own = views["MAIN"]["id"], views["OWN"]["id"]
    assert peers_of(cluster.paper, main) == {f"tg{main}E1": ("P0001", "127.0.0.2", ""), f"tg{main}X1": ("P0001", "127.0.0.2", "")}
    assert peers_of(cluster.paper, own) == {f"tg{own}E1": ("P0002", "127.0.0.3", ""), f"tg{own}X1": ("P0002", "127.0.0.3", "")}

    # Option: the contract chosen from the underlying's price, a premium stop.
    cluster.price(24010, token="99926000")
    reply = cluster.alert(symbolname="NIFTY", price=24000, type="option", strategyname="opt", lots=2, accounts=["OWN"],
                          stoploss={"type": "points", "value": 20})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    trade = cluster.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                               what="option armed", intake="intake-1")["trade"]
    assert trade["tradingsymbol"].startswith("NIFTY") and trade["tradingsymbol"].endswith("24000CE")
    assert trade["quantity"] == 2 * trade["spec"]["lot_size"] == trade["filled"]
    assert trade["stop"] == trade["entry_price"] - 2000
    cluster.price(round(round((trade["entry_price"] / 100 - 25) / 0.05) * 0.05, 2), token=trade["token"],
                  exchange=trade["exchange"])
    view = cluster.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="premium stop")
    assert fired(view)["reason"] == "STOP"
    assert {peer for _code, peer, _ in peers_of(cluster.paper, trade_id).values()} == {"127.0.0.3"}

    code, status = cluster.status()  # every shard led, nothing left waiting
    assert code == 0, status
    assert set(status["shards"]) == {"guard-0-of-2", "guard-1-of-2"}
    assert all(lease["token"] > 0 and lease["holder"] for lease in status["shards"].values())
    assert status["commands"] == {login: {"waiting": 0, "unacknowledged": 0} for login in ("P0001", "P0002")}
    assert status["outbox"] == {"unpublished": 0, "oldest_s": None}
