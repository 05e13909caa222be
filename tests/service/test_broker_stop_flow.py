"""The broker-side backup stop, end to end: the real app and a paper exchange (BROKER_STOP=backup).

A SBIN trade entered at ₹800 with a ₹10 stop (₹790): its broker stop is a SELL STOPLOSS_LIMIT with its
trigger 0.2 % behind (₹788.40, 0.2 % of ₹790 = ₹1.58 → 32 ticks of 5 paise) and its limit 0.5 % of
the trigger beyond it (₹3.95 → ₹784.45).
"""
from __future__ import annotations

import httpx

from tests.service.test_equity_flow import broker_orders, open_trade
from tests.service.test_recovery import Broker
from tests.support.clocks import ShiftedClock, weekday_ahead

BACKUP = {"BROKER_STOP": "backup", "BROKER_STOP_MIN_S": "0"}
TRIGGER, LIMIT = 78_840, 78_445


def stops_of(service, trade_id: int) -> list[dict]:
    prefix = f"tg{trade_id}B"
    return [o for o in broker_orders(service) if o["ordertag"].startswith(prefix)]


def exits_of(service, trade_id: int) -> list[dict]:
    prefix = f"tg{trade_id}X"
    return [o for o in broker_orders(service) if o["ordertag"].startswith(prefix)]


def placed(service, trade_id: int) -> dict:
    view = service.wait_trade(trade_id, lambda t: (t.get("broker_stop") or {}).get("status") == "trigger pending",
                              what="broker stop placed")
    return view["trade"]["broker_stop"]


def paise(rupees) -> int:
    return round(float(rupees) * 100)


def test_entry_fill_places_the_broker_stop_behind_tickguards_stop(service_factory):
    service = service_factory(**BACKUP)
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    stop = placed(service, trade_id)
    assert (stop["trigger"], stop["limit"], stop["quantity"]) == (TRIGGER, LIMIT, 5)
    (order,) = stops_of(service, trade_id)
    assert (order["variety"], order["ordertype"], order["transactiontype"], order["quantity"]) == \
        ("STOPLOSS", "STOPLOSS_LIMIT", "SELL", "5")
    assert (paise(order["triggerprice"]), paise(order["price"]), order["status"]) == (TRIGGER, LIMIT, "trigger pending")


def test_own_stop_exit_cancels_the_broker_stop_first(service_factory):
    service = service_factory(**BACKUP)
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=5)
    placed(service, trade_id)
    service.price(789.5)  # through tickguard's ₹790, not the broker's ₹788.40
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="stop exit")
    assert view["trade"]["reason"] == "STOP" and view["trade"]["exited"] == 5
    (stop,) = stops_of(service, trade_id)
    assert stop["status"] == "cancelled" and stop["filledshares"] == "0"
    (exit_order,) = exits_of(service, trade_id)
    assert exit_order["status"] == "complete" and exit_order["quantity"] == "5"
    kinds = [e["kind"] for e in view["events"]]
    assert kinds.index("exit_fired") < kinds.index("exit_sent")


def test_a_manual_close_and_a_target_leave_no_broker_order_behind(service_factory):
    service = service_factory(**BACKUP)
    manual = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    placed(service, manual)
    with service.client() as client:
        assert client.post(f"/trades/{manual}/close").status_code in (200, 202)
    service.wait_trade(manual, lambda t: t["state"] == "CLOSED", what="manual close")
    assert [o["status"] for o in stops_of(service, manual)] == ["cancelled"]

    target = open_trade(service, stoploss={"type": "points", "value": 10}, target={"type": "points", "value": 5},
                        quantity=2)
    placed(service, target)
    service.price(806)
    view = service.wait_trade(target, lambda t: t["state"] == "CLOSED", what="target exit")
    assert view["trade"]["reason"] == "TARGET"
    assert [o["status"] for o in stops_of(service, target)] == ["cancelled"]


def test_a_trailed_stop_moves_the_broker_stop(service_factory):
    service = service_factory(**BACKUP)
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=3,
                          trail={"type": "points", "value": 4, "activation": {"type": "points", "value": 2}})
    placed(service, trade_id)
    service.price(806)  # the trail takes the stop to ₹802: the broker's trigger follows, 0.2 % behind
    view = service.wait_trade(trade_id, lambda t: (t.get("broker_stop") or {}).get("trigger") == 80_035,
                              what="broker stop trailed")
    assert view["trade"]["stop"] == 80_200 and view["trade"]["broker_stop"]["limit"] == 79_630
    (order,) = stops_of(service, trade_id)
    assert (paise(order["triggerprice"]), paise(order["price"])) == (80_035, 79_630)
    assert any(e["kind"] == "broker_stop_moved" for e in view["events"])


def test_a_gap_past_both_stops_is_exited_once(service_factory):
    """The price gaps from ₹800 to ₹780: tickguard's stop fires, the broker's triggers and rests (the
    price ran past its limit). tickguard cancels it and chases its own exit: one exit fills, not two."""
    service = service_factory(**BACKUP)
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=4)
    placed(service, trade_id)
    service.price(780)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="exit after the gap")
    sold = sum(int(o["filledshares"]) for o in stops_of(service, trade_id) + exits_of(service, trade_id))
    assert sold == 4 and view["trade"]["exited"] == 4


def test_broker_stop_off_by_default_in_paper_mode_says_why(service_factory):
    service = service_factory()
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=1)
    trade = service.trade(trade_id)["trade"]
    assert trade["broker_stop"] == {"why": "BROKER_STOP is off"} and stops_of(service, trade_id) == []


