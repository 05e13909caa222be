"""Option alerts end to end: contract choice from the underlying's price, lots, stops on either basis."""
from __future__ import annotations

import json

import pytest

from tests.support.service import BACKENDS, on_backend


@pytest.fixture(params=BACKENDS)
def service_factory(request, service_factory):
    """Every test here runs on SQLite and on PostgreSQL."""
    yield from on_backend(request.param, service_factory)


def nifty(service, ltp: float) -> None:
    service.price(ltp, token="99926000")


def premium(service, trade: dict, ltp: float) -> None:
    service.price(round(round(ltp / 0.05) * 0.05, 2), token=trade["token"], exchange=trade["exchange"])


def option_alert(service, **extra):
    body = {"symbolname": "NIFTY", "signal": "buy", "price": 24000, "type": "option", "strategyname": "opt", "lots": 2}
    body.update(extra)
    reply = service.alert(**body)
    assert reply.status_code == 202, reply.text
    return reply.json()


def wait_open(service, trade_id: int) -> dict:
    return service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="option armed")["trade"]


def test_buy_on_nifty_takes_the_atm_call_in_whole_lots_and_stops_on_the_premium(service_factory):
    service = service_factory()
    nifty(service, 24010)
    (trade_id,) = option_alert(service, stoploss={"type": "points", "value": 20})["trades"]
    trade = wait_open(service, trade_id)
    assert trade["tradingsymbol"].startswith("NIFTY") and trade["tradingsymbol"].endswith("24000CE")
    assert trade["exchange"] == "NFO" and trade["quantity"] == 2 * trade["spec"]["lot_size"] == trade["filled"]
    assert trade["stop"] == trade["entry_price"] - 2000
    premium(service, trade, trade["entry_price"] / 100 - 25)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="premium stop")
    assert next(e for e in view["events"] if e["kind"] == "exit_fired")["data"]["reason"] == "STOP"
    assert view["trade"]["realised_pnl"] < 0


def test_a_stop_on_the_underlying_exits_the_option(service_factory):
    service = service_factory()
    nifty(service, 24000)
    (trade_id,) = option_alert(service, stoploss={"type": "points", "value": 50}, stop_basis="underlying")["trades"]
    trade = wait_open(service, trade_id)
    assert trade["stop"] == 2_395_000  # on NIFTY itself, in paise
    nifty(service, 23940)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="underlying stop")
    fired = next(e for e in view["events"] if e["kind"] == "exit_fired")
    assert fired["data"]["level"] == 2_395_000 and fired["data"]["tick_ltp"] == 2_394_000
    exits = [o for o in view["orders"] if o["role"] == "exit"]
    assert exits[0]["side"] == "SELL" and exits[0]["quantity"] == trade["filled"]


def test_a_reversing_sell_closes_the_call_and_buys_the_put(service_factory, tmp_path):
    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({"opt": {"policy": "reverse", "stoploss": {"type": "points", "value": 30}}}))
    service = service_factory(STRATEGIES_FILE=str(strategies))
    nifty(service, 24000)
    (call_id,) = option_alert(service)["trades"]
    wait_open(service, call_id)
    reply = option_alert(service, signal="sell", price=23990)
    assert reply["closing"] == [call_id]
    (put_id,) = reply["trades"]
    put = wait_open(service, put_id)
    assert put["tradingsymbol"].endswith("PE") and put["side"] == "LONG"
    service.wait_trade(call_id, lambda t: t["state"] == "CLOSED", what="the call closed")


def test_close_only_sell_closes_the_call_and_buys_nothing(service_factory):
    service = service_factory()
    nifty(service, 24000)
    (call_id,) = option_alert(service, stoploss={"type": "points", "value": 30})["trades"]
    wait_open(service, call_id)
    reply = option_alert(service, signal="sell", price=23990)
    assert reply["closing"] == [call_id] and reply["trades"] == []
    service.wait_trade(call_id, lambda t: t["state"] == "CLOSED", what="the call closed")


def test_option_quantity_must_be_whole_lots(service_factory):
    service = service_factory()
    nifty(service, 24000)
    reply = service.alert(symbolname="NIFTY", signal="buy", price=24000, type="option", strategyname="opt", quantity=10)
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "quantity"


def test_orders_above_the_freeze_quantity_go_out_in_slices(service_factory):
    service = service_factory()
    nifty(service, 24000)
    (trade_id,) = option_alert(service, lots=30, stoploss={"type": "points", "value": 20})["trades"]
    trade = wait_open(service, trade_id)
    freeze, lot = trade["spec"]["freeze_qty"], trade["spec"]["lot_size"]
    assert 30 * lot > freeze
    service.wait_trade(trade_id, lambda t: t["filled"] == 30 * lot, what="every entry slice filled")
    premium(service, trade, trade["entry_price"] / 100 - 25)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="sliced exit")
    entries = [o["quantity"] for o in view["orders"] if o["role"] == "entry"]
    exits = [o["quantity"] for o in view["orders"] if o["role"] == "exit"]
    assert sum(entries) == sum(exits) == 30 * lot
    assert max(entries) <= freeze and max(exits) <= freeze and len(entries) == len(exits) == 2
