"""GTT rules on the fill engine (paper.gtt): validation, states, triggering into LIMIT orders, persistence."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper.errors import GttError
from paper.gtt import FIRST_RULE_ID, GttBook
from tests.paper.test_orders import NIFTY_CE, NIFTY_FUT, SBIN, Desk, make_desk

DAY_S = 86_400


class Gtt:
    """A desk with a GTT book on its engine; prices moved through `move` reach both, engine first."""

    def __init__(self, desk: Desk, max_waiting: int = 500) -> None:
        self.desk = desk
        self.book = GttBook(desk.engine.universe, desk.prices, desk.engine, clock=lambda: desk.now[0],
                            max_waiting=max_waiting)
        self.stored: dict[int, tuple[str, dict[str, Any]]] = {}
        self.book.add_listener(lambda client, row: self.stored.__setitem__(row["id"], (client, row)))

    def move(self, ltp: int, instrument=SBIN) -> None:
        quote = self.desk.prices.set(instrument, ltp)
        self.desk.engine.on_quotes([quote])
        self.book.on_quotes([quote])

    def create(self, client: str = "P0001", **overrides: Any) -> int:
        return self.book.create(client, rule_body(**overrides)).id

    def details(self, rule_id: int, client: str = "P0001") -> dict[str, Any]:
        return self.book.details(client, {"id": str(rule_id)})


def rule_body(**overrides: Any) -> dict[str, Any]:
    """A createRule body as the SDK sends it (numbers as strings). SBIN is at 800."""
    body = {"tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE", "producttype": "DELIVERY",
            "transactiontype": "SELL", "price": "788", "qty": "10", "disclosedqty": "0", "triggerprice": "790",
            "timeperiod": "365"}
    body.update(overrides)
    return body


@pytest.fixture
def gtt() -> Gtt:
    return Gtt(make_desk())


def hold_sbin(gtt: Gtt, quantity: int = 10) -> None:
    gtt.desk.place(SBIN, producttype="DELIVERY", quantity=str(quantity))


def test_a_new_rule_has_the_documented_fields(gtt):
    rule_id = gtt.create()
    assert rule_id == FIRST_RULE_ID
    row = gtt.details(rule_id)
    assert row == {
        "id": FIRST_RULE_ID, "status": "NEW", "createddate": "2024-11-20T04:45:30Z",
        "updateddate": "2024-11-20T04:45:30Z", "expirydate": "2025-11-20T04:45:30Z", "clientid": "P0001",
        "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "exchange": "NSE", "producttype": "DELIVERY",
        "transactiontype": "SELL", "price": 788.0, "qty": 10, "triggerprice": 790.0, "disclosedqty": 0,
        "timeperiod": 365, "orderid": "",
    }
    assert gtt.stored[rule_id] == ("P0001", row)


def test_numbers_may_be_json_numbers(gtt):
    rule_id = gtt.create(price=788.5, qty=10, triggerprice=790, timeperiod=30, disclosedqty=None)
    row = gtt.details(rule_id)
    assert (row["price"], row["qty"], row["timeperiod"], row["disclosedqty"]) == (788.5, 10, 30, 0)


@pytest.mark.parametrize(("overrides", "code", "field"), [
    ({"exchange": "NFO", "symboltoken": NIFTY_FUT.token, "tradingsymbol": NIFTY_FUT.symbol}, "AB9002", "exchange"),
    ({"symboltoken": "99999"}, "AB9003", "symboltoken"),
    ({"tradingsymbol": "INFY-EQ"}, "AB9003", "tradingsymbol"),
    ({"symboltoken": "99926000", "tradingsymbol": "Nifty 50"}, "AB9003", "tradingsymbol"),
    ({"symboltoken": ""}, "AB9000", "symboltoken"),
    ({"producttype": "INTRADAY"}, "AB9004", "producttype"),
    ({"transactiontype": "SHORT"}, "AB9005", "transactiontype"),
    ({"price": "0"}, "AB9006", "price"),
    ({"price": "788.01"}, "AB9006", "price"),
    ({"price": "abc"}, "AB9006", "price"),
    ({"price": True}, "AB9006", "price"),
    ({"price": None}, "AB9000", "price"),
    ({"triggerprice": "-790"}, "AB9007", "triggerprice"),
    ({"triggerprice": "790.02"}, "AB9007", "triggerprice"),
    ({"qty": "0"}, "AB9008", "qty"),
    ({"qty": "2.5"}, "AB9008", "qty"),
    ({"disclosedqty": "11"}, "AB9009", "disclosedqty"),
    ({"timeperiod": "0"}, "AB9010", "timeperiod"),
    ({"timeperiod": "366"}, "AB9010", "timeperiod"),
    ({"triggerprice": "800"}, "AB9011", "triggerprice"),
    ({"transactiontype": "BUY", "triggerprice": "795"}, "AB9011", "triggerprice"),
])
def test_create_refusals_leave_no_rule(gtt, overrides, code, field):
    with pytest.raises(GttError) as refused:
        gtt.create(**overrides)
    assert (refused.value.errorcode, refused.value.field) == (code, field)
    assert refused.value.message
    assert gtt.book.export() == () and gtt.stored == {}


def test_no_market_price_is_refused(gtt):
    del gtt.desk.prices.quotes[("NSE", SBIN.token)]
    with pytest.raises(GttError) as refused:
        gtt.create()
    assert refused.value.errorcode == "AB9012"


def test_a_sell_rule_triggers_into_a_limit_order_that_closes_the_holding(gtt):
    hold_sbin(gtt)
    assert gtt.desk.engine.holdings("P0001")[0]["quantity"] == 10
    rule_id = gtt.create()
    gtt.move(79_500)
    assert gtt.details(rule_id)["status"] == "NEW"
    gtt.move(78_900)
    row = gtt.details(rule_id)
    assert row["status"] == "SENTTOEXCHANGE" and row["orderid"]
    order = gtt.desk.row(row["orderid"])
    assert (order["variety"], order["ordertype"], order["producttype"], order["transactiontype"]) == \
           ("NORMAL", "LIMIT", "DELIVERY", "SELL")
    assert (order["price"], order["quantity"], order["parentorderid"], order["ordertag"]) == \
           (788.0, "10", str(rule_id), "")
    assert order["status"] == "complete" and order["averageprice"] == 789.0  # marketable on arrival: the ltp
    assert gtt.desk.engine.holdings("P0001") == []
    assert gtt.desk.engine.positions("P0001")[0]["netqty"] == "0"
    assert gtt.desk.statuses(row["orderid"]) == ["open pending", "open", "complete"]
    gtt.move(78_000)
    assert len(gtt.desk.engine.order_book("P0001")) == 2, "a triggered rule places one order only"


def test_a_rule_gapped_through_its_limit_rests_then_fills_at_its_price(gtt):
    hold_sbin(gtt)
    rule_id = gtt.create()
    gtt.move(78_000)
    orderid = gtt.details(rule_id)["orderid"]
    assert gtt.desk.row(orderid)["status"] == "open"
    gtt.move(79_000)
    assert gtt.desk.row(orderid)["status"] == "complete"
    assert gtt.desk.engine.trade_book("P0001")[-1]["fillprice"] == "788.00"


def test_a_buy_rule_triggers_when_the_price_rises_to_it(gtt):
    rule_id = gtt.create(transactiontype="BUY", triggerprice="810", price="812", qty="3")
    gtt.move(80_900)
    assert gtt.details(rule_id)["status"] == "NEW"
    gtt.move(81_000)
    orderid = gtt.details(rule_id)["orderid"]
    assert gtt.desk.row(orderid)["status"] == "complete"
    assert gtt.desk.engine.holdings("P0001")[0]["quantity"] == 3


def test_rules_on_other_instruments_ignore_the_quote(gtt):
    rule_id = gtt.create()
    gtt.move(1_000, NIFTY_CE)
    assert gtt.details(rule_id)["status"] == "NEW"


def test_modify_makes_a_rule_active_and_moves_its_trigger(gtt):
    rule_id = gtt.create()
    gtt.desk.now[0] += 60
    modified = gtt.book.modify("P0001", {"id": rule_id, "symboltoken": "3045", "exchange": "NSE",
                                         "triggerprice": "795", "price": "793", "qty": "10"})
    row = gtt.details(rule_id)
    assert modified.id == rule_id
    assert (row["status"], row["triggerprice"], row["price"]) == ("ACTIVE", 795.0, 793.0)
    assert row["updateddate"] == "2024-11-20T04:46:30Z" and row["createddate"] == "2024-11-20T04:45:30Z"
    gtt.move(79_600)
    assert gtt.details(rule_id)["status"] == "ACTIVE"
    gtt.move(79_500)
    assert gtt.details(rule_id)["status"] == "SENTTOEXCHANGE"


def test_a_modification_keeps_absent_fields_and_checks_the_trigger_against_the_ltp(gtt):
    rule_id = gtt.create(qty="4")
    gtt.book.modify("P0001", {"id": str(rule_id), "symboltoken": "3045", "exchange": "NSE", "triggerprice": "791"})
    assert (gtt.details(rule_id)["qty"], gtt.details(rule_id)["price"]) == (4, 788.0)
    with pytest.raises(GttError) as refused:
        gtt.book.modify("P0001", {"id": rule_id, "symboltoken": "3045", "exchange": "NSE", "triggerprice": "805"})
    assert refused.value.errorcode == "AB9011" and gtt.details(rule_id)["triggerprice"] == 791.0


@pytest.mark.parametrize(("body", "code"), [
    ({"symboltoken": "3045", "exchange": "NSE"}, "AB9000"),
    ({"id": "12ab", "symboltoken": "3045", "exchange": "NSE"}, "AB9000"),
    ({"id": "999", "symboltoken": "3045", "exchange": "NSE"}, "AB9001"),
    ({"id": FIRST_RULE_ID, "symboltoken": "3046", "exchange": "NSE"}, "AB9015"),
    ({"id": FIRST_RULE_ID, "symboltoken": "3045", "exchange": "BSE"}, "AB9015"),
    ({"id": FIRST_RULE_ID, "exchange": "NSE"}, "AB9000"),
])
def test_modify_and_cancel_must_name_an_own_rule_on_its_instrument(gtt, body, code):
    gtt.create()
    for action in (gtt.book.modify, gtt.book.cancel):
        with pytest.raises(GttError) as refused:
            action("P0001", body)
        assert refused.value.errorcode == code
    assert gtt.details(FIRST_RULE_ID)["status"] == "NEW"


def test_another_clients_rule_is_not_found(gtt):
    rule_id = gtt.create()
    with pytest.raises(GttError) as refused:
        gtt.details(rule_id, client="P0002")
    assert refused.value.errorcode == "AB9001"


def test_cancel_then_neither_modify_nor_cancel_nor_trigger(gtt):
    rule_id = gtt.create()
    ids = {"id": rule_id, "symboltoken": "3045", "exchange": "NSE"}
    assert gtt.book.cancel("P0001", ids).status == "CANCELLED"
    with pytest.raises(GttError) as again:
        gtt.book.cancel("P0001", ids)
    with pytest.raises(GttError) as modified:
        gtt.book.modify("P0001", {**ids, "triggerprice": "791"})
    assert (again.value.errorcode, modified.value.errorcode) == ("AB9014", "AB9013")
    gtt.move(78_000)
    assert gtt.details(rule_id)["status"] == "CANCELLED" and gtt.desk.engine.order_book("P0001") == []


def test_a_triggered_rule_can_no_longer_be_modified_or_cancelled(gtt):
    rule_id = gtt.create()
    gtt.move(78_000)
    ids = {"id": rule_id, "symboltoken": "3045", "exchange": "NSE"}
    for action, code in ((gtt.book.cancel, "AB9014"), (gtt.book.modify, "AB9013")):
        with pytest.raises(GttError) as refused:
            action("P0001", ids)
        assert refused.value.errorcode == code


def test_a_rule_past_its_time_period_is_cancelled_and_never_triggers(gtt):
    rule_id = gtt.create(timeperiod="1")
    gtt.desk.now[0] += DAY_S - 1
    assert gtt.details(rule_id)["status"] == "NEW"
    gtt.desk.now[0] += 1
    gtt.move(78_000)
    row = gtt.details(rule_id)
    assert row["status"] == "CANCELLED" and row["updateddate"] == row["expirydate"]
    assert gtt.desk.engine.order_book("P0001") == []


def test_the_list_filters_by_status_newest_first_in_pages(gtt):
    first, second, third = (gtt.create(triggerprice=str(t)) for t in (790, 780, 770))
    gtt.book.cancel("P0001", {"id": second, "symboltoken": "3045", "exchange": "NSE"})
    gtt.create(client="P0002")

    def ids(statuses, page=1, count=10):
        return [row["id"] for row in gtt.book.listing("P0001", {"status": statuses, "page": page, "count": count})]

    assert ids(["NEW", "ACTIVE"]) == [third, first]
    assert ids(["CANCELLED"]) == [second]
    assert ids(["NEW", "CANCELLED"], page=1, count=2) == [third, second]
    assert ids(["NEW", "CANCELLED"], page=2, count=2) == [first]
    assert ids(["NEW", "CANCELLED"], page=3, count=2) == []
    assert ids(["SENTTOEXCHANGE"]) == []


@pytest.mark.parametrize(("body", "code"), [
    ({"status": "NEW", "page": 1, "count": 10}, "AB9016"),
    ({"status": [], "page": 1, "count": 10}, "AB9016"),
    ({"status": ["EXPIRED"], "page": 1, "count": 10}, "AB9016"),
    ({"status": ["NEW"], "page": 0, "count": 10}, "AB9017"),
    ({"status": ["NEW"], "page": 1, "count": 501}, "AB9017"),
    ({"status": ["NEW"], "page": "x", "count": 10}, "AB9017"),
    ({"status": ["NEW"], "count": 10}, "AB9000"),
])
def test_list_refusals(gtt, body, code):
    with pytest.raises(GttError) as refused:
        gtt.book.listing("P0001", body)
    assert refused.value.errorcode == code


def test_waiting_rules_are_capped_per_client():
    gtt = Gtt(make_desk(), max_waiting=2)
    first = gtt.create()
    gtt.create()
    with pytest.raises(GttError) as refused:
        gtt.create()
    assert refused.value.errorcode == "AB9018"
    gtt.create(client="P0002")
    gtt.book.cancel("P0001", {"id": first, "symboltoken": "3045", "exchange": "NSE"})
    gtt.create()


def test_a_trigger_the_rms_rejects_leaves_a_rejected_order():
    gtt = Gtt(make_desk(cash_rupees=1_000))
    rule_id = gtt.create(transactiontype="BUY", triggerprice="810", price="812", qty="10")
    gtt.move(81_000)
    row = gtt.details(rule_id)
    assert row["status"] == "SENTTOEXCHANGE"
    order = gtt.desk.row(row["orderid"])
    assert order["status"] == "rejected" and "Insufficient Funds" in order["text"]


def test_rules_come_back_from_their_stored_rows(gtt):
    hold_sbin(gtt)
    triggered, waiting, cancelled = gtt.create(), gtt.create(triggerprice="770", price="769"), gtt.create()
    gtt.book.cancel("P0001", {"id": cancelled, "symboltoken": "3045", "exchange": "NSE"})
    gtt.move(78_500)
    again = Gtt(gtt.desk)
    again.book.restore_rows(gtt.stored.values())
    assert again.book.export() == gtt.book.export()
    assert again.details(triggered)["orderid"] == gtt.details(triggered)["orderid"]
    assert again.create(triggerprice="760") == cancelled + 1
    again.move(77_000)
    assert again.details(waiting)["status"] == "SENTTOEXCHANGE"


@settings(max_examples=60, deadline=None)
@given(trigger=st.integers(760, 799), path=st.lists(st.integers(740, 840), min_size=1, max_size=25))
def test_a_sell_rule_triggers_once_at_the_first_price_at_or_below_its_trigger(trigger, path):
    """Reference: the rule's order is placed at the first ltp ≤ trigger, never before, never twice."""
    gtt = Gtt(make_desk())
    rule_id = gtt.create(triggerprice=str(trigger), price=str(trigger - 2), qty="1")
    placed_at = None
    for step, rupees in enumerate(path):
        gtt.move(rupees * 100)
        if placed_at is None and rupees <= trigger:
            placed_at = step
        expected = "SENTTOEXCHANGE" if placed_at is not None else "NEW"
        assert gtt.details(rule_id)["status"] == expected, (step, rupees)
    orders = gtt.desk.engine.order_book("P0001")
    assert len(orders) == (placed_at is not None)
    if orders:
        assert orders[0]["parentorderid"] == str(rule_id)
