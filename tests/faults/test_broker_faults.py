"""Broker faults, each with its expected outcome: placeOrder timeouts and 5xx (never a second order),
rate-limit replies (retried), rejections (entry REJECTED; exit retried, then UNPROTECTED), partial fills
(the filled part armed, exited, nothing left at the broker), a session expiring mid-session (renewed),
the order-update stream down (the order book is polled), and exits in doubt (one exit until the broker
settles it)."""
from __future__ import annotations

from datetime import date

import pytest

from paper.app import create_app as create_paper_app
from paper.exchange import PaperConfig, PaperExchange
from tests.faults.conftest import FAULT_LOGIN, STOP_10, Broker, wait_for
from tests.support.paper import RunningPaper
from tests.support.servers import ServerThread

RATE_LIMIT_REPLY = b"Access denied because of exceeding access rate"


class RateLimitedRoutes:
    """ASGI wrapper: the next `count` calls to routes ending in `suffix` get SmartAPI's plain-text 403."""

    def __init__(self, app) -> None:
        self.app = app
        self.pending: dict[str, int] = {}
        self.refused = 0

    def arm(self, suffix: str, count: int) -> None:
        self.pending[suffix] = count

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            for suffix, left in self.pending.items():
                if left and scope["path"].endswith(suffix):
                    self.pending[suffix] = left - 1
                    self.refused += 1
                    await send({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(RATE_LIMIT_REPLY)).encode())]})
                    await send({"type": "http.response.body", "body": RATE_LIMIT_REPLY})
                    return
        await self.app(scope, receive, send)


@pytest.fixture
def rate_limited_paper(tmp_path):
    config = PaperConfig(logins=(FAULT_LOGIN,), db_path=tmp_path / "paper-rl.db", tick_ms=0, today=date.today())
    exchange = PaperExchange(config)
    limiter = RateLimitedRoutes(create_paper_app(exchange))
    with ServerThread(limiter) as server:
        yield RunningPaper(server.url, exchange, config), limiter


def entry_orders(broker: Broker, trade_id: int) -> list[dict]:
    return broker.orders(f"tg{trade_id}E")


def exit_orders(broker: Broker, trade_id: int) -> list[dict]:
    return broker.orders(f"tg{trade_id}X")


def submit(desk, quantity: int = 2, **alert) -> int:
    desk.price(800)
    reply = desk.alert(quantity=quantity, stoploss=STOP_10, **alert)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    return trade_id


def armed(trade) -> bool:
    return trade["state"] == "OPEN" and trade["stop"] is not None


def test_an_entry_whose_placeorder_times_out_is_found_by_its_tag_not_sent_twice(desk_factory):
    desk = desk_factory()
    desk.control("POST", "/faults", json={"kind": "timeout", "seconds": 7.5})  # past the adapter's 7 s
    trade_id = submit(desk)
    view = desk.wait_trade(trade_id, armed, "the timed-out entry found and armed", timeout=20)
    broker = Broker(desk.paper)
    assert len(entry_orders(broker, trade_id)) == 1 and broker.net() == 2
    assert view["trade"]["filled"] == 2


@pytest.mark.parametrize("placed", [True, False])
def test_an_entry_answered_with_a_5xx_ends_with_exactly_one_order(desk_factory, placed):
    desk = desk_factory()
    desk.control("POST", "/faults", json={"kind": "error5xx", "status": 502, "placed": placed})
    trade_id = submit(desk)
    desk.wait_trade(trade_id, armed, "the entry after a 502", timeout=15)
    broker = Broker(desk.paper)
    entries = entry_orders(broker, trade_id)
    assert [o["status"] for o in entries] == ["complete"], entries
    assert broker.net() == 2


def test_an_exit_answered_with_a_5xx_still_closes_the_trade_once(desk_factory):
    desk = desk_factory()
    trade_id = desk.open_trade()
    desk.control("POST", "/faults", json={"kind": "error5xx", "status": 503, "placed": True})
    desk.price(789)
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "exit after a 503 that placed it")
    broker = Broker(desk.paper)
    assert [o["status"] for o in exit_orders(broker, trade_id)] == ["complete"]
    assert broker.net() == 0


