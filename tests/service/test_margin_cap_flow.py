"""An alert's own quantity or lots above what the margin allows is capped, not refused (trading-semantics
§3): the largest whole quantity (whole lots) the margin allows is sent, the `sized` event records the
asked and the capped figures, and only an alert for which not one unit or lot fits is refused. Through
the real app and a paper exchange whose login has little cash."""
from __future__ import annotations

from tests.service.test_equity_flow import broker_orders
from tests.service.test_option_flow import nifty, option_alert


def sized_event(view: dict) -> dict:
    return next(e for e in view["events"] if e["kind"] == "sized")["data"]


def entry_orders(service, trade_id: int) -> list[dict]:
    return [o for o in broker_orders(service) if o["ordertag"].startswith(f"tg{trade_id}E")]


def test_an_equity_quantity_above_the_margin_sends_what_the_margin_allows(service_factory, paper_factory):
    service = service_factory(paper=paper_factory(opening_cash_paise=1_000_000))  # ₹10,000 at the broker
    service.price(800)
    reply = service.alert(quantity=20, stoploss={"type": "points", "value": 10})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    view = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="armed")
    assert view["trade"]["quantity"] == view["trade"]["filled"] == 12  # ₹10,000 ÷ ₹800
    assert sized_event(view) == {"quantity": 12, "asked": 20,
                                 "reason": "capped by margin: 10000.00 allows 12 of the 20 shares asked",
                                 "sized_for": {"budget": "1000000", "price": 80000}}  # q* = ₹10,000 ÷ ₹800
    (order,) = entry_orders(service, trade_id)
    assert order["quantity"] == "12" and order["status"] == "complete"


def test_a_quantity_within_the_margin_is_sent_as_asked(service_factory, paper_factory):
    service = service_factory(paper=paper_factory(opening_cash_paise=1_000_000))
    service.price(800)
    (trade_id,) = service.alert(quantity=12).json()["trades"]
    view = service.wait_trade(trade_id, lambda t: t["filled"] == 12, what="the entry filled")
    assert sized_event(view) == {"quantity": 12, "sized_for": {"budget": "1000000", "price": 80000}}


def test_not_one_share_within_the_margin_is_refused(service_factory, paper_factory):
    service = service_factory(paper=paper_factory(opening_cash_paise=50_000))  # ₹500
    service.price(800)
    (trade_id,) = service.alert(quantity=5).json()["trades"]
    trade = service.wait_trade(trade_id, lambda t: t["state"] != "PENDING_ENTRY", what="the refusal")["trade"]
    assert trade["state"] == "REJECTED" and trade["reason"] == "the margin 500.00 allows not one share of the 5 asked"
    assert entry_orders(service, trade_id) == []


def test_option_lots_above_the_margin_send_the_whole_lots_it_allows(service_factory, paper_factory):
    service = service_factory(paper=paper_factory(opening_cash_paise=5_000_000))  # ₹50,000
    nifty(service, 24000)
    (trade_id,) = option_alert(service, lots=40, stoploss={"type": "points", "value": 20})["trades"]
    view = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="armed")
    trade = view["trade"]
    lot, premium = trade["spec"]["lot_size"], trade["entry_price"]
    allowed = 5_000_000 // (premium * lot)
    assert 1 <= allowed < 40 and trade["quantity"] == trade["filled"] == allowed * lot
    event = sized_event(view)
    assert (event["quantity"], event["asked"]) == (allowed * lot, 40 * lot)
    assert event["reason"] == f"capped by margin: 50000.00 allows {allowed} of the 40 lots asked"
    assert sum(int(o["quantity"]) for o in entry_orders(service, trade_id)) == allowed * lot
