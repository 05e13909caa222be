"""smart-stream fidelity: the official SDK's SmartWebSocketV2, unchanged, and a raw client for the rest."""
from __future__ import annotations

import json
import queue
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from paper.packets import DEPTH, LTP, PACKET_SIZES, QUOTE, SNAP_QUOTE
from tests.support.paper import DEMO, OTHER, RunningPaper
from tests.support.waiting import wait_for

SBIN, INFY = "3045", "1594"


# Helpers shared by the socket test modules (imported by name; nothing here is collected) ------------
def login(paper: RunningPaper, who=DEMO) -> dict[str, str]:
    reply = httpx.post(
        f"{paper.url}/rest/auth/angelbroking/user/v1/loginByPassword", headers={"X-PrivateKey": who.api_key},
        json={"clientcode": who.clientcode, "password": who.pin, "totp": paper.totp(who)}, timeout=10,
    )
    data = reply.json()["data"]
    return {"jwt": data["jwtToken"], "feed": data["feedToken"], "refresh": data["refreshToken"]}


def market_headers(tokens: dict[str, str], who=DEMO) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['jwt']}", "x-api-key": who.api_key, "x-client-code": who.clientcode,
            "x-feed-token": tokens["feed"]}


def ws_url(paper: RunningPaper, path: str) -> str:
    return paper.url.replace("http://", "ws://") + path


def request(mode: int, tokens: list[str], exchange_type: int = 1, action: int = 1, correlation: str | None = "abc") -> str:
    body: dict = {"action": action, "params": {"mode": mode, "tokenList": [{"exchangeType": exchange_type, "tokens": tokens}]}}
    if correlation is not None:
        body["correlationID"] = correlation
    return json.dumps(body)


def wait_until(predicate: Callable[[], object], timeout: float = 10, what: str = "condition") -> object:
    return wait_for(predicate, what, timeout, every=0.01)


def feed_state(paper: RunningPaper) -> dict:
    return paper.control("GET", "/feed").json()


def set_ltp(paper: RunningPaper, ltp: float, token: str = SBIN, exchange: str = "NSE") -> None:
    reply = paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": ltp})
    assert reply.status_code == 200, reply.text


def next_binary(ws: ClientConnection, timeout: float = 10) -> bytes:
    while True:
        frame = ws.recv(timeout=timeout)
        if isinstance(frame, bytes):
            return frame


def ltp_of(frame: bytes) -> tuple[int, str, int]:
    """(mode, token, ltp paise) from a frame's documented header."""
    mode, _, token, _, _, ltp = struct.unpack_from("<BB25sqqq", frame)
    return mode, token.rstrip(b"\0").decode(), ltp


@contextmanager
def market_socket(paper: RunningPaper, tokens: dict[str, str] | None = None, who=DEMO) -> Iterator[ClientConnection]:
    """A raw client, connected and counted by the feed before it is handed out."""
    tokens = tokens or login(paper, who)
    before = len(feed_state(paper)["market"])
    with connect(ws_url(paper, "/smart-stream"), additional_headers=market_headers(tokens, who)) as ws:
        wait_until(lambda: len(feed_state(paper)["market"]) > before, what="the feed to register the socket")
        yield ws


@pytest.fixture
def stream_v2(smartapi_module, tmp_path, monkeypatch):
    """The SDK's SmartWebSocketV2 class aimed at a paper exchange, run in a thread per client."""
    monkeypatch.chdir(tmp_path)  # its constructor writes ./logs
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    running: list[tuple[SmartWebSocketV2, threading.Thread]] = []

    def start(paper: RunningPaper, on_open: Callable, tokens: dict[str, str] | None = None):
        tokens = tokens or login(paper)
        monkeypatch.setattr(SmartWebSocketV2, "ROOT_URI", ws_url(paper, "/smart-stream"))
        sws = SmartWebSocketV2(f"Bearer {tokens['jwt']}", DEMO.api_key, DEMO.clientcode, tokens["feed"], max_retry_attempt=0)
        sws.input_request_dict = {}  # a class-level dict in the SDK: keep clients apart
        received: queue.Queue = queue.Queue()
        sws.on_open = lambda wsapp: on_open(sws)
        sws.on_data = lambda wsapp, data: received.put(data)
        sws.on_error = lambda *args: None  # its default takes no arguments, and its own retry is off
        thread = threading.Thread(target=sws.connect, name="sdk-smart-stream", daemon=True)
        thread.start()
        running.append((sws, thread))
        return sws, received

    yield start
    for sws, thread in running:
        sws.close_connection()
        thread.join(timeout=10)


def take(received: queue.Queue, count: int, timeout: float = 10) -> list[dict]:
    return [received.get(timeout=timeout) for _ in range(count)]


