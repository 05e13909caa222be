"""REST fidelity: the official smartapi-python SDK, unchanged, against the paper exchange."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.paper.conftest import DEMO

IST = ZoneInfo("Asia/Kolkata")
SBIN = {"exchange": "NSE", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045"}


def order(**overrides) -> dict:
    params = {
        "variety": "NORMAL", **SBIN, "transactiontype": "BUY", "ordertype": "MARKET",
        "producttype": "INTRADAY", "duration": "DAY", "price": "0", "quantity": "10", "ordertag": "tgtest",
    }
    params.update(overrides)
    return params


def set_price(sdk, ltp: float, token: str = "3045", exchange: str = "NSE") -> None:
    reply = sdk.paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": ltp})
    assert reply.status_code == 200, reply.text


def test_generate_session_returns_the_profile_with_bearer_tokens(sdk):
    session = sdk.generateSession(DEMO.clientcode, DEMO.pin, sdk.paper.totp())
    data = session["data"]
    assert session["status"] is True and session["message"] == "SUCCESS"
    assert data["clientcode"] == DEMO.clientcode
    assert data["jwtToken"].startswith("Bearer ey")
    assert data["refreshToken"] and data["feedToken"]
    assert {"nse_cm", "nse_fo"} <= set(data["exchanges"])
    assert sdk.userId == DEMO.clientcode


def test_get_profile_with_the_sdk_query_string(sdk):
    profile = sdk.getProfile(sdk.refresh_token)
    assert profile["status"] is True
    assert profile["data"]["clientcode"] == DEMO.clientcode


def test_wrong_totp_is_refused_in_smartapis_shape(smartapi_module, paper, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = smartapi_module.SmartConnect(api_key=DEMO.api_key, root=paper.url)
    wrong = f"{(int(paper.totp()) + 1) % 1_000_000:06d}"
    reply = client.generateSession(DEMO.clientcode, DEMO.pin, wrong)
    assert reply["status"] is False
    assert reply["errorcode"] == "AB1050" and reply["message"]
    assert reply["data"] is None


def test_wrong_pin_and_unknown_api_key_are_refused(smartapi_module, paper, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = smartapi_module.SmartConnect(api_key=DEMO.api_key, root=paper.url)
    assert client.generateSession(DEMO.clientcode, "0000", paper.totp())["errorcode"] == "AB1007"
    stranger = smartapi_module.SmartConnect(api_key="nobody", root=paper.url)
    assert stranger.generateSession(DEMO.clientcode, DEMO.pin, paper.totp())["errorcode"] == "AG8004"


def test_bogus_jwt_gets_the_gateway_token_dialect(smartapi_module, paper, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = smartapi_module.SmartConnect(api_key=DEMO.api_key, root=paper.url, access_token="eyJhbGciOi.bogus.jwt")
    reply = client.orderBook()
    assert reply == {"success": False, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}
    raw = httpx.get(f"{paper.url}/rest/secure/angelbroking/order/v1/getOrderBook", headers={"X-PrivateKey": DEMO.api_key})
    assert raw.json()["errorCode"] == "AG8003"


def test_rms_limit_reports_the_opening_funds(sdk):
    rms = sdk.rmsLimit()
    assert rms["status"] is True
    data = rms["data"]
    assert float(data["net"]) == pytest.approx(sdk.paper.config.opening_cash_paise / 100)
    assert float(data["availablecash"]) == pytest.approx(sdk.paper.config.opening_cash_paise / 100)
    for field in ("m2munrealized", "m2mrealized", "utiliseddebits"):
        assert isinstance(data[field], str)


def test_search_scrip_and_ltp_data(sdk):
    found = sdk.searchScrip("NSE", "SBIN")
    assert found["status"] is True
    assert {"exchange": "NSE", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045"} in found["data"]
    set_price(sdk, 812.5)
    ltp = sdk.ltpData("NSE", "SBIN-EQ", "3045")
    assert ltp["status"] is True
    assert ltp["data"]["ltp"] == 812.5
    assert ltp["data"]["tradingsymbol"] == "SBIN-EQ"


def test_market_quote_in_every_mode(sdk):
    set_price(sdk, 801.25)
    for mode, extra in (("LTP", set()), ("OHLC", {"open", "high", "low", "close"}), ("FULL", {"depth", "upperCircuit", "52WeekHigh"})):
        reply = sdk.getMarketData(mode, {"NSE": ["3045", "999999"]})
        assert reply["status"] is True
        (row,) = reply["data"]["fetched"]
        assert row["symbolToken"] == "3045" and row["ltp"] == 801.25
        assert extra <= set(row)
        assert reply["data"]["unfetched"][0]["symbolToken"] == "999999"


def test_place_market_order_fills_and_shows_everywhere(sdk):
    set_price(sdk, 800.0)
    orderid = sdk.placeOrder(order())
    assert isinstance(orderid, str) and len(orderid) == 15 and orderid.isdigit()
    book = sdk.orderBook()["data"]
    (row,) = [r for r in book if r["orderid"] == orderid]
    assert row["status"] == row["orderstatus"] == "complete"
    assert row["averageprice"] == 800.0 and row["filledshares"] == "10"
    assert row["ordertag"] == "tgtest"
    details = sdk.individual_order_details(row["uniqueorderid"])
    assert details["data"]["orderid"] == orderid
    trades = sdk.tradeBook()["data"]
    assert [t["orderid"] for t in trades] == [orderid]
    assert trades[0]["fillsize"] == "10" and float(trades[0]["fillprice"]) == 800.0
    (position,) = sdk.position()["data"]
    assert position["netqty"] == "10" and position["tradingsymbol"] == "SBIN-EQ"


def test_full_response_carries_script_and_unique_id(sdk):
    set_price(sdk, 800.0)
    reply = sdk.placeOrderFullResponse(order())
    assert reply["status"] is True
    assert reply["data"]["script"] == "SBIN-EQ"
    assert len(reply["data"]["uniqueorderid"]) == 36


def test_modify_then_cancel_a_resting_limit(sdk):
    set_price(sdk, 800.0)
    orderid = sdk.placeOrder(order(ordertype="LIMIT", price="790.00"))
    assert sdk.orderBook()["data"][0]["status"] == "open"
    modified = sdk.modifyOrder({
        "variety": "NORMAL", "orderid": orderid, "ordertype": "LIMIT", "producttype": "INTRADAY",
        "duration": "DAY", "price": "791.00", "quantity": "10", **SBIN,
    })
    assert modified["status"] is True and modified["data"]["orderid"] == orderid
    assert sdk.orderBook()["data"][0]["price"] == 791.0
    cancelled = sdk.cancelOrder(orderid, "NORMAL")
    assert cancelled["status"] is True
    row = sdk.orderBook()["data"][0]
    assert row["status"] == "cancelled" and row["cancelsize"] == "10"


def test_resting_limit_fills_when_the_price_comes_to_it(sdk):
    set_price(sdk, 800.0)
    orderid = sdk.placeOrder(order(ordertype="LIMIT", price="790.00"))
    set_price(sdk, 789.0)
    row = sdk.orderBook()["data"][0]
    assert row["orderid"] == orderid and row["status"] == "complete"
    assert row["averageprice"] == 790.0


def test_parameter_errors_are_refused_synchronously(sdk):
    reply = sdk.placeOrderFullResponse(order(variety="WEIRD"))
    assert reply["status"] is False and reply["errorcode"] == "AB1008" and reply["message"]
    reply = sdk.placeOrderFullResponse(order(ordertag="x" * 20))
    assert reply["errorcode"] == "AB4008"
    assert sdk.placeOrder(order(symboltoken="424242")) is None


def test_unknown_unique_order_id_is_not_found(sdk):
    assert sdk.individual_order_details("123456789012345") is not None
    raw = httpx.get(
        f"{sdk.paper.url}/rest/secure/angelbroking/order/v1/details/123456789012345",
        headers={"Authorization": f"Bearer {sdk.access_token}", "X-PrivateKey": DEMO.api_key},
    ).json()
    assert raw == {"status": False, "message": "Order not found", "errorcode": "AB1007", "data": None}


def test_candle_data_from_the_generated_history(sdk):
    set_price(sdk, 810.0)
    set_price(sdk, 790.0)
    set_price(sdk, 800.0)
    now = datetime.now(IST)
    reply = sdk.getCandleData({
        "exchange": "NSE", "symboltoken": "3045", "interval": "ONE_MINUTE",
        "fromdate": (now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M"),
        "todate": (now + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M"),
    })
    assert reply["status"] is True
    rows = reply["data"]
    assert rows, "the current minute's candle is served"
    stamp, o, h, l, c, v = rows[-1]
    assert stamp.endswith("+05:30")
    assert h >= 810.0 and l <= 790.0 and c == 800.0


def test_bad_candle_interval_is_refused_with_a_message(sdk):
    reply = sdk.getCandleData({
        "exchange": "NSE", "symboltoken": "3045", "interval": "ONE_WEEK",
        "fromdate": "2025-01-01 09:15", "todate": "2025-01-01 15:30",
    })
    assert reply["status"] is False and "interval" in reply["message"]


def test_generate_token_after_a_forced_expiry(sdk):
    assert sdk.paper.control("POST", "/sessions/expire", json={}).status_code == 200
    expired = sdk.orderBook()
    assert expired["errorCode"] == "AG8002" and expired["success"] is False
    renewed = sdk.generateToken(sdk.refresh_token)
    assert renewed["status"] is True
    assert sdk.rmsLimit()["status"] is True


def test_terminate_session_revokes_the_jwt(sdk):
    reply = sdk.terminateSession(DEMO.clientcode)
    assert reply["status"] is True
    after = sdk.orderBook()
    assert after["success"] is False and after["errorCode"] == "AG8001"


def test_rate_limited_replies_are_plain_text(smartapi_module, paper_factory, tmp_path, monkeypatch):
    paper = paper_factory(rate_limits=True)
    monkeypatch.chdir(tmp_path)
    client = smartapi_module.SmartConnect(api_key=DEMO.api_key, root=paper.url)
    client.generateSession(DEMO.clientcode, DEMO.pin, paper.totp())
    client.orderBook()
    with pytest.raises(smartapi_module.ex.DataException, match="Couldn't parse the JSON"):
        client.orderBook()  # getOrderBook allows one call a second


def test_instrument_master_is_served_as_the_real_file_shape(paper):
    rows = httpx.get(f"{paper.url}/OpenAPI_File/files/OpenAPIScripMaster.json", timeout=30).json()
    assert len(rows) > 1000
    keys = {"token", "symbol", "name", "expiry", "strike", "lotsize", "instrumenttype", "exch_seg", "tick_size"}
    assert all(set(row) == keys and all(isinstance(v, str) for v in row.values()) for row in rows)
    nifty = next(r for r in rows if r["token"] == "99926000")
    assert nifty["instrumenttype"] == "AMXIDX" and nifty["exch_seg"] == "NSE"


def test_paper_state_survives_a_restart(paper_factory, tmp_path):
    first = paper_factory()
    body = json.dumps({"clientcode": DEMO.clientcode, "password": DEMO.pin, "totp": first.totp()})
    headers = {"X-PrivateKey": DEMO.api_key, "Content-Type": "application/json"}
    tokens = httpx.post(f"{first.url}/rest/auth/angelbroking/user/v1/loginByPassword", content=body, headers=headers).json()["data"]
    auth = {**headers, "Authorization": f"Bearer {tokens['jwtToken']}"}
    first.control("POST", "/ticks", json={"exchange": "NSE", "token": "3045", "ltp": 800})
    placed = httpx.post(f"{first.url}/rest/secure/angelbroking/order/v1/placeOrder", json=order(), headers=auth).json()
    assert placed["status"] is True
    first.exchange.store.flush()
    # a second exchange opened on the same file reads it all back
    second = paper_factory(db_path=first.config.db_path)
    book = httpx.get(f"{second.url}/rest/secure/angelbroking/order/v1/getOrderBook", headers=auth).json()
    assert book["status"] is True, "the signing key and session survive too"
    assert [r["orderid"] for r in book["data"]] == [placed["data"]["orderid"]]
    positions = httpx.get(f"{second.url}/rest/secure/angelbroking/order/v1/getPosition", headers=auth).json()
    assert positions["data"][0]["netqty"] == "10"
