"""The webhook allowlist: who may call /opentrade and /chartink, directly and through trusted proxies."""
from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.web.allowlist import (
    PRESETS,
    AllowList,
    allowlist_from_settings,
    parse_networks,
)
from service.errors import SettingsError
from service.settings import load_settings
from tests.support.servers import ServerThread

REFUSED = {"errors": [{"field": "client", "reason": "address not allowed"}]}


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path})


def inner() -> Starlette:
    routes = [Route(path, echo, methods=["GET", "POST"]) for path in ("/opentrade", "/chartink", "/trades", "/healthz")]
    return Starlette(routes=routes)


async def call(app, client: str, path: str = "/opentrade", forwarded: list[str] | None = None) -> httpx.Response:
    headers = [("X-Forwarded-For", value) for value in forwarded or ()]
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tickguard") as http:
        return await http.post(path, headers=headers, json={})


def guarded(allow: str, proxies: str = "") -> AllowList:
    return AllowList(inner(), parse_networks(allow), parse_networks(proxies, "TRUSTED_PROXIES"))


@pytest.mark.parametrize("client, allowed", [
    ("10.1.2.3", True), ("10.255.0.1", True), ("11.0.0.1", False), ("192.168.1.7", True), ("192.168.1.8", False),
    ("2001:db8::1", True), ("2001:db9::1", False), ("::1", False), ("::ffff:10.9.9.9", True),
])
async def test_addresses_inside_the_networks_are_allowed(client, allowed):
    app = guarded("10.0.0.0/8, 192.168.1.7, 2001:db8::/32")
    for path in ("/opentrade", "/chartink"):
        reply = await call(app, client, path)
        if allowed:
            assert reply.status_code == 200 and reply.json() == {"path": path}
        else:
            assert reply.status_code == 403 and reply.json() == REFUSED
            assert reply.headers["content-type"] == "application/json"


async def test_other_routes_are_not_checked():
    app = guarded("10.0.0.0/8")
    assert (await call(app, "203.0.113.5", "/trades")).status_code == 200
    assert (await call(app, "203.0.113.5", "/healthz")).status_code == 200
    assert (await call(app, "203.0.113.5", "/opentrade/")).status_code == 403  # a trailing slash is the same route


async def test_an_empty_list_allows_everyone():
    app = guarded("")
    assert (await call(app, "203.0.113.5")).status_code == 200


async def test_the_tradingview_preset():
    app = guarded("TradingView")
    for address in ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"):
        assert (await call(app, address)).status_code == 200
    assert (await call(app, "52.89.214.239")).status_code == 403
    assert [str(n) for n in parse_networks("tradingview, 127.0.0.1")] == [f"{a}/32" for a in PRESETS["tradingview"]] + [
        "127.0.0.1/32"]


async def test_forwarded_for_is_ignored_from_an_untrusted_peer():
    app = guarded("52.89.214.238/32", proxies="127.0.0.1")
    reply = await call(app, "198.51.100.7", forwarded=["52.89.214.238"])
    assert reply.status_code == 403  # anyone can write the header: only a trusted proxy's is believed


async def test_forwarded_for_from_a_trusted_proxy_names_the_client():
    app = guarded("tradingview", proxies="127.0.0.1, ::1, 10.0.0.0/8")
    assert (await call(app, "127.0.0.1", forwarded=["52.89.214.238"])).status_code == 200
    assert (await call(app, "::1", forwarded=["198.51.100.7"])).status_code == 403
    assert (await call(app, "127.0.0.1")).status_code == 403  # the proxy itself is not a webhook sender


async def test_the_right_most_untrusted_address_counts():
    app = guarded("tradingview", proxies="127.0.0.1, 10.0.0.0/8")
    # The client put an allowed address first; the proxies appended the real one.
    spoofed = await call(app, "127.0.0.1", forwarded=["52.89.214.238, 198.51.100.7, 10.0.0.2"])
    assert spoofed.status_code == 403
    chain = await call(app, "127.0.0.1", forwarded=["198.51.100.7, 52.89.214.238", "10.0.0.2"])
    assert chain.status_code == 200  # two header lines are one list; 10.0.0.2 is a trusted hop
    assert (await call(app, "127.0.0.1", forwarded=["10.0.0.3, 10.0.0.2"])).status_code == 403


@pytest.mark.parametrize("forwarded", ["unknown", "52.89.214.238, garbage", ""])
async def test_an_unreadable_forwarded_address_is_refused(forwarded):
    app = guarded("tradingview, 127.0.0.1", proxies="127.0.0.1")
    assert (await call(app, "127.0.0.1", forwarded=[forwarded])).status_code == 403


async def test_forwarded_addresses_with_ports_and_ipv6():
    app = guarded("2001:db8::/32, 203.0.113.0/24", proxies="127.0.0.1")
    assert (await call(app, "127.0.0.1", forwarded=["[2001:db8::7]:443"])).status_code == 200
    assert (await call(app, "127.0.0.1", forwarded=["203.0.113.9:51234"])).status_code == 200
    assert (await call(app, "127.0.0.1", forwarded=["2001:db9::7"])).status_code == 403


def test_bad_networks_are_settings_errors():
    with pytest.raises(SettingsError) as caught:
        parse_networks("10.0.0.0/8, tradingvew, 300.1.1.1")
    assert [reason.split(" is")[0] for _, reason in caught.value.problems] == ["'tradingvew'", "'300.1.1.1'"]


def test_from_settings(tmp_path):
    def settings(**env):
        return load_settings(env, env_file=str(tmp_path / "absent.env"))

    app = inner()
    assert allowlist_from_settings(app, settings()) is app
    wrapped = allowlist_from_settings(app, settings(WEBHOOK_ALLOWLIST="tradingview", TRUSTED_PROXIES="::1"))
    assert isinstance(wrapped, AllowList) and len(wrapped.networks) == 4 and len(wrapped.trusted_proxies) == 1
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        allowlist_from_settings(app, settings(WEBHOOK_ALLOWLIST="::1", TRUSTED_PROXIES="nginx"))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_over_a_real_socket(host):
    allowed = AllowList(inner(), parse_networks("127.0.0.0/8, ::1"))
    with ServerThread(allowed, host=host) as server:
        base = f"http://{'[::1]' if host == '::1' else host}:{server.port}"
        assert httpx.post(f"{base}/opentrade", json={}, timeout=5).status_code == 200
    refused = AllowList(inner(), parse_networks("10.0.0.0/8"))
    with ServerThread(refused, host=host) as server:
        base = f"http://{'[::1]' if host == '::1' else host}:{server.port}"
        reply = httpx.post(f"{base}/chartink", json={}, timeout=5)
        assert reply.status_code == 403 and reply.json() == REFUSED
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
