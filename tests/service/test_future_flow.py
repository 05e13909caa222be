"""Futures end to end: `NIFTY1!` sized in whole lots from the broker's margin batch, guarded and exited
with P&L over its units (lots × lot size), through the real app and a paper exchange.

The paper exchange charges a future 15 % of price × quantity: one NIFTY lot of 75 at ₹24,000 needs
₹2,70,000 of margin.
"""
from __future__ import annotations

from paper.app import create_app as create_paper_app
from paper.exchange import PaperConfig, PaperExchange
from tests.service.test_equity_flow import broker_orders
from tests.support.paper import DEMO, OTHER, RunningPaper
from tests.support.servers import ServerThread

LOT_MARGIN = 27_000_000  # paise: 15 % of ₹24,000 × 75


def nifty_future(paper):
    futures = [i for i in paper.exchange.universe.instruments if i.name == "NIFTY" and i.instrumenttype == "FUTIDX"]
    return min(futures, key=lambda i: i.expiry)


def future_price(service, ltp: float) -> None:
    service.price(ltp, token=nifty_future(service.paper).token, exchange="NFO")


def future_alert(service, **extra):
    body = {"symbolname": "NIFTY1!", "signal": "buy", "price": 24000, "type": "equity", "strategyname": "fut"}
    body.update(extra)
    return service.alert(**body)


def entered(service, reply) -> dict:
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    return service.wait_trade(trade_id, lambda t: t["state"] != "PENDING_ENTRY" or t["filled"], what="the entry")


def test_nifty1_trades_whole_lots_sized_from_the_margin_and_exits_with_pnl_over_units(service_factory):
    service = service_factory(DEMO_FUND="600000")  # ₹6,00,000 a trade: two lots of ₹2,70,000
    future = nifty_future(service.paper)
    future_price(service, 24000)
    view = entered(service, future_alert(service, stoploss={"type": "points", "value": 50}))
    trade = view["trade"]
    assert trade["tradingsymbol"] == future.symbol and trade["exchange"] == "NFO"
    assert trade["spec"]["lot_size"] == 75 and trade["spec"]["instrumenttype"] == "FUTIDX"
    assert trade["quantity"] == 150
    sized = next(e for e in view["events"] if e["kind"] == "sized")
    # q* = ₹6,00,000 ÷ (₹2,70,000 ÷ 75) = 166.67 units, recorded for stops that divide by it
    assert sized["data"] == {"quantity": 150, "lot_margin": LOT_MARGIN,
                             "sized_for": {"budget": str(60_000_000 * 75), "price": LOT_MARGIN}}
    trade = service.wait_trade(trade["id"], lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="armed")["trade"]
    assert (trade["filled"], trade["entry_price"], trade["stop"]) == (150, 2_400_000, 2_395_000)
    (entry,) = [o for o in broker_orders(service) if o["ordertag"] == f"tg{trade['id']}E1"]
    assert (entry["exchange"], entry["symboltoken"], entry["quantity"]) == ("NFO", future.token, "150")
    future_price(service, 23940)
    closed = service.wait_trade(trade["id"], lambda t: t["state"] == "CLOSED", what="the stop exit")["trade"]
    assert closed["exited"] == 150
    assert closed["realised_pnl"] == (closed["exit_price"] - 2_400_000) * 150 < 0
    (exit_order,) = [o for o in broker_orders(service) if o["ordertag"] == f"tg{trade['id']}X1"]
    assert exit_order["transactiontype"] == "SELL" and exit_order["quantity"] == "150"


def test_lots_and_position_size_count_lots_and_a_quantity_must_be_whole_lots(service_factory, paper_factory):
    paper = paper_factory(opening_cash_paise=1_000_000_000)  # ₹1 crore: margin for every entry below
    service = service_factory(paper=paper, DEMO_FUND="600000")
    future_price(service, 24000)
    reply = future_alert(service, quantity=100)
    assert reply.status_code == 422
    assert reply.json()["errors"] == [{"field": "quantity", "reason": "not a multiple of the lot size 75"}]
    assert entered(service, future_alert(service, lots=1))["trade"]["quantity"] == 75
    assert entered(service, future_alert(service, quantity=75, strategyname="fut2"))["trade"]["quantity"] == 75
    # position_size is TradingView's target position in contracts: lots, as for options.
    view = entered(service, future_alert(service, position_size=2, strategyname="fut3"))
    assert view["trade"]["quantity"] == 150


