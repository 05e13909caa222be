"""Alert to exit, end to end, for equities: the real app and a paper exchange, over HTTP and WebSocket."""
from __future__ import annotations

import httpx
import pytest

from tests.support.clocks import ShiftedClock
from tests.support.paper import DEMO
from tests.support.service import BACKENDS, on_backend

ROOT = "/rest/secure/angelbroking"


@pytest.fixture(params=BACKENDS)
def service_factory(request, service_factory):
    """Every test here runs on SQLite and on PostgreSQL."""
    yield from on_backend(request.param, service_factory)


def open_trade(service, price: float = 800, **alert) -> int:
    service.price(price)
    reply = service.alert(price=price, **alert)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None or t["state"] == "OPEN"
                       and t["spec"]["rules"]["stop"] is None and t["version"] >= 4, what="entry fill and arming")
    return trade_id


def broker_orders(service) -> list[dict]:
    paper = service.paper
    headers = {"X-PrivateKey": DEMO.api_key}
    body = {"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": paper.totp()}
    jwt = httpx.post(f"{paper.url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body, headers=headers).json()["data"]["jwtToken"]
    reply = httpx.get(f"{paper.url}{ROOT}/order/v1/getOrderBook", headers={**headers, "Authorization": f"Bearer {jwt}"})
    return reply.json()["data"] or []


def test_long_trade_stopped_out(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    trade = service.trade(trade_id)["trade"]
    assert (trade["entry_price"], trade["stop"], trade["filled"]) == (80000, 79000, 5)
    service.price(789)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="stop exit")
    trade = view["trade"]
    assert trade["exited"] == 5 and trade["realised_pnl"] == (trade["exit_price"] - 80000) * 5
    exits = [o for o in broker_orders(service) if o["ordertag"] == f"tg{trade_id}X1"]
    assert len(exits) == 1 and exits[0]["transactiontype"] == "SELL" and exits[0]["quantity"] == "5"
    assert exits[0]["status"] == "complete"
    kinds = [e["kind"] for e in view["events"]]
    assert kinds.index("exit_fired") < kinds.index("exit_sent") < kinds.index("closed")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "STOP" and fired["data"]["level"] == 79000


def test_short_trade_stopped_out(service_factory):
    service = service_factory()
    trade_id = open_trade(service, signal="short", stoploss={"type": "points", "value": 10}, quantity=3)
    assert service.trade(trade_id)["trade"]["stop"] == 81000
    service.price(811)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="short stop exit")
    assert view["trade"]["side"] == "SHORT" and view["trade"]["realised_pnl"] < 0
    exit_order = next(o for o in broker_orders(service) if o["ordertag"] == f"tg{trade_id}X1")
    assert exit_order["transactiontype"] == "BUY"


def test_target_takes_profit(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, target={"type": "points", "value": 5}, quantity=2)
    service.price(805)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="target exit")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "TARGET" and view["trade"]["realised_pnl"] > 0


def test_trailing_stop_ratchets_then_fires(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2,
                         trail={"type": "points", "value": 4, "activation": {"type": "points", "value": 2}})
    service.price(806)
    service.wait_trade(trade_id, lambda t: t["stop"] == 80200, what="trail to 802")
    service.price(810)
    service.wait_trade(trade_id, lambda t: t["stop"] == 80600, what="trail to 806")
    service.price(808)  # a pull-back above the stop does nothing
    service.price(805.5)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="trailed stop exit")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "TRAIL" and fired["data"]["level"] == 80600
    assert view["trade"]["realised_pnl"] > 0


def test_a_gap_through_the_stop_fires_at_once(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    service.price(750)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="gap exit")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["level"] == 79000 and fired["data"]["tick_ltp"] == 75000


def test_manual_close(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    with service.client() as client:
        assert client.post(f"/trades/{trade_id}/close").status_code == 202
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="manual exit")
    assert next(e for e in view["events"] if e["kind"] == "exit_fired")["data"]["reason"] == "MANUAL"


def _exits_by_reason(service) -> dict[str, float]:
    with service.client() as client:
        text = client.get("/metrics").text
    return {line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("tickguard_exits_total{")}


def _closed_by_signal(service, trade_id: int, what: str) -> None:
    """An alert's close is recorded as SIGNAL — in the exit event, the trade and the exit counter."""
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what=what)
    assert next(e for e in view["events"] if e["kind"] == "exit_fired")["data"]["reason"] == "SIGNAL"
    assert view["trade"]["reason"] == "SIGNAL"
    counts = _exits_by_reason(service)
    assert counts["SIGNAL"] == 1 and counts["MANUAL"] == 0