def test_rate_limit_replies_are_retried_for_entries_and_exits(desk_factory, rate_limited_paper):
    paper, limiter = rate_limited_paper
    desk = desk_factory(paper=paper)
    limiter.arm("/placeOrder", 2)
    trade_id = submit(desk)
    desk.wait_trade(trade_id, armed, "the entry after two rate-limit replies")
    limiter.arm("/placeOrder", 2)
    desk.price(789)
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit after two rate-limit replies")
    broker = Broker(paper)
    assert limiter.refused == 4
    assert len(entry_orders(broker, trade_id)) == 1 and len(exit_orders(broker, trade_id)) == 1
    assert broker.net() == 0


def test_a_rejected_entry_leaves_the_trade_rejected_with_the_brokers_reason(desk_factory):
    desk = desk_factory()
    desk.control("POST", "/faults", json={"kind": "reject", "text": "RMS: margin shortfall (fault suite)"})
    trade_id = submit(desk)
    view = desk.wait_trade(trade_id, lambda t: t["state"] == "REJECTED", "the entry rejected")
    assert "margin shortfall" in view["trade"]["reason"]
    assert Broker(desk.paper).net() == 0


def test_an_exit_always_rejected_is_reported_unprotected_and_stays_visible(desk_factory):
    desk = desk_factory(EXIT_ATTEMPTS="2")
    trade_id = desk.open_trade()
    desk.control("POST", "/faults", json={"kind": "reject", "count": 5})
    desk.price(789)
    view = desk.wait_trade(trade_id, lambda t: t["state"] == "UNPROTECTED", "the exit given up")
    assert "unprotected" in [e["kind"] for e in view["events"]]
    assert "tickguard_unprotected_trades 1.0" in desk.get("/metrics").text
    assert Broker(desk.paper).net() == 2  # shown as it is: still open at the broker


def test_a_partially_filled_entry_arms_what_filled_and_the_exit_leaves_nothing_open(desk_factory):
    desk = desk_factory()
    desk.control("POST", "/faults", json={"kind": "partial", "fraction": 0.5})
    trade_id = submit(desk, quantity=10)
    view = desk.wait_trade(trade_id, lambda t: armed(t) and t["filled"] == 5, "the filled half armed")
    assert view["trade"]["stop"] == 79000
    desk.price(789)
    view = desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit of the filled half")
    assert view["trade"]["exited"] == view["trade"]["filled"] == 5
    broker = Broker(desk.paper)
    assert broker.net() == 0  # the resting remainder was cancelled, not left to fill later
    assert [o["status"] for o in entry_orders(broker, trade_id)] == ["cancelled"]


def test_a_partially_filled_exit_is_chased_until_all_is_out(desk_factory):
    desk = desk_factory()
    trade_id = desk.open_trade(quantity=10)
    desk.control("POST", "/faults", json={"kind": "partial", "fraction": 0.4})
    desk.price(789)
    view = desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the partially filled exit completed")
    assert view["trade"]["exited"] == 10
    assert Broker(desk.paper).net() == 0


def test_a_session_expiring_mid_session_is_renewed_for_entries_and_exits(desk_factory):
    desk = desk_factory()
    first = desk.open_trade()
    desk.control("POST", "/sessions/expire", json={"clientcode": FAULT_LOGIN.clientcode})
    second = desk.open_trade(strategyname="after-expiry")
    desk.control("POST", "/sessions/expire", json={})
    desk.price(789)
    for trade_id in (first, second):
        desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", f"trade {trade_id} exited after expiry")
    assert Broker(desk.paper).net() == 0


