"""The static-IP rule end to end: two logins on 127.0.0.2 and 127.0.0.3 against a paper exchange that
enforces it — each login's orders arrive from its own address and are accepted; a login misconfigured
onto the other's address is refused by the exchange, and the trade says so."""
from __future__ import annotations

import logging
from pathlib import Path

from tests.support.paper import DEMO, OTHER, two_logins

REGISTERED = {DEMO.clientcode: "127.0.0.2", OTHER.clientcode: "127.0.0.3"}


def setup(tmp_path: Path, paper_factory, service_factory, other_address: str):
    credentials, accounts = two_logins(tmp_path, other_address)
    paper = paper_factory(static_ips=REGISTERED)
    service = service_factory(paper=paper, SMARTAPI_SOURCE_ADDRESS="127.0.0.2", CREDENTIALS_FILE=str(credentials),
                              DEMO_ACCOUNTS_FILE=str(accounts))
    service.price(800)
    return paper, service


def peers_of(paper, trade_id: int) -> dict[str, tuple[str, str, str]]:
    """Each order request of the trade as the exchange saw it: tag -> (client code, peer, refusal)."""
    rows = paper.control("GET", "/sources").json()["orders"]
    return {r["ordertag"]: (r["clientcode"], r["peer"], r["refused"]) for r in rows
            if r["ordertag"].startswith(f"tg{trade_id}")}


def entries_settled(service) -> dict[str, dict]:
    """An alert for both accounts; each trade once its entry is settled (REJECTED, or OPEN and armed), by account."""
    reply = service.alert(accounts=["MAIN", "OWN"], stoploss={"type": "points", "value": 10})
    assert reply.status_code == 202, reply.text
    views = {}
    for trade_id in reply.json()["trades"]:
        view = service.wait_trade(trade_id, lambda t: t["state"] == "REJECTED" or t["state"] == "OPEN" and t["stop"],
                                  what="entry settled")["trade"]
        views[view["account"]] = view
    return views


def test_each_logins_orders_arrive_from_its_own_address(tmp_path, paper_factory, service_factory):
    paper, service = setup(tmp_path, paper_factory, service_factory, other_address="127.0.0.3")
    views = entries_settled(service)
    assert all(view["state"] == "OPEN" for view in views.values()), views
    trades = {account: view["id"] for account, view in views.items()}
    service.price(789)
    for trade_id in trades.values():
        service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the stop's exit")
    main, own = trades["MAIN"], trades["OWN"]
    assert peers_of(paper, main) == {f"tg{main}E1": ("P0001", "127.0.0.2", ""), f"tg{main}X1": ("P0001", "127.0.0.2", "")}
    assert peers_of(paper, own) == {f"tg{own}E1": ("P0002", "127.0.0.3", ""), f"tg{own}X1": ("P0002", "127.0.0.3", "")}


def test_a_login_on_the_other_logins_address_is_refused_and_the_trade_says_why(tmp_path, paper_factory, service_factory,
                                                                               caplog):
    paper, service = setup(tmp_path, paper_factory, service_factory, other_address="127.0.0.2")
    caplog.set_level(logging.INFO)
    views = entries_settled(service)
    assert views["MAIN"]["state"] == "OPEN"  # the correctly placed login trades on
    refused = views["OWN"]
    message = "Order refused by the static-IP rule: client P0002 must send orders from 127.0.0.3, this one came from 127.0.0.2"
    assert refused["state"] == "REJECTED" and refused["reason"] == f"{message} [AB7001]"
    assert peers_of(paper, refused["id"]) == {f"tg{refused['id']}E1": ("P0002", "127.0.0.2", message)}
    assert any(message in record.getMessage() for record in caplog.records), [r.getMessage() for r in caplog.records]