# SDK fidelity -------------------------------------------------------------------------------------------
def test_the_sdk_decodes_every_mode_to_the_prices_the_control_api_set(paper, stream_v2):
    def on_open(sws):
        for mode in (LTP, QUOTE, SNAP_QUOTE):
            sws.subscribe("tg1", mode, [{"exchangeType": 1, "tokens": [SBIN]}])

    _, received = stream_v2(paper, on_open)
    snapshot = take(received, 3)  # the current state right after each subscribe
    current = paper.exchange.prices.quote("NSE", SBIN)
    assert sorted(d["subscription_mode"] for d in snapshot) == [LTP, QUOTE, SNAP_QUOTE]
    assert all(d["last_traded_price"] == current.ltp and d["token"] == SBIN for d in snapshot)

    set_ltp(paper, 812.30)
    ticks = {d["subscription_mode"]: d for d in take(received, 3)}
    quote = paper.exchange.prices.quote("NSE", SBIN)
    assert sorted(ticks) == [LTP, QUOTE, SNAP_QUOTE]
    assert {d["last_traded_price"] for d in ticks.values()} == {81_230}
    assert all(d["exchange_type"] == 1 and d["sequence_number"] == quote.sequence for d in ticks.values())
    q = ticks[QUOTE]
    assert (q["open_price_of_the_day"], q["high_price_of_the_day"], q["low_price_of_the_day"], q["closed_price"]) == (
        quote.open, quote.high, quote.low, quote.close)
    assert q["volume_trade_for_the_day"] == quote.volume and q["total_buy_quantity"] == quote.total_buy_qty
    snap = ticks[SNAP_QUOTE]
    assert (snap["upper_circuit_limit"], snap["lower_circuit_limit"]) == (quote.upper_circuit, quote.lower_circuit)
    assert (snap["52_week_high_price"], snap["52_week_low_price"]) == (quote.week52_high, quote.week52_low)
    assert [(d["quantity"], d["price"], d["no of orders"]) for d in snap["best_5_buy_data"]] == quote.bids
    assert [(d["quantity"], d["price"], d["no of orders"]) for d in snap["best_5_sell_data"]] == quote.asks
    assert snap["exchange_timestamp"] == quote.exchange_ts_ms


def test_the_sdk_gets_depth_for_nse_cash_and_derivatives_on_their_exchange_type(paper, stream_v2):
    spot = paper.exchange.prices.quote("NSE", "99926000").ltp
    options = [i for i in paper.exchange.universe.derivatives_of("NSE", "99926000") if i.is_option]
    option = min(options, key=lambda i: (i.expiry, abs(i.strike_paise - spot)))  # near-month, at the money

    def on_open(sws):
        sws.subscribe("tg2", DEPTH, [{"exchangeType": 1, "tokens": [INFY]}])
        sws.subscribe("tg3", LTP, [{"exchangeType": 2, "tokens": [option.token]}])

    _, received = stream_v2(paper, on_open)
    depth, option_tick = sorted(take(received, 2), key=lambda d: d["subscription_mode"], reverse=True)
    quote = paper.exchange.prices.quote("NSE", INFY)
    assert depth["subscription_mode"] == DEPTH and depth["token"] == INFY
    assert [(d["quantity"], d["price"], d["num_of_orders"]) for d in depth["depth_20_buy_data"][:5]] == quote.bids
    assert depth["depth_20_sell_data"][5:] == [{"quantity": 0, "price": 0, "num_of_orders": 0}] * 15
    assert option_tick["exchange_type"] == 2 and option_tick["token"] == option.token

    set_ltp(paper, (spot + 10_000) / 100, token="99926000")  # the index moves 100 points; its option reprices
    moved = received.get(timeout=10)
    assert moved["token"] == option.token
    assert moved["last_traded_price"] == paper.exchange.prices.quote("NFO", option.token).ltp


# Raw protocol ---------------------------------------------------------------------------------------------
def test_frames_have_the_documented_sizes_and_one_per_token_and_mode(paper):
    with market_socket(paper) as first, market_socket(paper) as second:
        for mode in (LTP, QUOTE, SNAP_QUOTE, DEPTH):
            first.send(request(mode, [SBIN]))
        second.send(request(LTP, [SBIN, SBIN]))  # a duplicate in one request is one pair
        assert sorted(len(next_binary(first)) for _ in range(4)) == sorted(PACKET_SIZES.values())
        assert len(next_binary(second)) == 51

        set_ltp(paper, 799.95)
        frames = [next_binary(first) for _ in range(4)]
        assert sorted(ltp_of(f)[0] for f in frames) == [LTP, QUOTE, SNAP_QUOTE, DEPTH]
        assert {ltp_of(f)[2] for f in frames if f[0] != DEPTH} == {79_995}
        set_ltp(paper, 800.00)
        assert ltp_of(next_binary(second)) == (LTP, SBIN, 79_995)
        assert ltp_of(next_binary(second)) == (LTP, SBIN, 80_000)  # not a second 799.95 frame


