"""bench._wirestub: it starts, logs in, sends a frame on subscription and on a crossing, stamps placeOrder
(and reports its fill on the order-update socket), writes background frames at the rate asked."""
from __future__ import annotations

import asyncio
import json
import struct

import httpx
import pytest
from websockets.asyncio.client import connect

from bench import _procs
from bench._wirecross import stub

SECURE = "/rest/secure/angelbroking"
CONFIG = {"instruments": [["NSE", "900001", "BENCH1-EQ", 50_200], ["NSE", "900002", "BENCH2-EQ", 50_400]],
          "background": [["NSE", "900002", [50_400, 50_405, 50_395]]],
          "positions": [["NSE", "900001", "BENCH1-EQ", 10]]}
LTP = struct.Struct("<BB25sqqq")


@pytest.fixture
def wire(tmp_path):
    with stub(tmp_path, CONFIG) as process:
        yield process.url


def ltp_of(frame: bytes) -> tuple[str, int, int]:
    _mode, _exchange, token, sequence, _ts, ltp = LTP.unpack(frame)
    return token.rstrip(b"\0").decode(), sequence, ltp


async def test_login_positions_frames_and_a_stamped_place_order(wire):
    ws_root = wire.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=wire, timeout=10) as http, \
            connect(f"{ws_root}/smart-stream") as stream, connect(f"{ws_root}/smart-order-update") as updates:
        login = (await http.post("/rest/auth/angelbroking/user/v1/loginByPassword",
                                 json={"clientcode": "P0001", "password": "1234", "totp": "000000"})).json()
        assert login["status"] is True and login["data"]["jwtToken"]
        positions = (await http.get(f"{SECURE}/order/v1/getPosition")).json()["data"]
        assert [(p["symboltoken"], p["netqty"]) for p in positions] == [("900001", "10")]
        refused = (await http.post(f"{SECURE}/order/v1/getLtpData", json={})).json()
        assert refused["status"] is False and refused["errorcode"] == "AB1004"
        assert json.loads(await asyncio.wait_for(updates.recv(), 10))["order-status"] == "AB00"

        await stream.send(json.dumps({"action": 1, "params": {"mode": 1, "tokenList": [
            {"exchangeType": 1, "tokens": ["900001"]}]}}))
        assert ltp_of(await asyncio.wait_for(stream.recv(), 10)) == ("900001", 0, 50_200)  # the price on subscription

        plan = {"frames": [["NSE", "900002", 1, 5, 0], ["NSE", "900001", 49_000, 7, 0]]}
        assert (await http.post("/stub/plan", json=plan)).json() == {"frames": 2}
        assert (await http.post("/stub/cross/0")).json()["sockets"] == 0  # nobody subscribed 900002
        written = (await http.post("/stub/cross/1")).json()
        assert written["sockets"] == 1
        assert ltp_of(await asyncio.wait_for(stream.recv(), 10)) == ("900001", 7, 49_000)

        waiting = asyncio.create_task(http.get("/stub/wait", params={"tags": "tg1X1", "timeout": "10"}))
        order = {"variety": "NORMAL", "tradingsymbol": "BENCH1-EQ", "symboltoken": "900001", "transactiontype": "SELL",
                 "exchange": "NSE", "ordertype": "LIMIT", "producttype": "INTRADAY", "price": "489.5", "quantity": "1",
                 "ordertag": "tg1X1"}
        placed = (await http.post(f"{SECURE}/order/v1/placeOrder", json=order)).json()
        assert placed["status"] is True and placed["data"]["orderid"]
        arrived = (await waiting).json()["orders"]["tg1X1"]
        assert arrived > written["written_ns"]  # one clock: the frame went out before the order came in
        fill = json.loads(await asyncio.wait_for(updates.recv(), 10))
        assert fill["order-status"] == "AB05"
        assert {k: fill["orderData"][k] for k in ("ordertag", "orderid", "status", "filledshares")} == {
            "ordertag": "tg1X1", "orderid": placed["data"]["orderid"], "status": "complete", "filledshares": "1"}
        missing = await http.get("/stub/wait", params={"tags": "tg1X1,tg2X1", "timeout": "0.2"})
        assert missing.status_code == 504 and missing.json() == {"missing": ["tg2X1"]}


