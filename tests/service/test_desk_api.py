"""The desk's routes on the real app against the paper exchange: trade rows with prices, open P&L and
rupees; paging; the day's CSV; stored alerts; the summary (HTTP and feed); a trade's price line."""
from __future__ import annotations

import csv
import io
import json
import time

import pytest

from service.store import ist_date
from service.web.csv_export import CSV_COLUMNS
from service.web.views import rupees
from tests.service.test_feed import open_feed
from tests.support.service import SECRET
from tests.support.waiting import wait_for

STOP_10 = {"type": "points", "value": 10}


def signed_in(service):
    """An HTTP client the desk's reads accept (one place to change when operators log in)."""
    return service.client()


def get(service, path: str, **params):
    with signed_in(service) as client:
        reply = client.get(path, params=params)
    assert reply.status_code == 200, f"{path} {params}: {reply.status_code} {reply.text}"
    return reply


def open_trade(service, quantity: int = 2, **alert) -> int:
    reply = service.alert(quantity=quantity, stoploss=STOP_10, **alert)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="entry and arming")
    return trade_id


def closed_by_stop(service, trade_id: int) -> dict:
    service.price(789)
    return service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="stop exit")["trade"]


@pytest.fixture
def service(service_factory):
    service = service_factory()
    service.price(800)
    return service


def test_a_trade_row_carries_its_ltp_open_pnl_exit_reason_and_rupees(service):
    trade_id = open_trade(service)
    service.price(806.45)
    view = service.wait_trade(trade_id, lambda t: t["ltp"] == 80645, what="the new price")["trade"]
    entry = view["entry_price"]
    assert view["open_pnl"] == 2 * (80645 - entry) and view["exit_reason"] is None
    assert view["ltp_rupees"] == "806.45" and view["open_pnl_rupees"] == rupees(view["open_pnl"])
    assert view["entry_price_rupees"] == rupees(entry) and view["stop_rupees"] == rupees(view["stop"])
    assert view["target_rupees"] is None and view["realised_pnl_rupees"] is None and view["exit_price_rupees"] is None
    listed = get(service, "/trades").json()["trades"]
    assert [t["id"] for t in listed] == [trade_id] and listed[0]["ltp"] == 80645

    closed = closed_by_stop(service, trade_id)
    assert closed["exit_reason"] == "STOP" and closed["open_pnl"] is None
    assert closed["realised_pnl"] == closed["exited"] * closed["exit_price"] - closed["filled"] * entry < 0
    assert closed["realised_pnl_rupees"] == rupees(closed["realised_pnl"]) and closed["realised_pnl_rupees"][0] == "-"
    assert closed["exit_price_rupees"] == rupees(closed["exit_price"])


def test_trades_page_newest_first_without_gaps_and_filter_by_state_strategy_and_day(service):
    ids = [open_trade(service, quantity=1, strategyname=f"s{i % 2}", id=f"page-{i}") for i in range(5)]
    seen, before = [], None
    while True:
        params = {"limit": 2} | ({"before": before} if before is not None else {})
        body = get(service, "/trades", **params).json()
        seen += [t["id"] for t in body["trades"]]
        before = body["next"]
        if before is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert [t["id"] for t in get(service, "/trades", strategy="s1").json()["trades"]] == [ids[3], ids[1]]
    today = ist_date(int(time.time() * 1000))
    assert len(get(service, "/trades", day=today).json()["trades"]) == 5
    assert get(service, "/trades", day="2001-01-01").json() == {"trades": [], "next": None}
    assert get(service, "/trades", state="CLOSED").json()["trades"] == []
    with signed_in(service) as client:
        for params, field in (({"day": "2026-13-01"}, "day"), ({"before": "x"}, "before"), ({"limit": "0"}, "limit")):
            reply = client.get("/trades", params=params)
            assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == field, reply.text


