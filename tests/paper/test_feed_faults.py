"""Feed faults under /paper/v1/feed: stalls, drops, malformed frames, paused order updates, slow clients."""
from __future__ import annotations

import json
import struct

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from paper.packets import LTP, QUOTE, SNAP_QUOTE
from paper.sockets import hubs_of
from tests.paper.test_order_updates import codes, order_socket, place, updates_until
from tests.paper.test_stream import (
    SBIN, feed_state, login, ltp_of, market_headers, market_socket, next_binary, request, set_ltp, wait_until, ws_url,
)
from tests.support.paper import DEMO


def test_a_stalled_feed_sends_nothing_but_keeps_the_socket_and_heartbeats(paper):
    with market_socket(paper) as ws:
        ws.send(request(LTP, [SBIN]))
        next_binary(ws)
        assert paper.control("POST", "/feed/stall").json() == {"stalled": True}
        set_ltp(paper, 810.00)
        ws.send(request(QUOTE, ["1594"]))  # no snapshot while stalled either
        ws.send("ping")
        assert ws.recv(timeout=10) == "pong"  # a tick frame would have been queued ahead of it
        assert feed_state(paper)["stalled"] is True

        assert paper.control("POST", "/feed/resume").json() == {"stalled": False}
        set_ltp(paper, 811.00)
        assert ltp_of(next_binary(ws)) == (LTP, SBIN, 81_100)


@pytest.mark.parametrize("how", ["close", "abort"])
def test_drop_ends_every_market_and_order_socket(paper, how):
    tokens = login(paper)
    with market_socket(paper, tokens) as market, order_socket(paper, {"Authorization": f"Bearer {tokens['jwt']}"}) as orders:
        wait_until(lambda: feed_state(paper)["orders"], what="the order socket to register")
        reply = paper.control("POST", "/feed/drop", json={"how": how, "code": 1011, "reason": "paper outage"})
        assert reply.json() == {"dropped": 2, "how": how}
        for ws in (market, orders):
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
            if how == "close":
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "paper outage")
            else:  # the TCP connection ends without a close frame, as in a network drop
                assert closed.value.rcvd is None
        wait_until(lambda: not feed_state(paper)["market"] and not feed_state(paper)["orders"], what="sockets gone")
    with market_socket(paper, tokens) as again:  # and clients can come back
        again.send("ping")
        assert again.recv(timeout=10) == "pong"


def test_drop_by_instrument_ends_only_the_market_sockets_subscribed_to_it(paper):
    tokens = login(paper)
    with market_socket(paper, tokens) as holder, market_socket(paper, tokens) as other:
        holder.send(request(QUOTE, [SBIN]))
        other.send(request(LTP, ["1594"]))
        next_binary(holder), next_binary(other)
        reply = paper.control("POST", "/feed/drop", json={"exchange": "NSE", "token": SBIN, "code": 1011})
        assert reply.json() == {"dropped": 1, "how": "close"}
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                holder.recv(timeout=10)
        assert closed.value.rcvd.code == 1011
        other.send("ping")
        assert other.recv(timeout=10) == "pong"  # the client's other connection is untouched
        assert paper.control("POST", "/feed/drop", json={"exchange": "NSE", "token": "424242"}).json()["dropped"] == 0
        wait_until(lambda: len(feed_state(paper)["market"]) == 1, what="one market socket left")


def test_a_truncated_packet_reaches_that_pairs_subscribers_and_breaks_the_sdk_parser(paper, smartapi_module):
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    with market_socket(paper) as ws:
        ws.send(request(SNAP_QUOTE, [SBIN]))
        whole = next_binary(ws)
        reply = paper.control("POST", "/feed/garbage", json={"kind": "truncated", "token": SBIN, "mode": 3, "length": 200})
        assert reply.json() == {"sent": 1, "bytes": 200}
        cut = next_binary(ws)
        assert len(cut) == 200 and cut[:27] == whole[:27]
        with pytest.raises(struct.error):
            SmartWebSocketV2.__new__(SmartWebSocketV2)._parse_binary_data(cut)


