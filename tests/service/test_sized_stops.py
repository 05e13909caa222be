"""Stops in rupees at risk or percent of the fund when the alert fixes the quantity (trading-semantics §4,
amended 2026-12-04): a rule from the account or the strategy divides by q*, the quantity tickguard would
have sized before rounding, so the stop sits at the same fraction of the entry as a fund-sized trade's;
a rule written in the alert keeps its literal meaning (÷ the alert's quantity). Hand-computed cases."""
from __future__ import annotations

import json
import math
from fractions import Fraction

from tests.service.test_option_flow import nifty, option_alert

ACCOUNTS = {"accountslist": [
    # ₹1 000 at risk per trade on a ₹1 00 000 fund
    {"accountId": "A1", "pseudoAccountName": "Asha", "fund": 100000, "stoplosstype": "number", "stoploss": 1000},
    # 2 % of a ₹40 000 fund at risk: ₹800
    {"accountId": "B2", "pseudoAccountName": "Bala", "fund": 40000, "stoplosstype": "percentage", "stoploss": 2},
]}
TICK = 5


def long_stop(entry: int, distance: Fraction) -> int:
    """§4: entry − distance, rounded to the tick towards the entry, at least one tick away."""
    return min(math.ceil((entry - distance) / TICK) * TICK, (entry - TICK) // TICK * TICK)


def start(service_factory, tmp_path, **strategies):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(ACCOUNTS))
    env = {"DEMO_ACCOUNTS_FILE": str(accounts)}
    if strategies:
        path = tmp_path / "strategies.json"
        path.write_text(json.dumps(strategies))
        env["STRATEGIES_FILE"] = str(path)
    return service_factory(**env)


def armed(service, reply) -> dict:
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    return service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="armed")["trade"]


def test_an_account_rupee_stop_with_quantity_one_sits_where_a_fund_sized_trade_would(service_factory, tmp_path):
    service = start(service_factory, tmp_path)
    service.price(764)
    # q* = 1 00 000 / 764 shares; ₹1 000 over q* = ₹7.64 (1 % of the price), not ₹1 000 (beyond the entry)
    trade = armed(service, service.alert(price=764, quantity=1, accounts=["A1"]))
    assert trade["quantity"] == 1
    assert trade["stop"] == long_stop(trade["entry_price"], Fraction(764))
    service.price(1475)
    # 68 % below the entry before: now ₹1 000 × 1 475 / 1 00 000 = ₹14.75
    trade = armed(service, service.alert(price=1475, quantity=1, accounts=["A1"], id="second"))
    assert trade["stop"] == long_stop(trade["entry_price"], Fraction(1475))


def test_an_account_fund_pct_stop_with_a_fixed_quantity_matches_the_fund_sized_stop(service_factory, tmp_path):
    service = start(service_factory, tmp_path)
    service.price(800)
    # ₹800 at risk; q* = 40 000 / 800 = 50 shares → ₹16, whatever the alert's 3 shares
    trade = armed(service, service.alert(quantity=3, accounts=["B2"]))
    assert trade["quantity"] == 3 and trade["stop"] == long_stop(trade["entry_price"], Fraction(1600))


def test_a_strategy_rupee_stop_with_position_size_divides_by_q_star(service_factory, tmp_path):
    service = start(service_factory, tmp_path, s1={"stoploss": {"type": "rupees", "value": 500}})
    service.price(800)
    # q* = 1 00 000 / 800 = 125 → ₹4, though position_size asks for 10 shares
    trade = armed(service, service.alert(position_size=10, accounts=["A1"]))
    assert trade["quantity"] == 10 and trade["stop"] == long_stop(trade["entry_price"], Fraction(400))


def test_a_rupee_stop_written_in_the_alert_divides_by_the_alerts_quantity(service_factory, tmp_path):
    service = start(service_factory, tmp_path)
    service.price(800)
    trade = armed(service, service.alert(quantity=10, accounts=["A1"], stoploss={"type": "rupees", "value": 500}))
    assert trade["stop"] == long_stop(trade["entry_price"], Fraction(5000))  # ₹500 / 10 = ₹50


def test_an_option_account_stop_with_fixed_lots_divides_by_the_premium_sized_q_star(service_factory, tmp_path):
    service = start(service_factory, tmp_path)
    nifty(service, 24000)
    (trade_id,) = option_alert(service, accounts=["B2"], lots=1)["trades"]
    trade = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="armed")["trade"]
    premium = trade["spec"]["sized_for"]["price"]  # the premium the trade was sized at
    assert Fraction(trade["spec"]["sized_for"]["budget"]) == 4_000_000  # the fund (below the margin)
    # ₹800 at risk over q* = 40 000 / premium units = premium / 50: 2 % of the premium
    assert trade["stop"] == long_stop(trade["entry_price"], Fraction(80_000 * premium, 4_000_000))
    assert trade["stop"] != long_stop(trade["entry_price"], Fraction(80_000, trade["quantity"]))


def test_an_option_rupee_stop_written_in_the_alert_divides_by_its_units(service_factory, tmp_path):
    service = start(service_factory, tmp_path)
    nifty(service, 24000)
    body = option_alert(service, accounts=["A1"], lots=1, stoploss={"type": "rupees", "value": 300})
    trade = service.wait_trade(body["trades"][0], lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                               what="armed")["trade"]
    assert trade["stop"] == long_stop(trade["entry_price"], Fraction(30_000, trade["quantity"]))
