"""The GTT routes over HTTP: the official SDK's gtt* calls, both path spellings, errors, the order a rule
places as every client sees it, a restart, and the rate limit."""
from __future__ import annotations

import httpx
import pytest

from paper.gtt import FIRST_RULE_ID
from tests.paper.test_order_updates import order_socket, updates_until
from tests.paper.test_stream import login, set_ltp
from tests.support.paper import DEMO, RunningPaper

GTT = "/rest/secure/angelbroking/gtt/v1"
SBIN = {"tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE"}


def create_params(**overrides) -> dict:
    params = {**SBIN, "producttype": "DELIVERY", "transactiontype": "SELL", "price": "788", "qty": "10",
              "disclosedqty": "0", "triggerprice": "790", "timeperiod": "365"}
    params.update(overrides)
    return params


def post(paper: RunningPaper, path: str, body: dict, jwt: str) -> httpx.Response:
    return httpx.post(f"{paper.url}{path}", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {jwt}", "X-PrivateKey": DEMO.api_key})


def test_the_sdk_creates_modifies_reads_lists_and_cancels_a_rule(sdk):
    set_ltp(sdk.paper, 800)
    rule_id = sdk.gttCreateRule(create_params())
    assert rule_id == FIRST_RULE_ID
    details = sdk.gttDetails(rule_id)
    assert details["status"] is True
    assert {k: details["data"][k] for k in ("status", "price", "qty", "triggerprice", "clientid")} == \
           {"status": "NEW", "price": 788.0, "qty": 10, "triggerprice": 790.0, "clientid": DEMO.clientcode}
    modified = sdk.gttModifyRule({"id": rule_id, "symboltoken": "3045", "exchange": "NSE", "price": "793",
                                  "qty": "10", "triggerprice": "795", "disclosedqty": "0", "timeperiod": "30"})
    assert modified == rule_id
    listed = sdk.gttLists(["NEW", "ACTIVE"], 1, 10)
    assert [(r["id"], r["status"], r["triggerprice"]) for r in listed["data"]] == [(rule_id, "ACTIVE", 795.0)]
    cancelled = sdk.gttCancelRule({"id": rule_id, "symboltoken": "3045", "exchange": "NSE"})
    assert cancelled["status"] is True and cancelled["data"] == {"id": rule_id}
    assert sdk.gttLists(["NEW", "ACTIVE"], 1, 10)["data"] == []
    assert sdk.gttLists(["CANCELLED"], 1, 10)["data"][0]["id"] == rule_id


def test_the_sdk_sees_the_triggered_rules_order_and_its_holding_go(sdk):
    set_ltp(sdk.paper, 800)
    bought = sdk.placeOrder({"variety": "NORMAL", **SBIN, "transactiontype": "BUY", "ordertype": "MARKET",
                             "producttype": "DELIVERY", "duration": "DAY", "quantity": "10"})
    assert sdk.holding()["data"][0]["quantity"] == 10
    rule_id = sdk.gttCreateRule(create_params())
    set_ltp(sdk.paper, 789)
    rule = sdk.gttDetails(rule_id)["data"]
    assert rule["status"] == "SENTTOEXCHANGE"
    row = next(r for r in sdk.orderBook()["data"] if r["orderid"] == rule["orderid"])
    assert (row["ordertype"], row["parentorderid"], row["ordertag"], row["status"]) == \
           ("LIMIT", str(rule_id), "", "complete")
    assert rule["orderid"] != bought
    assert sdk.holding()["data"] is None
    assert sdk.gttLists(["SENTTOEXCHANGE"], 1, 10)["data"][0]["orderid"] == rule["orderid"]


def test_the_order_a_rule_places_is_pushed_on_the_order_update_socket(paper):
    tokens = login(paper)
    set_ltp(paper, 800)
    rule_id = post(paper, f"/gtt-service{GTT}/createRule", create_params(), tokens["jwt"]).json()["data"]["id"]
    with order_socket(paper, {"Authorization": f"Bearer {tokens['jwt']}"}) as ws:
        set_ltp(paper, 785)
        orderid = paper.exchange.gtt.details(DEMO.clientcode, {"id": rule_id})["orderid"]
        updates = updates_until(ws, orderid, "open")
    assert updates[-1]["orderData"]["parentorderid"] == str(rule_id)
    assert updates[-1]["orderData"]["price"] == 788.0


@pytest.mark.parametrize("prefix", ["/gtt-service", ""])
def test_create_modify_cancel_are_served_with_and_without_the_service_prefix(paper, prefix):
    jwt = login(paper)["jwt"]
    set_ltp(paper, 800)
    created = post(paper, f"{prefix}{GTT}/createRule", create_params(price=788, qty=10, triggerprice=790), jwt).json()
    assert created == {"status": True, "message": "SUCCESS", "errorcode": "", "data": {"id": FIRST_RULE_ID}}
    ids = {"id": FIRST_RULE_ID, "symboltoken": "3045", "exchange": "NSE"}
    modified = post(paper, f"{prefix}{GTT}/modifyRule", {**ids, "triggerprice": 791}, jwt).json()
    assert modified["data"] == {"id": FIRST_RULE_ID}
    assert post(paper, f"{prefix}{GTT}/cancelRule", ids, jwt).json()["data"] == {"id": FIRST_RULE_ID}


@pytest.mark.parametrize(("route", "body", "code"), [
    ("/gtt-service" + GTT + "/createRule", create_params(triggerprice="805"), "AB9011"),
    ("/gtt-service" + GTT + "/createRule", create_params(producttype="INTRADAY"), "AB9004"),
    ("/gtt-service" + GTT + "/modifyRule", {"id": "42", "symboltoken": "3045", "exchange": "NSE"}, "AB9001"),
    ("/gtt-service" + GTT + "/cancelRule", {"id": "42", "symboltoken": "3045", "exchange": "NSE"}, "AB9001"),
    (GTT + "/ruleDetails", {"id": "42"}, "AB9001"),
    (GTT + "/ruleList", {"status": "NEW", "page": 1, "count": 10}, "AB9016"),
])
def test_refusals_come_in_the_failure_envelope(paper, route, body, code):
    set_ltp(paper, 800)
    reply = post(paper, route, body, login(paper)["jwt"])
    assert reply.status_code == 200
    payload = reply.json()
    assert (payload["status"], payload["errorcode"], payload["data"]) == (False, code, None)
    assert payload["message"]


def test_gtt_routes_need_a_session(paper):
    reply = httpx.post(f"{paper.url}{GTT}/ruleList", json={"status": ["NEW"], "page": 1, "count": 10},
                       headers={"X-PrivateKey": DEMO.api_key}, timeout=10)
    assert reply.json()["errorCode"] == "AG8003"


def test_rules_survive_a_restart_and_still_trigger(paper_factory):
    first = paper_factory()
    tokens = login(first)
    set_ltp(first, 800)
    waiting = post(first, f"/gtt-service{GTT}/createRule", create_params(), tokens["jwt"]).json()["data"]["id"]
    cancelled = post(first, f"/gtt-service{GTT}/createRule", create_params(), tokens["jwt"]).json()["data"]["id"]
    post(first, f"/gtt-service{GTT}/cancelRule", {"id": cancelled, "symboltoken": "3045", "exchange": "NSE"},
         tokens["jwt"])
    first.exchange.store.flush()
    second = paper_factory(db_path=first.config.db_path)
    listed = post(second, f"{GTT}/ruleList", {"status": ["NEW", "CANCELLED"], "page": 1, "count": 10},
                  tokens["jwt"]).json()["data"]
    assert [(r["id"], r["status"]) for r in listed] == [(cancelled, "CANCELLED"), (waiting, "NEW")]
    set_ltp(second, 800)
    assert post(second, f"/gtt-service{GTT}/createRule", create_params(), tokens["jwt"]).json()["data"]["id"] == \
           cancelled + 1
    set_ltp(second, 780)
    rule = post(second, f"{GTT}/ruleDetails", {"id": waiting}, tokens["jwt"]).json()["data"]
    assert rule["status"] == "SENTTOEXCHANGE" and rule["orderid"]


def test_a_reset_forgets_the_rules(paper):
    jwt = login(paper)["jwt"]
    set_ltp(paper, 800)
    post(paper, f"/gtt-service{GTT}/createRule", create_params(), jwt)
    assert paper.control("POST", "/reset").status_code == 200
    listed = post(paper, f"{GTT}/ruleList", {"status": ["NEW"], "page": 1, "count": 10}, jwt).json()
    assert listed["data"] == []


def test_gtt_routes_are_rate_limited_at_ten_a_second(paper_factory):
    paper = paper_factory(rate_limits=True)
    jwt = login(paper)["jwt"]
    headers = {"Authorization": f"Bearer {jwt}", "X-PrivateKey": DEMO.api_key}
    with httpx.Client(base_url=paper.url, headers=headers, timeout=10) as client:  # kept alive: 11 calls well within 1 s
        replies = [client.post(f"{GTT}/ruleDetails", json={"id": "1"}) for _ in range(11)]
    assert [r.status_code for r in replies[:10]] == [200] * 10, "ten a second are allowed"
    assert replies[10].status_code == 403 and replies[10].text == "Access denied because of exceeding access rate"
    other_route = post(paper, f"{GTT}/ruleList", {"status": ["NEW"], "page": 1, "count": 1}, jwt)
    assert other_route.status_code == 200, "each GTT route has its own budget"
