"""Through the REST routes: after random order sequences, book, trades, positions and funds agree."""
from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.paper.conftest import DEMO

ROOT = "/rest/secure/angelbroking"
INSTRUMENTS = [("NSE", "SBIN-EQ", "3045", 1), ("NSE", "RELIANCE-EQ", "2885", 1)]

actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"), st.sampled_from(INSTRUMENTS), st.sampled_from(["BUY", "SELL"]),
            st.sampled_from(["MARKET", "LIMIT"]), st.integers(1, 40), st.integers(-20, 20),
        ),
        st.tuples(st.just("move"), st.sampled_from(INSTRUMENTS), st.integers(-30, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 10)),
    ),
    min_size=1, max_size=25,
)


def login(url: str, totp: str) -> dict[str, str]:
    headers = {"X-PrivateKey": DEMO.api_key, "Content-Type": "application/json"}
    body = {"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": totp}
    data = httpx.post(f"{url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body, headers=headers).json()["data"]
    return {**headers, "Authorization": f"Bearer {data['jwtToken']}"}


def test_book_trades_positions_and_funds_agree(paper):
    headers = login(paper.url, paper.totp())
    with httpx.Client(base_url=paper.url, headers=headers, timeout=10) as client:
        run_sequences(paper, client)


def run_sequences(paper, client: httpx.Client) -> None:
    base_prices = {"3045": 800.0, "2885": 1400.0}

    @settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(actions)
    def run(sequence):
        assert paper.control("POST", "/reset").status_code == 200
        prices = dict(base_prices)
        for token, ltp in prices.items():
            paper.control("POST", "/ticks", json={"exchange": "NSE", "token": token, "ltp": ltp})
        placed: list[str] = []
        for action in sequence:
            if action[0] == "order":
                _, (exchange, symbol, token, _lot), side, kind, qty, offset = action
                price = round(prices[token] + offset * 0.05 * 10, 2) if kind == "LIMIT" else 0
                reply = client.post(f"{ROOT}/order/v1/placeOrder", json={
                    "variety": "NORMAL", "tradingsymbol": symbol, "symboltoken": token, "exchange": exchange,
                    "transactiontype": side, "ordertype": kind, "producttype": "INTRADAY", "duration": "DAY",
                    "price": str(price), "quantity": str(qty),
                }).json()
                assert reply["status"] is True, reply
                placed.append(reply["data"]["orderid"])
            elif action[0] == "move":
                _, (exchange, _s, token, _l), ticks = action
                prices[token] = round(max(1.0, prices[token] + ticks * 0.05 * 10), 2)
                paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": prices[token]})
            elif placed:
                orderid = placed[action[1] % len(placed)]
                client.post(f"{ROOT}/order/v1/cancelOrder", json={"variety": "NORMAL", "orderid": orderid})
        check(client, prices)

    run()


def check(client: httpx.Client, prices: dict[str, float]) -> None:
    book = client.get(f"{ROOT}/order/v1/getOrderBook").json()["data"] or []
    trades = client.get(f"{ROOT}/order/v1/getTradeBook").json()["data"] or []
    positions = client.get(f"{ROOT}/order/v1/getPosition").json()["data"] or []
    rms = client.get(f"{ROOT}/user/v1/getRMS").json()["data"]

    filled = {row["orderid"]: int(row["filledshares"]) for row in book}
    by_order: dict[str, int] = {}
    for trade in trades:
        by_order[trade["orderid"]] = by_order.get(trade["orderid"], 0) + int(trade["fillsize"])
    assert by_order == {k: v for k, v in filled.items() if v}, "fills sum to each order's filled shares"
    for row in book:
        assert row["status"] in {"complete", "open", "cancelled", "rejected"}
        assert int(row["filledshares"]) + int(row["unfilledshares"]) + int(row["cancelsize"] or 0) >= int(row["quantity"]) or row["status"] == "rejected"

    net: dict[str, int] = {}
    cash = 0.0
    for trade in trades:
        sign = 1 if trade["transactiontype"] == "BUY" else -1
        token = next(r["symboltoken"] for r in book if r["orderid"] == trade["orderid"])
        net[token] = net.get(token, 0) + sign * int(trade["fillsize"])
        cash -= sign * int(trade["fillsize"]) * float(trade["fillprice"])
    assert {p["symboltoken"]: int(p["netqty"]) for p in positions if int(p["netqty"])} == {k: v for k, v in net.items() if v}

    pnl = cash + sum(qty * prices[token] for token, qty in net.items())
    assert sum(float(p["pnl"]) for p in positions) == approx(pnl)
    for p in positions:
        assert float(p["realised"]) + float(p["unrealised"]) == approx(float(p["pnl"]))
    assert float(rms["m2mrealized"]) + float(rms["m2munrealized"]) == approx(pnl)


def approx(value: float):
    import pytest

    return pytest.approx(value, abs=0.05)