def test_the_days_csv_has_a_row_per_trade_closed_and_open(service):
    closed_id = open_trade(service)
    closed = closed_by_stop(service, closed_id)
    service.price(800)
    open_id = open_trade(service, quantity=3, strategyname="s2")
    reply = get(service, "/trades.csv")
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {int(r[0]): dict(zip(CSV_COLUMNS, r)) for r in rows[1:]}
    assert sorted(by_id) == [closed_id, open_id] and len(rows) == 3
    first, second = by_id[closed_id], by_id[open_id]
    assert (first["symbol"], first["side"], first["quantity"], first["state"]) == ("SBIN-EQ", "LONG", "2", "CLOSED")
    assert first["exit_reason"] == "STOP" and first["realised_pnl"] == rupees(closed["realised_pnl"])
    assert first["entry"] == rupees(closed["entry_price"]) and first["exit"] == rupees(closed["exit_price"])
    assert first["created"].startswith(ist_date(closed["created_ms"]))
    assert (second["strategy"], second["quantity"], second["state"], second["exit"], second["realised_pnl"]) == \
        ("s2", "3", "OPEN", "", "")
    other_day = list(csv.reader(io.StringIO(get(service, "/trades.csv", day="2001-01-01").text)))
    assert other_day == [list(CSV_COLUMNS)]


def test_alerts_show_accepted_duplicate_and_refused_with_reasons_and_secrets_masked(service):
    alert_id = f"desk-{SECRET}-1"
    first = service.alert(quantity=1, stoploss=STOP_10, id=alert_id)
    again = service.alert(quantity=1, stoploss=STOP_10, id=alert_id)
    assert (first.status_code, again.status_code) == (202, 200)
    with signed_in(service) as client:
        client.post("/halt", json={"halted": True, "reason": "lunch"})
        refused = service.alert(quantity=1, stoploss=STOP_10, strategyname="s9")
        client.post("/halt", json={"halted": False})
    assert refused.status_code == 409
    alerts = get(service, "/alerts").json()
    assert [a["status"] for a in alerts["alerts"]] == ["refused", "duplicate", "accepted"] and alerts["next"] is None
    refused_row, duplicate_row, accepted_row = alerts["alerts"]
    assert refused_row["reason"] == "new entries are halted (operator): lunch" and refused_row["trade_ids"] == []
    assert accepted_row["trade_ids"] == first.json()["trades"] == duplicate_row["trade_ids"]
    assert duplicate_row["reason"] == f"duplicate of alert {accepted_row['id']}"
    assert accepted_row["body"]["id"] == "desk-***-1" and SECRET not in json.dumps(alerts)
    assert accepted_row["source"] == "opentrade" and accepted_row["received_ms"] > 0
    only = get(service, "/alerts", status="duplicate").json()["alerts"]
    assert [a["id"] for a in only] == [duplicate_row["id"]]
    assert get(service, "/alerts", source="chartink").json()["alerts"] == []
    page = get(service, "/alerts", limit=2).json()
    assert page["next"] == duplicate_row["id"]
    assert [a["id"] for a in get(service, "/alerts", before=page["next"]).json()["alerts"]] == [accepted_row["id"]]
    with signed_in(service) as client:
        reply = client.get("/alerts", params={"status": "lost"})
        assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "status"


