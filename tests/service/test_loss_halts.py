"""Daily-loss halts and the day's realised P&L survive a restart on the same IST day, lift on the next,
and are shown by `GET /halt`."""
from __future__ import annotations

import json

import httpx

from tests.service.test_recovery import Broker, service_process, wait  # noqa: F401 - service_process is a fixture
from tests.support.clocks import ShiftedClock, weekday_ahead
from tests.support.service import HEADERS, SECRET

STOP = {"type": "points", "value": 20}


def files(tmp_path) -> dict[str, str]:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accountslist": [
        {"accountId": "R1", "fund": 100000, "maxdailyloss": 50},
        {"accountId": "R2", "fund": 100000}]}))
    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({"orb": {"max_daily_loss": 100}}))
    return {"DEMO_ACCOUNTS_FILE": str(accounts), "STRATEGIES_FILE": str(strategies)}


def post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=HEADERS, timeout=10)


def alert(url: str, account: str, **extra) -> httpx.Response:
    body = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "orb",
            "quantity": 10, "stoploss": STOP, "accounts": [account], **extra}
    return post(url, "/opentrade", body)


def test_a_loss_halt_and_the_days_realised_pnl_survive_a_kill(paper_factory, service_process, tmp_path):
    paper = paper_factory()
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url, **files(tmp_path))
    service.start()
    first = alert(service.url, "R1")
    assert first.status_code == 202, first.text
    (trade_id,) = first.json()["trades"]
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["stop"] is not None, "the trade to be armed")
    broker.price(794)
    assert post(service.url, f"/trades/{trade_id}/close", {}).status_code == 202
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["state"] == "CLOSED", "the close")
    # realised -60.00: beyond R1's 50 a day; within the strategy's 100
    wait(lambda: service.get("/halt")["accounts"].get("R1", {}).get("halted"), "R1's halt")
    before = service.get("/halt")
    service.kill()

    service.start()  # the same IST day
    view = service.get("/halt")
    assert view["halted"] is False and view["global"] == {"halted": False, "reason": None, "at_ms": None, "operator": None}
    r1 = view["accounts"]["R1"]
    assert r1 == before["accounts"]["R1"]
    assert r1["halted"] is True and r1["realised"] == -6_000 and (r1["pnl"], r1["max_loss"]) == (-6_000, 5_000)
    assert r1["reason"] == "daily loss limit of account R1 reached: P&L -60.00 at or below -50.00" and r1["at_ms"] > 0
    assert view["strategies"]["orb"] == {"halted": False, "realised": -6_000}
    assert [(h["scope"], h["key"], h["lifted_ms"]) for h in view["halts"]] == [("account", "R1", None)]
    refused = alert(service.url, "R1", price=794, id="after-restart")
    assert refused.status_code == 409 and "daily loss limit" in refused.json()["errors"][0]["reason"], refused.text
    assert refused.json()["errors"][0]["field"] == "limits"

    # The strategy's realised -60.00 came back too: an open loss of 50.00 on another account now reaches its 100.
    broker.price(800)
    second = alert(service.url, "R2", id="second")
    assert second.status_code == 202, second.text
    (other,) = second.json()["trades"]
    wait(lambda: service.get(f"/trades/{other}")["trade"]["stop"] is not None, "the second trade to be armed")
    broker.price(795)
    wait(lambda: service.get("/halt")["strategies"]["orb"].get("halted"), "the strategy's halt")
    assert service.get("/halt")["strategies"]["orb"]["pnl"] == -11_000
    assert service.get(f"/trades/{other}")["trade"]["state"] == "OPEN"  # no flatten_on_loss: it stays guarded


def test_a_loss_halt_lifts_when_tickguard_starts_on_the_next_day(service_factory, paper_factory, tmp_path):
    paper = paper_factory()
    clock = ShiftedClock(11, 0, day=weekday_ahead())
    service = service_factory(paper=paper, clock=clock, **files(tmp_path))
    service.price(800)
    first = service.alert(accounts=["R1"], strategyname="orb", quantity=10, stoploss=STOP)
    (trade_id,) = first.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"], what="armed")
    service.price(794)  # ticks stamped by the real clock are stale to this one: the close realises the loss
    with service.client() as client:
        assert client.post(f"/trades/{trade_id}/close").status_code == 202
        service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="the close")
        wait(lambda: client.get("/halt").json()["accounts"].get("R1", {}).get("halted"), "R1's halt")
        refused = service.alert(accounts=["R1"], strategyname="orb", quantity=10, stoploss=STOP, price=794)
        assert refused.status_code == 409, refused.text
    service.stop()

    clock.jump_to(9, 30, days=1)
    service = service_factory(paper=paper, clock=clock, **files(tmp_path))
    with service.client() as client:
        view = client.get("/halt").json()
    assert view["accounts"] == {} and view["strategies"] == {}  # a new day: nothing realised, nothing halted
    assert view["halts"] == []
    again = service.alert(accounts=["R1"], strategyname="orb", quantity=10, stoploss=STOP, price=794)
    assert again.status_code == 202, again.text


def test_the_operators_halt_takes_a_reason_and_refuses_a_bad_one(service_factory):
    service = service_factory()
    with service.client() as client:
        bad = client.post("/halt", json={"halted": True, "reason": 5})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
        assert client.get("/halt").json()["halted"] is False
        assert client.post("/halt", json={"halted": True, "reason": "broker outage"}).json()["halted"] is True
        view = client.get("/halt").json()
        assert view["global"]["halted"] is True and view["global"]["reason"] == "broker outage"
        assert view["global"]["operator"] == "demo"  # the demo operator's API token pulled it
        assert [(h["scope"], h["reason"], h["lifted_ms"], h["operator"]) for h in view["halts"]] == [
            ("global", "broker outage", None, "demo")]
        client.post("/halt", json={"halted": False})
        view = client.get("/halt").json()
        assert view["global"] == {"halted": False, "reason": None, "at_ms": None, "operator": None}
        assert view["halts"][0]["lifted_ms"] is not None
