"""The broker-side backup stop across a crash: SIGKILL tickguard (a real subprocess) with an open trade,
move the market while it is down, restart.

The trade: SBIN bought at ₹800, stop ₹790; its broker stop triggers at ₹788.40 with a limit of ₹784.45.
"""
from __future__ import annotations

import httpx

from tests.service.test_recovery import Broker, post_alert, service_process, wait  # noqa: F401 - a fixture
from tests.support.service import HEADERS, SECRET

BACKUP = {"BROKER_STOP": "backup", "BROKER_STOP_MIN_S": "0"}


def open_trade(service, strategy: str) -> int:
    body = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": strategy,
            "quantity": 5, "stoploss": {"type": "points", "value": 10}}
    reply = httpx.post(f"{service.url}/opentrade", json=body, headers=HEADERS, timeout=10)
    assert reply.status_code == 202, reply.text
    return reply.json()["trades"][0]


def stops(broker: Broker, trade_id: int) -> list[dict]:
    return [o for o in broker.orders() if o["ordertag"].startswith(f"tg{trade_id}B")]


def armed_with_broker_stop(service, broker: Broker, trade_id: int) -> None:
    wait(lambda: [o for o in stops(broker, trade_id) if o["status"] == "trigger pending"], "the broker stop placed")
    wait(lambda: service.get(f"/trades/{trade_id}")["trade"]["state"] == "OPEN", "the trade open")


def started(paper_factory, service_process):
    """A paper exchange with SBIN at ₹800 and tickguard (BROKER_STOP=backup) running against it."""
    paper = paper_factory()
    broker = Broker(paper)
    broker.price(800)
    service = service_process(paper.url, **BACKUP)
    service.start()
    return paper, broker, service


def test_the_broker_stop_fills_while_tickguard_is_down(paper_factory, service_process):
    _, broker, service = started(paper_factory, service_process)
    trade_id = post_alert(service)
    armed_with_broker_stop(service, broker, trade_id)
    service.kill()
    broker.price(787)  # through both stops, tickguard down: the broker's stop triggers and fills (₹787 ≥ its limit)
    (stop,) = stops(broker, trade_id)
    assert stop["status"] == "complete" and broker.net() == 0
    broker.price(795)  # the price comes back before tickguard does
    service.start()
    view = wait(lambda: (v := service.get(f"/trades/{trade_id}"))["trade"]["state"] == "CLOSED" and v,
                "the trade closed by its broker stop")
    trade = view["trade"]
    assert trade["reason"] == "BROKER_STOP" and trade["exit_price"] == 78_700 and trade["exited"] == 5
    assert trade["realised_pnl"] == (78_700 - 80_000) * 5
    tags = sorted(o["ordertag"] for o in broker.orders())
    assert tags == [f"tg{trade_id}B1", f"tg{trade_id}E1"], tags  # nothing else sent
    assert broker.net() == 0


def test_a_missing_broker_stop_is_placed_again_and_an_orphan_cancelled(paper_factory, service_process):
    paper, broker, service = started(paper_factory, service_process)
    kept = open_trade(service, "one")
    armed_with_broker_stop(service, broker, kept)
    other = open_trade(service, "two")
    armed_with_broker_stop(service, broker, other)
    service.kill()
    # While tickguard is down the account holder cancels one stop by hand, and a stop is placed at
    # the broker under the tag of a trade tickguard never had: an orphan.
    (mine,) = stops(broker, kept)
    reply = httpx.post(f"{paper.url}/rest/secure/angelbroking/order/v1/cancelOrder", headers=broker.headers,
                       json={"variety": "STOPLOSS", "orderid": mine["orderid"]})
    assert reply.json()["status"] is True
    orphan = {"variety": "STOPLOSS", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "transactiontype": "SELL",
              "exchange": "NSE", "ordertype": "STOPLOSS_LIMIT", "producttype": "INTRADAY", "duration": "DAY",
              "price": "700", "triggerprice": "705", "quantity": "1", "ordertag": "tgzzzB1"}
    reply = httpx.post(f"{paper.url}/rest/secure/angelbroking/order/v1/placeOrder", headers=broker.headers, json=orphan)
    assert reply.json()["status"] is True, reply.text
    service.start()
    wait(lambda: [o for o in stops(broker, kept) if o["ordertag"] == f"tg{kept}B2" and o["status"] == "trigger pending"],
         "the missing broker stop placed again")
    wait(lambda: [o["status"] for o in broker.orders() if o["ordertag"] == "tgzzzB1"] == ["cancelled"],
         "the orphan cancelled")
    assert [o["status"] for o in stops(broker, other)] == ["trigger pending"]  # untouched: still its trade's
    view = httpx.get(f"{service.url}/trades/{kept}", headers=HEADERS, timeout=10).json()
    assert view["trade"]["state"] == "OPEN" and view["trade"]["broker_stop"]["tags"] == [f"tg{kept}B2"]