async def test_background_frames_go_to_the_subscribed_socket_at_the_rate(wire):
    async with httpx.AsyncClient(base_url=wire, timeout=10) as http, \
            connect(wire.replace("http", "ws", 1) + "/smart-stream") as stream:
        await stream.send(json.dumps({"action": 1, "params": {"mode": 1, "tokenList": [
            {"exchangeType": 1, "tokens": ["900002"]}]}}))
        assert ltp_of(await asyncio.wait_for(stream.recv(), 10))[2] == 50_400
        await http.post("/stub/background", json={"rate": 200})
        seen = [ltp_of(await asyncio.wait_for(stream.recv(), 10)) for _ in range(6)]
        assert [ltp for _token, _sequence, ltp in seen] == [50_400, 50_405, 50_395] * 2  # the path, cycled
        assert (await http.get("/stub/written")).json()["frames"] >= 6


def test_the_bare_client_answers_a_crossing_frame_with_a_place_order(wire, tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(["900001"]))
    args = ["-m", "bench._wireecho", "--root", wire, "--tokens", str(tokens), "--first-sequence", "100"]
    with _procs.Process("wireecho", args, tmp_path, ready_text="subscribed"), \
            httpx.Client(base_url=f"{wire}/stub", timeout=15) as control:
        control.post("/plan", json={"frames": [["NSE", "900001", 49_000, 99, 0], ["NSE", "900001", 48_000, 101, 0]]})
        _procs.wait_for(lambda: control.post("/cross/0").json()["sockets"] == 1, "the bare client subscribed")
        written = control.post("/cross/1").json()["written_ns"]
        arrived = control.get("/wait", params={"tags": "echo1", "timeout": "10"}).json()["orders"]
        assert arrived["echo1"] > written
        assert "echo-1" not in control.get("/orders").json()["orders"]  # below the first sequence: no order


async def test_only_the_primed_tokens_get_a_price_on_subscription(tmp_path):
    with stub(tmp_path, {**CONFIG, "primed": ["900001"]}) as process:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as http, \
                connect(process.url.replace("http", "ws", 1) + "/smart-stream") as stream:
            await stream.send(json.dumps({"action": 1, "params": {"mode": 1, "tokenList": [
                {"exchangeType": 1, "tokens": ["900002", "900001"]}]}}))
            assert ltp_of(await asyncio.wait_for(stream.recv(), 10)) == ("900001", 0, 50_200)
            await http.post("/stub/plan", json={"frames": [["NSE", "900002", 50_000, 3, 0]]})
            assert (await http.post("/stub/cross/0")).json()["sockets"] == 1
            assert ltp_of(await asyncio.wait_for(stream.recv(), 10)) == ("900002", 3, 50_000)  # no price came before


async def test_stamped_background_follows_the_rate_and_every_frame_is_counted(tmp_path):
    config = {**CONFIG, "stamp": True}
    with stub(tmp_path, config) as process:
        async with httpx.AsyncClient(base_url=process.url, timeout=10) as http, \
                connect(process.url.replace("http", "ws", 1) + "/smart-stream") as stream:
            await stream.send(json.dumps({"action": 1, "params": {"mode": 1, "tokenList": [
                {"exchangeType": 1, "tokens": ["900002", "900001"]}]}}))
            got = [await asyncio.wait_for(stream.recv(), 10) for _ in range(2)]  # the two prices on subscription
            await http.post("/stub/background", json={"rate": 400})
            got += [await asyncio.wait_for(stream.recv(), 10) for _ in range(20)]
            stamps = [LTP.unpack(frame)[4] for frame in got[2:]]
            assert stamps == sorted(stamps) and stamps[0] > 1_700_000_000_000  # the wall clock's ms, never back
            await http.post("/stub/background", json={"rate": 0})  # paused
            await asyncio.sleep(0.1)
            written = (await http.get("/stub/written")).json()
            while True:  # what was already on its way
                try:
                    got.append(await asyncio.wait_for(stream.recv(), 0.3))
                except TimeoutError:
                    break
            assert written["all"] == len(got) and written["frames"] == len(got) - 2
            assert written["sockets"] == [2]
            await asyncio.sleep(0.2)
            assert (await http.get("/stub/written")).json()["all"] == written["all"]  # nothing more while paused