def test_unsubscribe_stops_that_mode_only_and_unknown_pairs_are_ignored(paper):
    with market_socket(paper) as ws:
        ws.send(request(LTP, [SBIN]))
        ws.send(request(QUOTE, [SBIN]))
        assert sorted(len(next_binary(ws)) for _ in range(2)) == [51, 123]
        ws.send(request(LTP, [SBIN, "999999"], action=0))
        ws.send(request(SNAP_QUOTE, [INFY], action=0))  # never subscribed: silently ignored
        wait_until(lambda: feed_state(paper)["market"][0]["subscriptions"] == 1, what="the unsubscribe")
        set_ltp(paper, 801.00)
        set_ltp(paper, 802.00)
        assert [len(next_binary(ws)) for _ in range(2)] == [123, 123]


def test_text_ping_gets_pong_and_protocol_pings_are_answered(paper):
    with market_socket(paper) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "pong"
        assert ws.ping(b"hb").wait(timeout=10)


def test_query_parameter_form_connects(paper):
    tokens = login(paper)
    query = f"?clientCode={DEMO.clientcode}&feedToken={tokens['feed']}&apiKey={DEMO.api_key}"
    with connect(ws_url(paper, "/smart-stream" + query)) as ws:
        ws.send(request(LTP, [SBIN]))
        assert ltp_of(next_binary(ws))[1] == SBIN


@pytest.mark.parametrize(("change", "message"), [
    ({"Authorization": "Bearer not-a-jwt"}, "Invalid Header - Invalid Auth token"),
    ({"Authorization": None}, "Invalid Header - Invalid Auth token"),
    ({"x-client-code": "P9999"}, "Invalid Header - Invalid Client Code"),
    ({"x-api-key": "someone-elses-key"}, "Invalid Header - Invalid API Key"),
    ({"x-feed-token": "garbage"}, "Invalid Header - Invalid Feed Token"),
    ({"query": "?clientCode=P0001&feedToken=garbage&apiKey=paper-demo-key"}, "Invalid Header - Invalid Feed Token"),
])
def test_bad_auth_is_refused_with_401_and_x_error_message(paper, change, message):
    headers = market_headers(login(paper))
    query = change.pop("query", "")
    if query:
        headers = {}
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(paper, "/smart-stream" + query), additional_headers=headers).close()
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["x-error-message"] == message


def test_another_clients_jwt_is_refused(paper):
    mine, theirs = login(paper), login(paper, OTHER)
    headers = {**market_headers(mine), "Authorization": f"Bearer {theirs['jwt']}"}
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(paper, "/smart-stream"), additional_headers=headers).close()
    assert refused.value.response.headers["x-error-message"] == "Invalid Header - Invalid Auth token"


def test_bad_payloads_get_e1001_with_the_correlation_id(paper):
    with market_socket(paper) as ws:
        for payload in ("not json", request(7, [SBIN], correlation="bad1"), request(DEPTH, [SBIN], exchange_type=2, correlation="bad2"),
                        json.dumps({"action": 1, "params": {"mode": 1, "tokenList": []}, "correlationID": "bad3"})):
            ws.send(payload)
        replies = [json.loads(ws.recv(timeout=10)) for _ in range(4)]
        assert {r["errorCode"] for r in replies} == {"E1001"}
        assert {r["errorMessage"] for r in replies} == {"Invalid Request Payload"}
        assert [r["correlationID"] for r in replies] == ["", "bad1", "bad2", "bad3"]


def test_the_thousand_pair_limit_refuses_the_whole_request_and_keeps_what_was_there(paper):
    with market_socket(paper) as ws:
        ws.send(request(LTP, [SBIN] + [f"9{n:05d}" for n in range(599)]))  # unknown tokens count, never tick
        ws.send(request(QUOTE, [f"9{n:05d}" for n in range(400)]))
        assert ltp_of(next_binary(ws)) [1] == SBIN
        wait_until(lambda: feed_state(paper)["market"][0]["subscriptions"] == 1000, what="1000 pairs")
        ws.send(request(QUOTE, [f"9{n:05d}" for n in range(400)], correlation="dup"))  # duplicates are free
        ws.send(request(SNAP_QUOTE, [SBIN, INFY], correlation="over"))
        error = json.loads(ws.recv(timeout=10))
        assert error == {"correlationID": "over", "errorCode": "E1002",
                         "errorMessage": "Invalid Request. Subscription Limit Exceeded"}
        assert feed_state(paper)["market"][0]["subscriptions"] == 1000
        set_ltp(paper, 803.00)
        assert ltp_of(next_binary(ws)) == (LTP, SBIN, 80_300)