def test_the_summary_adds_up_the_trades_made(service):
    closed = closed_by_stop(service, open_trade(service))
    service.price(800)
    open_id = open_trade(service, quantity=3, strategyname="s2")
    entry = service.trade(open_id)["trade"]["entry_price"]
    service.price(812.35)
    wait_for(lambda: get(service, "/trades/" + str(open_id)).json()["trade"]["ltp"] == 81235, "the price")
    summary = get(service, "/desk/summary").json()
    assert summary["day"] == ist_date(int(time.time() * 1000))
    assert summary["realised_pnl"] == closed["realised_pnl"] and summary["realised_pnl_rupees"] == rupees(closed["realised_pnl"])
    assert summary["open_pnl"] == 3 * (81235 - entry) and summary["open_pnl_rupees"] == rupees(3 * (81235 - entry))
    closed_view = get(service, f"/trades/{closed['id']}").json()["trade"]
    open_view = get(service, f"/trades/{open_id}").json()["trade"]
    day_charges = closed_view["charges"]["total"] + open_view["charges"]["total"]
    assert closed_view["net_pnl"] == closed["realised_pnl"] - closed_view["charges"]["total"]
    assert open_view["gross_pnl"] == 3 * (81235 - entry) and open_view["charges"]["total"] > 0
    assert summary["charges"] == day_charges and summary["uncharged"] == 0
    assert summary["net_pnl"] == closed["realised_pnl"] + 3 * (81235 - entry) - day_charges
    assert summary["net_pnl_rupees"] == rupees(summary["net_pnl"])
    assert (summary["open_trades"], summary["unprotected"], summary["exits_by_reason"]) == (1, 0, {"STOP": 1})
    assert summary["halts"] == {"operator": False, "reason": None, "accounts": {}, "strategies": {}}
    stream = summary["stream"]
    assert stream["state"] == "live" and stream["reason"] is None and stream["last_tick_ms"] > 0, stream
    service.price(790.10)  # the stop of the open trade is 790.00
    wait_for(lambda: get(service, "/desk/summary").json()["open_pnl"] == 3 * (79010 - entry), "open P&L at the new price")


def test_the_feed_pushes_the_summary_when_it_changes(service):
    with open_feed(service) as feed:
        first = feed.until(lambda m: m["type"] == "summary", what="a summary")
        assert first["open_trades"] == 0 and first["open_pnl"] == 0 and first["day"]
        trade_id = open_trade(service)
        entry = service.trade(trade_id)["trade"]["entry_price"]
        service.price(803)
        moved = feed.until(lambda m: m["type"] == "summary" and m["open_pnl"] == 2 * (80300 - entry),
                           what="the summary at 803")
        assert moved["open_trades"] == 1 and moved["open_pnl_rupees"] == rupees(2 * (80300 - entry))


def test_a_trades_price_line_has_its_recent_prices_and_levels(service):
    trade_id = open_trade(service)
    for price in (801, 802, 803.5):
        service.price(price)
        wait_for(lambda p=price: [int(p * 100)] == [q for _, q in get(service, f"/trades/{trade_id}/prices").json()["points"][-1:]],
                 f"the price {price} in the line")
    body = get(service, f"/trades/{trade_id}/prices").json()
    trade = service.trade(trade_id)["trade"]
    assert body["trade_id"] == trade_id
    assert body["levels"] == {"entry": trade["entry_price"], "stop": trade["stop"], "target": None}
    prices = [p for _, p in body["points"]]
    assert prices[-3:] == [80100, 80200, 80350]
    times = [t for t, _ in body["points"]]
    assert times == sorted(times) and all(b - a >= 250 for a, b in zip(times, times[1:]))
    later = get(service, f"/trades/{trade_id}/prices", since_ms=times[-2]).json()["points"]
    assert later == body["points"][-1:]
    with signed_in(service) as client:
        assert client.get("/trades/999/prices").status_code == 404
        assert client.get(f"/trades/{trade_id}/prices", params={"since_ms": "soon"}).status_code == 422


def test_409s_name_their_rule(service):
    trade_id = open_trade(service)
    closed_by_stop(service, trade_id)
    with signed_in(service) as client:
        reply = client.post(f"/trades/{trade_id}/close")
        assert reply.status_code == 409
        assert reply.json()["errors"] == [{"field": "close", "reason": "nothing to close: the trade is CLOSED"}]
        nothing = service.alert(signal="exit", strategyname="flat")
        assert nothing.status_code == 409 and nothing.json()["errors"][0]["field"] == "position", nothing.text
        client.post("/halt", json={"halted": True})
        halted = service.alert(quantity=1, stoploss=STOP_10)
        client.post("/halt", json={"halted": False})
    assert halted.status_code == 409
    assert halted.json()["errors"] == [{"field": "halt", "reason": "new entries are halted (operator): halted by the operator"}]
