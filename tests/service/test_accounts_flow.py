"""Many accounts: each its own size and stop; a failing account never blocks the others; the account
service going down stops entries but never exits."""
from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.servers import ServerThread

ACCOUNTS = {"accountslist": [
    {"accountId": "A1", "pseudoAccountName": "Asha", "fund": 100000, "stoplosstype": "number", "stoploss": 500},
    {"accountId": "B2", "pseudoAccountName": "Bala", "fund": "40000", "stoplosstype": "percentage", "stoploss": 2},
    {"accountId": "C3", "pseudoAccountName": "Chetan", "fund": 500, "stoplosstype": "number", "stoploss": 100},
]}


def trades_of(service, alert_reply) -> dict[str, dict]:
    views = [service.wait_trade(t, lambda t: t["state"] in ("OPEN", "REJECTED") and (t["state"] == "REJECTED" or t["stop"]),
                                what="entry settled")["trade"] for t in alert_reply.json()["trades"]]
    return {v["account"]: v for v in views}


def test_each_account_gets_its_own_size_and_stop(service_factory, tmp_path):
    accounts_file = tmp_path / "accounts.json"
    accounts_file.write_text(json.dumps(ACCOUNTS))
    service = service_factory(DEMO_ACCOUNTS_FILE=str(accounts_file))
    service.price(800)
    reply = service.alert(accounts=["A1", "B2", "C3"])
    assert reply.status_code == 202, reply.text
    by_account = trades_of(service, reply)
    a1, b2, c3 = by_account["A1"], by_account["B2"], by_account["C3"]
    assert a1["quantity"] == 125 and b2["quantity"] == 50  # fund / price
    assert a1["stop"] == 80000 - 400  # ₹500 at risk over 125 shares = ₹4
    assert b2["stop"] == 80000 - 1600  # 2 % of ₹40,000 over 50 shares = ₹16
    assert c3["state"] == "REJECTED" and "less than one share" in c3["reason"]
    service.price(783)
    for account in ("A1", "B2"):
        service.wait_trade(by_account[account]["id"], lambda t: t["state"] == "CLOSED", what=f"{account} stopped")


class FlakyAccounts:
    def __init__(self) -> None:
        self.up = True

    def app(self) -> Starlette:
        async def users(request):
            if not self.up:
                return Response("down for maintenance", status_code=503)
            return JSONResponse(ACCOUNTS)
        return Starlette(routes=[Route("/users", users)])


def test_account_service_down_refuses_entries_but_exits_still_fire(service_factory):
    flaky = FlakyAccounts()
    with ServerThread(flaky.app()) as users:
        service = service_factory(USERS_URL=f"{users.url}/users", ACCOUNTS_TTL_S="0.2")
        service.price(800)
        reply = service.alert(accounts=["A1"], stoploss={"type": "points", "value": 10})
        (trade_id,) = reply.json()["trades"]
        service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"], what="armed")
        flaky.up = False
        import time
        time.sleep(0.3)  # let the cached list age past its TTL
        refused = service.alert(accounts=["A1"], stoploss={"type": "points", "value": 10}, strategyname="s9")
        assert refused.status_code == 503 and "account service" in refused.json()["errors"][0]["reason"]
        service.price(789)
        service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="exit while the account service is down")


def test_an_account_with_its_own_login_trades_on_it(service_factory, tmp_path):
    from tests.support.paper import DEMO, OTHER
    from tests.service.test_recovery import Broker

    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps([{"clientcode": OTHER.clientcode, "password": OTHER.pin,
                                        "api_key": OTHER.api_key, "totp_secret": OTHER.totp_secret}]))
    credentials.chmod(0o600)
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accountslist": [
        {"accountId": "OWN", "pseudoAccountName": "Own login", "fund": 50000, "stoplosstype": "number",
         "stoploss": 100, "clientcode": OTHER.clientcode}]}))
    service = service_factory(CREDENTIALS_FILE=str(credentials), DEMO_ACCOUNTS_FILE=str(accounts))
    service.price(800)
    reply = service.alert(accounts=["OWN"], stoploss={"type": "points", "value": 10})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"], what="armed on its own login")
    service.price(789)
    service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="exit on its own login")
    assert DEMO.clientcode != OTHER.clientcode
    own = Broker(service.paper, OTHER)
    assert sorted(o["ordertag"] for o in own.orders()) == [f"tg{trade_id}E1", f"tg{trade_id}X1"]
    assert [o for o in Broker(service.paper).orders() if o["ordertag"].startswith(f"tg{trade_id}")] == []


def test_risk_limits_max_open_trades_and_daily_loss(service_factory, tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accountslist": [
        {"accountId": "R1", "fund": 100000, "maxdailyloss": 50, "stoplosstype": "number", "stoploss": 300}]}))
    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({"capped": {"max_open_trades": 1}}))
    service = service_factory(DEMO_ACCOUNTS_FILE=str(accounts), STRATEGIES_FILE=str(strategies))
    service.price(800)
    first = service.alert(accounts=["R1"], strategyname="capped", quantity=10, stoploss={"type": "points", "value": 20})
    (trade_id,) = first.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"], what="armed")
    second = service.alert(accounts=["R1"], strategyname="capped", quantity=10, price=801,
                           stoploss={"type": "points", "value": 20})
    assert second.status_code == 409 and "open trades" in second.json()["errors"][0]["reason"]
    assert second.json()["errors"][0]["field"] == "limits"
    service.price(794)  # open loss ₹60 on 10 shares: beyond the account's ₹50 a day, above the stop
    import time
    deadline = time.monotonic() + 10
    while True:
        other = service.alert(accounts=["R1"], strategyname="other", quantity=1, price=794,
                              stoploss={"type": "points", "value": 5},
                              id=f"probe-{time.monotonic()}")
        if other.status_code == 409:
            break
        assert other.status_code == 202 and time.monotonic() < deadline, other.text
        time.sleep(0.1)
    assert "daily loss limit" in other.json()["errors"][0]["reason"]
    assert service.trade(trade_id)["trade"]["state"] == "OPEN"  # a loss limit stops entries; it does not flatten