def test_depth_is_capped_at_fifty_tokens(paper):
    with market_socket(paper) as ws:
        ws.send(request(DEPTH, [f"8{n:05d}" for n in range(50)]))
        ws.send(request(DEPTH, [SBIN], correlation="depth51"))
        assert json.loads(ws.recv(timeout=10))["errorCode"] == "E1002"


def test_a_fourth_connection_of_a_client_is_refused_with_a_text_error(paper):
    tokens = login(paper)
    with market_socket(paper, tokens), market_socket(paper, tokens), market_socket(paper, tokens):
        with connect(ws_url(paper, "/smart-stream"), additional_headers=market_headers(tokens)) as fourth:
            error = json.loads(fourth.recv(timeout=10))
            assert error["errorCode"] == "E1002" and "Connection Limit" in error["errorMessage"]
            with pytest.raises(ConnectionClosed) as closed:
                fourth.recv(timeout=10)
            assert closed.value.rcvd.code == 1008
        with market_socket(paper, login(paper, OTHER), who=OTHER) as other:  # the limit is per client code
            other.send("ping")
            assert other.recv(timeout=10) == "pong"


def test_a_path_at_twenty_thousand_points_a_second_reaches_the_client_point_for_point(paper):
    points = [round(700 + (n % 400) * 0.05, 2) for n in range(20_000)]
    with market_socket(paper) as ws:
        ws.send(request(LTP, [SBIN]))
        next_binary(ws)
        reply = paper.control("POST", "/paths", json={"exchange": "NSE", "token": SBIN, "points": points, "rate": 20_000})
        assert reply.status_code == 201, reply.text
        received = [ltp_of(next_binary(ws, timeout=20))[2] for _ in points]
    assert received == [round(p * 100) for p in points]


def test_subscribed_contracts_keep_ticking_after_a_reset(paper):
    option = next(i for i in paper.exchange.universe.derivatives_of("NSE", "99926000") if i.option_type == "CE")
    tokens = login(paper)
    with connect(ws_url(paper, "/smart-stream"), additional_headers=market_headers(tokens)) as ws:
        ws.send(request(LTP, [option.token], exchange_type=2))
        assert ltp_of(next_binary(ws))[1] == option.token  # the state right after subscribing
        assert paper.control("POST", "/reset").status_code == 200
        spot = paper.exchange.prices.ltp("NSE", "99926000") / 100
        set_ltp(paper, round(spot + 200, 2), token="99926000")
        assert ltp_of(next_binary(ws))[1] == option.token


# Exchange-side stamps (paper.stamps) ------------------------------------------------------------------
@contextmanager
def paper_stalled(paper) -> Iterator[None]:
    paper.control("POST", "/feed/stall")
    try:
        yield
    finally:
        paper.control("POST", "/feed/resume")


def test_stamps_time_a_sent_tick_and_a_received_order_on_one_clock(paper):
    tokens = login(paper)
    with market_socket(paper, tokens) as ws:
        ws.send(request(LTP, [SBIN]))
        next_binary(ws)  # the state on subscribe
        before = time.perf_counter_ns()
        set_ltp(paper, 801.05)
        assert ltp_of(next_binary(ws))[2] == 80_105
        sent = paper.control("GET", "/stamps", params={"exchange": "NSE", "token": SBIN}).json()["ticks"]
        ltp, sent_ns, sent_ms = sent[-1]
        assert ltp == 80_105 and before < sent_ns < time.perf_counter_ns() and abs(sent_ms / 1000 - time.time()) < 60
        played = paper.control("GET", "/stamps", params={"exchange": "NSE", "token": SBIN}).json()["played"]
        assert played[-1][0] == 80_105 and before < played[-1][1] <= sent_ns
        with paper_stalled(paper):
            set_ltp(paper, 801.10)  # no frame goes out: played, never sent
        stamps = paper.control("GET", "/stamps", params={"exchange": "NSE", "token": SBIN}).json()
        assert stamps["played"][-1][0] == 80_110 and stamps["ticks"][-1][0] == 80_105

        headers = {"Authorization": f"Bearer {tokens['jwt']}", "X-PrivateKey": DEMO.api_key}
        body = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": SBIN, "exchange": "NSE",
                "transactiontype": "BUY", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY",
                "price": "0", "quantity": "1", "ordertag": "tgstampX1"}
        reply = httpx.post(f"{paper.url}/rest/secure/angelbroking/order/v1/placeOrder", json=body, headers=headers)
        assert reply.json()["status"] is True
        stamps = paper.control("GET", "/stamps", params={"tag": "tgstampX1", "token": SBIN}).json()
        assert sent_ns < stamps["order"][0] < time.perf_counter_ns()
        assert stamps["ticks"][-1][1] == sent_ns  # sent once, however often it is read
    assert paper.control("GET", "/stamps", params={"tag": "never"}).json() == {"order": None}
    assert paper.control("GET", "/stamps").status_code == 422