def test_exit_signal_closes_the_strategys_position(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    reply = service.alert(signal="exit")
    assert reply.status_code == 202 and reply.json()["closing"] == [trade_id]
    _closed_by_signal(service, trade_id, "exit by signal")


def test_sell_under_close_only_closes_with_reason_signal(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    reply = service.alert(signal="sell")
    assert reply.status_code == 202 and reply.json()["closing"] == [trade_id]
    _closed_by_signal(service, trade_id, "sell closing the long")


def test_position_size_zero_flattens(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    reply = service.alert(position_size=0, id="flat-1")
    assert reply.status_code == 202 and reply.json()["closing"] == [trade_id]
    _closed_by_signal(service, trade_id, "flattened by position_size")


def test_an_exit_left_open_is_chased_until_filled(service_factory):
    service = service_factory(EXIT_CHASE_MS="400")
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    service.paper.control("POST", "/faults", json={"kind": "open", "count": 1})
    service.price(789)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="chased exit")
    kinds = [e["kind"] for e in view["events"]]
    assert "exit_chased" in kinds
    assert [o["tag"] for o in view["orders"] if o["role"] == "exit"] == [f"tg{trade_id}X1"]
    sent, chased = (next(e["at_ms"] for e in view["events"] if e["kind"] == kind) for kind in ("exit_sent", "exit_chased"))
    assert chased - sent >= 390  # EXIT_CHASE_MS after it went out, not at the news that it rests open


def test_an_exit_rejected_twice_then_accepted_closes_with_its_retries(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    service.paper.control("POST", "/faults", json={"kind": "reject", "count": 2, "text": "RMS: exit blocked"})
    service.price(789)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="exit after retries")
    exits = [o for o in view["orders"] if o["role"] == "exit"]
    assert [o["status"] for o in exits] == ["rejected", "rejected", "complete"]
    assert [e["data"]["attempt"] for e in view["events"] if e["kind"] == "exit_retry"] == [1, 2]


def test_an_always_rejected_exit_leaves_the_trade_unprotected_and_visible(service_factory):
    service = service_factory(EXIT_ATTEMPTS="2")
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    service.paper.control("POST", "/faults", json={"kind": "reject", "count": 5})
    service.price(789)
    service.wait_trade(trade_id, lambda t: t["state"] == "UNPROTECTED", what="unprotected")
    with service.client() as client:
        listed = client.get("/trades", params={"state": "UNPROTECTED"}).json()["trades"]
        metrics = client.get("/metrics").text
    assert [t["id"] for t in listed] == [trade_id]
    assert "tickguard_unprotected_trades 1.0" in metrics


def test_a_position_closed_outside_tickguard_is_never_sold_again(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=4)
    paper = service.paper
    headers = {"X-PrivateKey": DEMO.api_key}
    body = {"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": paper.totp()}
    jwt = httpx.post(f"{paper.url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body, headers=headers).json()["data"]["jwtToken"]
    sold = httpx.post(f"{paper.url}{ROOT}/order/v1/placeOrder", headers={**headers, "Authorization": f"Bearer {jwt}"}, json={
        "variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE", "transactiontype": "SELL",
        "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY", "price": "0", "quantity": "4"}).json()
    assert sold["status"] is True
    service.price(789)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="close without selling")
    assert not [o for o in view["orders"] if o["role"] == "exit"]
    positions = httpx.get(f"{paper.url}{ROOT}/order/v1/getPosition", headers={**headers, "Authorization": f"Bearer {jwt}"}).json()
    assert [p["netqty"] for p in positions["data"]] == ["0"]


def test_duplicates_make_one_trade(service_factory):
    service = service_factory()
    service.price(800)
    first = service.alert(stoploss={"type": "points", "value": 10}, quantity=1)
    again = service.alert(stoploss={"type": "points", "value": 10}, quantity=1)
    by_id = service.alert(id="abc", quantity=1, stoploss={"type": "points", "value": 10})
    by_id_again = service.alert(id="abc", quantity=1, price=801, stoploss={"type": "points", "value": 10})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"alert_id": first.json()["alert_id"], "trades": first.json()["trades"], "duplicate": True}
    assert by_id.status_code == 202 and by_id_again.status_code == 200 and by_id_again.json()["duplicate"] is True
    with service.client() as client:
        assert len(client.get("/trades").json()["trades"]) == 2


def test_malformed_bodies_are_refused_and_nothing_is_stored(service_factory):
    service = service_factory()
    bodies = [b"", b"{", b"[]", b"null", b'"text"', b"{" * 5000] + [
        httpx.Request("POST", "/", json={"symbolname": "SBIN", "signal": s, "price": p, "type": t, "strategyname": "x"}).content
        for s in ("buy", "hold", None) for p in (0, -1, "abc") for t in ("equity", "bond")
    ]
    bodies += [b'{"symbolname": "NOSUCHSYMBOL", "signal": "buy", "price": 10, "type": "equity", "strategyname": "x"}',
               b'{"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "x", "extra": 1}']
    bodies = (bodies * 3)[:50]
    with service.client() as client:
        for body in bodies:
            reply = client.post("/opentrade", content=body, headers={"content-type": "application/json"})
            assert reply.status_code in (413, 422), (body[:60], reply.status_code, reply.text)
            assert reply.json()["errors"][0]["field"]
        assert client.get("/trades").json()["trades"] == []
    assert service.trade_count_in_store() == (0, 0)


def test_no_secret_no_service(service_factory):
    service = service_factory()
    body = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "s1"}
    assert httpx.post(f"{service.url}/opentrade", json=body).status_code == 401
    assert httpx.post(f"{service.url}/opentrade", json={**body, "token": "wrong"}).status_code == 401
    for path in ("/trades", "/trades/1", "/metrics", "/halt", "/openapi.json"):
        assert httpx.get(f"{service.url}{path}").status_code == 401, path
    assert httpx.get(f"{service.url}/healthz").status_code == 200
    ok = httpx.post(f"{service.url}/opentrade", params={"token": "paper-webhook-secret"}, json={**body, "quantity": 1, "stoploss": {"type": "points", "value": 5}})
    assert ok.status_code == 202
    assert service.trade_count_in_store() == (1, 1)


