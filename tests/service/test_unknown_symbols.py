"""An alert for a symbol the instrument master does not know is answered at once, never after the
broker's paced symbol search: the real app and a paper exchange whose searchScrip can be held."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest

from service.symbols.master import MASTER_PATH
from tests.service.symbols.conftest import MasterServer
from tests.support.servers import ServerThread
from tests.support.waiting import wait_for


def held_searches(service) -> int:
    return service.paper.control("GET", "/state").json()["holds"].get("searchScrip", 0)


def cached(service, key: str) -> dict | None:
    path = Path(service.settings.symbol_tokens_file)
    try:
        return json.loads(path.read_text())["symbols"].get(key)
    except (FileNotFoundError, ValueError):
        return None


@pytest.fixture
def lacking_trent(paper_factory):
    """A paper exchange, and a master server serving its master without TRENT (searchScrip still finds it)."""
    paper = paper_factory()
    rows = [row for row in paper.exchange.universe.master() if row["name"] != "TRENT"]
    server = MasterServer(msgspec.json.encode(rows))
    with ServerThread(server.app()) as running:
        server.url = running.url + MASTER_PATH
        yield paper, server


def test_unknown_symbol_alerts_are_answered_while_the_broker_search_hangs(service_factory, paper_factory):
    paper = paper_factory()
    service = service_factory(paper)
    assert paper.control("POST", "/holds", json={"route": "searchScrip"}).status_code == 201
    names = ["NOSUCH", "NOSUCH", "NOSUCH", "NEWCO1", "NEWCO2", "NEWCO3"]
    try:
        with ThreadPoolExecutor(len(names)) as pool:
            sent = [pool.submit(service.alert, symbolname=name, price=100 + n) for n, name in enumerate(names)]
            replies = [reply.result(timeout=20) for reply in sent]
        # Every reply came back while the broker still sits on a search: none of them waited for it.
        wait_for(lambda: held_searches(service) >= 1, "a background search held at the paper exchange", timeout=2)
    finally:
        paper.control("DELETE", "/holds")
    for name, reply in zip(names, replies):
        assert reply.status_code == 422, reply.text
        (error,) = reply.json()["errors"]
        assert error["field"] == "symbolname"
        assert error["reason"].startswith(f"{name}: ") and "instrument master" in error["reason"]
        assert "searchScrip" in error["reason"]
    assert service.trade_count_in_store() == (0, 0)


def test_a_symbol_the_background_search_finds_resolves_on_the_next_alert(service_factory, lacking_trent):
    paper, master = lacking_trent
    service = service_factory(paper, INSTRUMENT_MASTER_URL=master.url)
    service.price(5000, token="1964")  # the alert's price is the market's (the alert price check)
    first = service.alert(symbolname="TRENT", price=5000)
    assert first.status_code == 422, first.text
    assert "searchScrip" in first.json()["errors"][0]["reason"]
    entry = wait_for(lambda: cached(service, "TRENT"), "TRENT found by the background search and cached")
    assert (entry["token"], entry["tradingsymbol"]) == ("1964", "TRENT-EQ")
    again = service.alert(symbolname="TRENT", price=5000)
    assert again.status_code == 202, again.text
    (trade_id,) = again.json()["trades"]
    assert service.trade(trade_id)["trade"]["token"] == "1964"