@pytest.mark.parametrize("outage", ["pause", "drop"])
def test_with_the_order_update_stream_down_fills_are_learned_from_the_order_book(desk_factory, outage):
    desk = desk_factory()
    if outage == "pause":
        desk.control("POST", "/feed/orders/pause")
    else:
        wait_for(lambda: desk.control("GET", "/feed").json()["orders"], "the order socket to connect")
        desk.control("POST", "/feed/drop", json={"socket": "orders", "how": "abort"})
    trade_id = submit(desk)
    desk.wait_trade(trade_id, armed, "the entry fill learned without the order stream", timeout=10)
    desk.price(789)
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit fill learned without the order stream",
                    timeout=10)
    if outage == "pause":
        desk.control("POST", "/feed/orders/resume")
    assert Broker(desk.paper).net() == 0


# Exits in doubt: a 5xx whose order the book does not show yet. The adapter no longer sends an exit
# again; the trader keeps the first one reserved until the broker settles it (DOUBT_SETTLE_S).

def exit_events(desk, trade_id: int) -> list[str]:
    return [e["kind"] for e in desk.trade(trade_id)["events"] if e["kind"].startswith("exit")]


def test_an_exit_in_doubt_is_found_in_the_lagging_order_book_not_sent_twice(desk_factory):
    desk = desk_factory(DOUBT_SETTLE_S="3")
    trade_id = desk.open_trade()
    desk.control("POST", "/feed/orders/pause")  # its updates lost: only the order book can tell
    desk.control("POST", "/faults", json={"kind": "error5xx", "status": 503, "placed": True, "listed_after_s": 4})
    desk.price(789)
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit found in the order book", timeout=20)
    desk.control("POST", "/feed/orders/resume")
    broker = Broker(desk.paper)
    assert [o["status"] for o in exit_orders(broker, trade_id)] == ["complete"]
    assert broker.net() == 0
    assert "exit_in_doubt" in exit_events(desk, trade_id) and "exit_retry" not in exit_events(desk, trade_id)


def test_an_exit_in_doubt_is_settled_by_the_order_update_socket(desk_factory):
    desk = desk_factory(DOUBT_SETTLE_S="10")
    trade_id = desk.open_trade()
    desk.control("POST", "/faults", json={"kind": "error5xx", "status": 502, "placed": True, "listed_after_s": 30})
    desk.price(789)
    view = desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the exit's fill from the socket", timeout=10)
    broker = Broker(desk.paper)  # the book still hides the exit: its fills tell how many were placed

    def sells() -> list[int]:
        return [int(f["fillsize"]) for f in broker._get("/order/v1/getTradeBook") if f["transactiontype"] == "SELL"]

    wait_for(lambda: placements_in_doubt(desk) == 1 or len(sells()) > 1, "placeOrder's answer (or a second exit)", 15)
    assert sells() == [2] and broker.net() == 0
    assert [o["tag"] for o in view["orders"] if o["role"] == "exit"] == [f"tg{int_to_base36(trade_id)}X1"]


def test_an_exit_never_placed_goes_again_once_the_order_book_settles_it(desk_factory):
    desk = desk_factory(DOUBT_SETTLE_S="1")
    trade_id = desk.open_trade()
    desk.control("POST", "/faults", json={"kind": "error5xx", "status": 504, "placed": False})
    desk.price(789)
    desk.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", "the second exit attempt", timeout=20)
    broker = Broker(desk.paper)
    assert [o["ordertag"] for o in exit_orders(broker, trade_id)] == [f"tg{int_to_base36(trade_id)}X2"]
    assert broker.net() == 0
    orders = {o["tag"]: o for o in desk.trade(trade_id)["orders"]}
    first = orders[f"tg{int_to_base36(trade_id)}X1"]
    assert first["status"] == "failed" and "never placed" in first["text"], first


def placements_in_doubt(desk) -> float:
    for line in desk.get("/metrics").text.splitlines():
        if line.startswith("tickguard_orders_total{") and 'role="exit"' in line and 'outcome="in_doubt"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def int_to_base36(n: int) -> str:
    from service.trades import tag_for

    return tag_for(n, "exit", 1)[2:-2]