def test_metrics_count_alerts_orders_and_exits(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    service.price(789)
    service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="stop exit")
    with service.client() as client:
        text = client.get("/metrics").text
    assert 'tickguard_alerts_total{outcome="accepted"} 1.0' in text
    assert 'tickguard_orders_total{outcome="sent",role="entry"} 1.0' in text
    assert 'tickguard_orders_total{outcome="sent",role="exit"} 1.0' in text
    assert 'tickguard_exits_total{reason="STOP"} 1.0' in text
    assert "tickguard_tick_to_exit_seconds_count 1.0" in text


def test_halt_refuses_entries_and_flatten_closes(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    with service.client() as client:
        reply = client.post("/halt", json={"halted": True, "flatten": True})
        assert reply.json() == {"halted": True, "closing": [trade_id]}
        refused = service.alert(signal="buy", quantity=1, stoploss={"type": "points", "value": 10}, strategyname="s2")
        assert refused.status_code == 409 and "halted" in refused.json()["errors"][0]["reason"]
        service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="flatten")
        view = client.get("/halt").json()
        assert view["halted"] is True and view["global"]["reason"] == "halted by the operator"
        client.post("/halt", json={"halted": False})
    accepted = service.alert(signal="buy", quantity=1, stoploss={"type": "points", "value": 10}, strategyname="s2")
    assert accepted.status_code == 202
    assert service.trade_count_in_store() == (3, 2)  # the refused alert is stored, without a trade


def test_intraday_trades_are_squared_off_at_1515(service_factory):
    clock = ShiftedClock(14, 59, 30)
    service = service_factory(clock=clock, MARKET_HOURS="exchange")
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    clock.jump_to(15, 14, 59)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="square-off")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["reason"] == "SQUARE_OFF"
    late = service.alert(quantity=1, stoploss={"type": "points", "value": 10}, strategyname="late")
    assert late.status_code == 409 and "entry window" in late.json()["errors"][0]["reason"]


def test_an_exit_near_the_lower_circuit_is_priced_inside_the_band(service_factory):
    service = service_factory()
    band_low = service.paper.exchange.prices.quote("NSE", "3045").lower_circuit  # paise
    entry = (band_low + 1500) / 100  # ₹15 above the band
    trade_id = open_trade(service, price=entry, stoploss={"type": "points", "value": 10}, quantity=2)
    service.price((band_low + 100) / 100)  # through the stop, ₹1 above the band: LTP − 0.5 % is below it
    view = service.wait_trade(trade_id, lambda t: t["state"] in ("CLOSED", "UNPROTECTED"), what="the exit")
    assert view["trade"]["state"] == "CLOSED", [o["text"] for o in view["orders"]]
    (exit_order,) = [o for o in view["orders"] if o["role"] == "exit"]
    assert exit_order["price"] >= band_low
