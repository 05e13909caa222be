"""The entry queue: entries expire when queued too long, and a batch shares one margin read."""
from __future__ import annotations

import itertools
import json
import re

from tests.service.test_equity_flow import broker_orders


def test_an_entry_queued_past_its_time_to_live_expires_without_an_order(service_factory):
    service = service_factory(ENTRY_TTL_S="5")
    service.price(800)
    # Every reading of this clock is 10 s after the one before: the queue finds the entry late.
    service.app.state.runtime.trader.entries.clock = itertools.count(0, 10).__next__
    reply = service.alert(quantity=2, stoploss={"type": "points", "value": 5})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    view = service.wait_trade(trade_id, lambda t: t["state"] != "PENDING_ENTRY", what="the entry to expire")
    assert view["trade"]["state"] == "EXPIRED" and view["trade"]["quantity"] == 0
    waited = re.search(r"expired after waiting ([0-9.]+) s", view["trade"]["reason"])
    assert waited and float(waited.group(1)) >= 10
    assert [e["kind"] for e in view["events"]] == ["created", "expired"]
    assert view["orders"] == [] and not [o for o in broker_orders(service) if o["ordertag"].startswith(f"tg{trade_id}")]


def test_entries_sized_on_one_margin_read_share_it(service_factory, tmp_path):
    # The paper login has ₹10,00,000. Each account's fund is ₹6,00,000: the first entry takes 750
    # shares at ₹800, the second only what is left (₹4,00,000: 500 shares), not the same ₹6,00,000.
    accounts = {"accountslist": [
        {"accountId": "A1", "pseudoAccountName": "Asha", "fund": 600000, "stoplosstype": "number", "stoploss": 500},
        {"accountId": "B2", "pseudoAccountName": "Bala", "fund": 600000, "stoplosstype": "number", "stoploss": 500},
    ]}
    accounts_file = tmp_path / "accounts.json"
    accounts_file.write_text(json.dumps(accounts))
    service = service_factory(DEMO_ACCOUNTS_FILE=str(accounts_file))
    service.price(800)
    reply = service.alert(accounts=["A1", "B2"])
    assert reply.status_code == 202, reply.text
    first, second = (service.wait_trade(t, lambda t: t["quantity"] or t["state"] != "PENDING_ENTRY", what="sizing")["trade"]
                     for t in reply.json()["trades"])
    assert (first["account"], first["quantity"]) == ("A1", 750)
    assert (second["account"], second["quantity"]) == ("B2", 500)