def rules(service, statuses=("NEW", "ACTIVE", "SENTTOEXCHANGE", "CANCELLED")) -> list[dict]:
    broker = Broker(service.paper)
    reply = httpx.post(f"{service.paper.url}/rest/secure/angelbroking/gtt/v1/ruleList", headers=broker.headers,
                       json={"status": list(statuses), "page": 1, "count": 50})
    return reply.json()["data"] or []


def test_a_carried_delivery_position_keeps_its_gtt_rule_across_days(service_factory, paper_factory):
    """DELIVERY: a GTT rule (it lives across days) instead of a day order. Held overnight, the same rule
    guards it the next day; it triggers while tickguard is down and its fill closes the trade."""
    paper = paper_factory()
    clock = ShiftedClock(10, 0, day=weekday_ahead())
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange", **BACKUP)
    trade_id = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2, product="DELIVERY",
                          strategyname="carry")
    view = service.wait_trade(trade_id, lambda t: (t.get("broker_stop") or {}).get("kind") == "GTT rule",
                              what="the GTT rule")
    assert (view["trade"]["broker_stop"]["trigger"], view["trade"]["broker_stop"]["limit"]) == (TRIGGER, LIMIT)
    (rule,) = rules(service)
    assert (rule["transactiontype"], rule["producttype"], int(rule["qty"]), paise(rule["triggerprice"])) == \
        ("SELL", "DELIVERY", 2, TRIGGER)
    service.stop()

    clock.jump_to(10, 0, days=1)  # the next session: the same rule still guards the position
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange", **BACKUP)
    view = service.wait_trade(trade_id, lambda t: (t.get("broker_stop") or {}).get("kind") == "GTT rule",
                              what="the rule found again")
    assert [r["id"] for r in rules(service)] == [rule["id"]] and stops_of(service, trade_id) == []
    service.stop()

    service.price(787)  # tickguard down: the rule triggers, its LIMIT sells at ₹787
    assert [r["status"] for r in rules(service)] == ["SENTTOEXCHANGE"]
    service = service_factory(paper=paper, clock=clock, MARKET_HOURS="exchange", **BACKUP)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="closed by the rule's fill")
    assert (view["trade"]["reason"], view["trade"]["exit_price"], view["trade"]["exited"]) == ("BROKER_STOP", 78_700, 2)
    assert exits_of(service, trade_id) == []  # nothing else sent


def only_cancelled_stops_and_one_exit(service, trade_id: int) -> None:
    assert [(o["status"], o["filledshares"]) for o in stops_of(service, trade_id)] == [("cancelled", "0")]
    assert sum(int(o["filledshares"]) for o in exits_of(service, trade_id)) == int(service.trade(trade_id)["trade"]["filled"])


def test_a_trail_exit_and_a_signal_close_each_cancel_the_broker_stop(service_factory):
    service = service_factory(**BACKUP)
    trailed = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=3, strategyname="trail",
                         trail={"type": "points", "value": 4, "activation": {"type": "points", "value": 2}})
    placed(service, trailed)
    service.price(806)  # the trail takes the stop to ₹802 …
    service.wait_trade(trailed, lambda t: t["stop"] == 80_200, what="trailed")
    service.price(801.5)  # … and the price falls through it
    view = service.wait_trade(trailed, lambda t: t["state"] == "CLOSED", what="trail exit")
    assert view["trade"]["reason"] == "TRAIL"
    only_cancelled_stops_and_one_exit(service, trailed)

    signalled = open_trade(service, price=801.5, stoploss={"type": "points", "value": 10}, quantity=2,
                           strategyname="sig")
    placed(service, signalled)
    assert service.alert(signal="exit", price=801.5, strategyname="sig").json()["closing"] == [signalled]
    view = service.wait_trade(signalled, lambda t: t["state"] == "CLOSED", what="signal close")
    assert view["trade"]["reason"] == "SIGNAL"
    only_cancelled_stops_and_one_exit(service, signalled)


def test_the_square_off_cancels_the_broker_stop(service_factory):
    clock = ShiftedClock(14, 59, 0)
    service = service_factory(clock=clock, MARKET_HOURS="exchange", **BACKUP)
    squared = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=2)
    placed(service, squared)
    clock.jump_to(15, 14, 59)
    view = service.wait_trade(squared, lambda t: t["state"] == "CLOSED", what="square-off")
    assert view["trade"]["reason"] == "SQUARE_OFF"
    only_cancelled_stops_and_one_exit(service, squared)


def unprotected_at_broker(service) -> float:
    with service.client() as client:
        text = client.get("/metrics").text
    (line,) = [line for line in text.splitlines() if line.startswith("tickguard_unprotected_at_broker ")]
    return float(line.split()[1])


def test_the_metric_counts_armed_trades_without_a_broker_stop(service_factory, tmp_path):
    strategies = tmp_path / "strategies.json"
    strategies.write_text('{"naked": {"broker_stop": false}}')
    service = service_factory(STRATEGIES_FILE=str(strategies), **BACKUP)
    covered = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=1, strategyname="covered")
    placed(service, covered)
    assert unprotected_at_broker(service) == 0
    naked = open_trade(service, stoploss={"type": "points", "value": 10}, quantity=1, strategyname="naked")
    assert service.trade(naked)["trade"]["broker_stop"] == {"why": "off for this strategy (its broker_stop setting)"}
    assert unprotected_at_broker(service) == 1