def test_garbage_binary_and_text_frames(paper):
    with market_socket(paper) as ws:
        assert paper.control("POST", "/feed/garbage", json={"kind": "binary"}).json()["sent"] == 1
        frame = ws.recv(timeout=10)
        assert isinstance(frame, bytes) and len(frame) == 51 and frame[0] not in (1, 2, 3, 4)
        paper.control("POST", "/feed/garbage", json={"kind": "binary", "hex": "0102"})
        assert ws.recv(timeout=10) == b"\x01\x02"
        paper.control("POST", "/feed/garbage", json={"kind": "text", "text": "\u0000{nope"})
        assert ws.recv(timeout=10) == "\u0000{nope"


def test_paused_order_updates_are_dropped_not_replayed(paper):
    tokens = login(paper)
    with order_socket(paper, {"Authorization": f"Bearer {tokens['jwt']}"}) as ws:
        wait_until(lambda: feed_state(paper)["orders"], what="the order socket to register")
        assert paper.control("POST", "/feed/orders/pause").json() == {"order_updates_paused": True}
        place(paper, tokens, DEMO)
        assert paper.control("POST", "/feed/orders/resume").json() == {"order_updates_paused": False, "dropped": 3}
        after = place(paper, tokens, DEMO)
        assert codes(updates_until(ws, after, "complete")) == ["AB09", "AB01", "AB05"]  # nothing of the first


def test_a_slow_client_is_closed_on_overflow_and_the_others_keep_their_ticks(paper):
    feed, _ = hubs_of(paper.exchange)
    tokens = login(paper)
    feed.queue_limit = 5
    with market_socket(paper, tokens) as slow:
        feed.queue_limit = 65_536
        with market_socket(paper, tokens) as healthy:
            for ws in (slow, healthy):
                ws.send(request(LTP, [SBIN]))
                next_binary(ws)
            prices = [round(800 + n * 0.05, 2) for n in range(20)]
            burst = {"ticks": [{"exchange": "NSE", "token": SBIN, "ltp": p} for p in prices]}
            assert paper.control("POST", "/ticks", json=burst).status_code == 200  # one batch, no writer runs between
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    slow.recv(timeout=10)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "Send queue overflow: client too slow")
            assert [ltp_of(next_binary(healthy))[2] for _ in prices] == [round(p * 100) for p in prices]


def test_feed_controls_are_refused_when_the_control_api_is_off(paper_factory):
    paper = paper_factory(control_api=False)
    for path in ("/feed/stall", "/feed/drop", "/feed/garbage", "/feed/orders/pause"):
        reply = paper.control("POST", path, json={})
        assert reply.status_code == 403
        assert reply.json()["errors"][0]["field"] == "mode"
    with connect(ws_url(paper, "/smart-stream"), additional_headers=market_headers(login(paper))) as ws:
        ws.send("ping")  # the sockets themselves stay up
        assert ws.recv(timeout=10) == "pong"


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("/feed/garbage", {"kind": "confetti"}, 422, "kind"),
    ("/feed/garbage", {"kind": "truncated", "token": "424242"}, 404, "token"),
    ("/feed/garbage", {"kind": "truncated", "token": SBIN, "length": 51}, 422, "length"),
    ("/feed/garbage", {"kind": "binary", "hex": "zz"}, 422, "hex"),
    ("/feed/drop", {"how": "politely"}, 422, "how"),
    ("/feed/drop", {"code": 1006}, 422, "code"),
    ("/feed/drop", {"socket": "both"}, 422, "socket"),
    ("/feed/drop", {"socket": "orders", "token": SBIN}, 422, "socket"),
    ("/feed/drop", {"token": " "}, 422, "token"),
])
def test_bad_control_input_names_the_field(paper, path, body, status, field):
    reply = paper.control("POST", path, json=body)
    assert reply.status_code == status
    assert reply.json() == {"errors": [{"field": field, "reason": reply.json()["errors"][0]["reason"]}]}


def test_feed_state_lists_connections_and_subscriptions(paper):
    with market_socket(paper) as ws:
        ws.send(request(LTP, [SBIN, "1594"]))
        next_binary(ws)
        state = wait_until(lambda: (s := feed_state(paper))["market"][0]["subscriptions"] == 2 and s, what="state")
        assert state["market"][0]["clientcode"] == DEMO.clientcode
        assert state["stalled"] is False and state["order_updates_paused"] is False
        assert json.loads(json.dumps(state)) == state