def test_lots_above_the_margin_are_capped_to_the_lots_it_allows(service_factory, paper_factory):
    paper = paper_factory(opening_cash_paise=60_000_000)  # ₹6,00,000: two lots
    service = service_factory(paper=paper, DEMO_FUND="10000000")
    future_price(service, 24000)
    view = entered(service, future_alert(service, lots=5))
    assert view["trade"]["quantity"] == 150
    sized = next(e for e in view["events"] if e["kind"] == "sized")["data"]
    assert (sized["quantity"], sized["asked"], sized["lot_margin"]) == (150, 375, LOT_MARGIN)
    assert sized["reason"] == "capped by margin: 600000.00 allows 2 of the 5 lots asked"
    service.wait_trade(view["trade"]["id"], lambda t: t["filled"] == 150, what="the capped entry filled")
    (entry,) = [o for o in broker_orders(service) if o["ordertag"] == f"tg{view['trade']['id']}E1"]
    assert entry["quantity"] == "150" and entry["status"] == "complete"


def test_an_allocation_below_one_lot_is_refused_with_the_margin_it_needs(service_factory):
    service = service_factory()  # the demo account's ₹1,00,000 a trade
    future_price(service, 24000)
    trade = entered(service, future_alert(service))["trade"]
    assert trade["state"] == "REJECTED" and trade["quantity"] == 0
    assert trade["reason"] == "one lot needs a margin of 270000.00, more than the allocation 100000.00"


class FailingMarginRoute:
    """ASGI wrapper: the margin batch route answers HTTP 500; every other route is the paper exchange's."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/margin/v1/batch"):
            body = b'{"status": false, "message": "Internal Error", "errorcode": "AB2001", "data": null}'
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def test_a_failing_margin_route_refuses_the_entry_with_the_reason(service_factory, tmp_path):
    from datetime import date

    config = PaperConfig(logins=(DEMO, OTHER), db_path=tmp_path / "paper-margin.db", tick_ms=0, today=date.today())
    exchange = PaperExchange(config)
    with ServerThread(FailingMarginRoute(create_paper_app(exchange))) as server:
        service = service_factory(paper=RunningPaper(server.url, exchange, config), DEMO_FUND="600000")
        future_price(service, 24000)
        trade = entered(service, future_alert(service))["trade"]
        assert trade["state"] == "REJECTED"
        assert trade["reason"].startswith(f"cannot read the margin for one lot of {trade['tradingsymbol']}: ")
        assert "HTTP 500" in trade["reason"]
        assert not [o for o in broker_orders(service) if o["ordertag"].startswith(f"tg{trade['id']}")]


def test_a_strategy_rupee_stop_on_fixed_lots_divides_by_the_margin_sized_q_star(service_factory, tmp_path):
    import json
    import math

    strategies = tmp_path / "strategies.json"
    strategies.write_text(json.dumps({"fut": {"stoploss": {"type": "rupees", "value": 1000}}}))
    service = service_factory(DEMO_FUND="600000", STRATEGIES_FILE=str(strategies))
    future_price(service, 24000)
    trade = entered(service, future_alert(service, lots=1))["trade"]
    trade = service.wait_trade(trade["id"], lambda t: t["stop"] is not None, what="armed")["trade"]
    # ₹1 000 over q* = 166.67 units = ₹6 (₹1 000 × 2,70,000 ÷ (6,00,000 × 75)), not ₹1 000 ÷ 75 = ₹13.33
    assert trade["quantity"] == 75
    assert trade["stop"] == math.ceil((trade["entry_price"] - 600) / 5) * 5
