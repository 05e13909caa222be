"""SmartAPI REST on aiohttp: the session, both error dialects, renewal, pacing and retries.

aiohttp, not httpx, because an exit's placeOrder is on the tick→order path: on this machine httpx
spends about 1.5 ms of client time between the call and the request reaching a local server,
aiohttp about 0.5 ms (its parser and URL handling are compiled). One keep-alive pool per login.

A token error in either dialect (`{"success": false, "errorCode": "AG8001"}` or the `status`
envelope) renews the session once for every caller that saw it — generateTokens with the refresh
token, or a fresh TOTP login when that fails — and the call is repeated once. The plain-text
"exceeding access rate" reply is retried with backoff. Network errors, timeouts and 5xx raise
`BrokerUnavailable`; nothing here retries a placeOrder (see `SmartApiOrders`). An order or GTT route the
broker refuses is logged with the login and its source address.

The account reads SmartAPI allows once or twice a second (positions, order and trade books, funds) are
shared: a caller that asks while a read of the same route is still waiting for its turn gets that
read's answer. Every answer is still read after its caller asked, and twenty exits checking positions
at once cost one or two reads, not twenty seconds.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pyotp

from service.broker.errors import (BrokerError, BrokerUnavailable, LoginFailed, NotMarketData, OrderRefused, RateLimited,
                                   SessionExpired)
from service.broker.smartapi.config import SmartApiConfig, StreamCredentials
from service.broker.smartapi.pacing import OrderPacer, RoutePacer
from service.broker.types import Priority

__all__ = ["SmartApiRest", "ROUTES", "MARKET_DATA_ROUTES", "TOKEN_ERRORS", "RATE_LIMIT_TEXT"]

SECURE = "/rest/secure/angelbroking"
ROUTES: dict[str, tuple[str, str]] = {
    "loginByPassword": ("POST", "/rest/auth/angelbroking/user/v1/loginByPassword"),
    "generateTokens": ("POST", "/rest/auth/angelbroking/jwt/v1/generateTokens"),
    "getProfile": ("GET", f"{SECURE}/user/v1/getProfile"),
    "logout": ("POST", f"{SECURE}/user/v1/logout"),
    "getRMS": ("GET", f"{SECURE}/user/v1/getRMS"),
    "placeOrder": ("POST", f"{SECURE}/order/v1/placeOrder"),
    "modifyOrder": ("POST", f"{SECURE}/order/v1/modifyOrder"),
    "cancelOrder": ("POST", f"{SECURE}/order/v1/cancelOrder"),
    "getOrderBook": ("GET", f"{SECURE}/order/v1/getOrderBook"),
    "getTradeBook": ("GET", f"{SECURE}/order/v1/getTradeBook"),
    "details": ("GET", f"{SECURE}/order/v1/details/"),
    "getPosition": ("GET", f"{SECURE}/order/v1/getPosition"),
    "getHolding": ("GET", f"{SECURE}/portfolio/v1/getHolding"),
    "getLtpData": ("POST", f"{SECURE}/order/v1/getLtpData"),
    "quote": ("POST", f"{SECURE}/market/v1/quote"),
    "getCandleData": ("POST", f"{SECURE}/historical/v1/getCandleData"),
    "searchScrip": ("POST", f"{SECURE}/order/v1/searchScrip"),
    # The SDKs name this route without a leading slash (urljoin onto the root); on Angel's bare-host root
    # that is the same URL as this path.
    "marginBatch": ("POST", f"{SECURE}/margin/v1/batch"),
    "estimateCharges": ("POST", f"{SECURE}/brokerage/v1/estimateCharges"),  # also no leading slash in the SDKs
    # GTT rules, named as smartapi-python names its methods; the SDK calls these three under /gtt-service
    "gttCreateRule": ("POST", f"/gtt-service{SECURE}/gtt/v1/createRule"),
    "gttModifyRule": ("POST", f"/gtt-service{SECURE}/gtt/v1/modifyRule"),
    "gttCancelRule": ("POST", f"/gtt-service{SECURE}/gtt/v1/cancelRule"),
    "gttDetails": ("POST", f"{SECURE}/gtt/v1/ruleDetails"),
    "gttLists": ("POST", f"{SECURE}/gtt/v1/ruleList"),
}
log = logging.getLogger(__name__)

ORDER_ROUTES = frozenset({"placeOrder", "modifyOrder", "cancelOrder"})
# All a market-data login (SmartApiConfig.market_data_only) may send: its session and prices. Not even
# the account's books: that login is not the one traded.
MARKET_DATA_ROUTES = frozenset({"loginByPassword", "generateTokens", "getProfile", "logout",
                                "getLtpData", "quote", "getCandleData", "searchScrip"})
# Routes whose refusal is logged: an order or a GTT rule the broker would not take (a static-IP refusal
# among them) must be visible in the log as well as on the trade.
LOGGED_REFUSALS = ORDER_ROUTES | {"gttCreateRule", "gttModifyRule", "gttCancelRule"}
TOKEN_ERRORS = frozenset({"AG8001", "AG8002", "AG8003"})
RATE_LIMIT_TEXT = b"exceeding access rate"
RATE_LIMIT_RETRIES = 4
NO_SESSION_ROUTES = frozenset({"loginByPassword", "generateTokens"})
SHARED_READS = frozenset({"getPosition", "getOrderBook", "getTradeBook", "getRMS"})


@dataclass(frozen=True)
class _Tokens:
    jwt: str
    refresh: str
    feed: str


class SmartApiRest:
    def __init__(self, config: SmartApiConfig, *, clock: Callable[[], float] = time.time,
                 trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self.config = config
        self.clock = clock
        self.trace_configs = list(trace_configs)  # aiohttp request hooks (tracing, tests)
        self.root = config.root.rstrip("/")
        self._http: aiohttp.ClientSession | None = None  # made on first use, inside the running loop
        self._closed = False
        self.routes = RoutePacer()
        self.orders = OrderPacer(config.orders_per_second_per_segment)
        self._tokens: _Tokens | None = None
        self._generation = 0  # bumped on every new session, so one renewal serves all who saw it fail
        self._renewing = asyncio.Lock()
        self.renewals = 0
        self.logins = 0
        self.rate_limit_retries = 0
        self._waiting_reads: dict[str, asyncio.Future] = {}  # route -> the shared read not yet sent
        self._reads: set[asyncio.Task] = set()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise BrokerUnavailable("the broker client is closed")
        if self._http is None or self._http.closed:
            # A login with a source address binds it (the static-IP rule): its orders leave from that IP.
            address = self.config.source_address
            connector = aiohttp.TCPConnector(local_addr=(address, 0)) if address else None
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                                               trace_configs=self.trace_configs or None, connector=connector)
        return self._http

    async def close(self) -> None:
        self._closed = True  # a late caller (a background refresh) must not open a session nobody closes
        for task in list(self._reads):
            task.cancel()
        await asyncio.gather(*self._reads, return_exceptions=True)
        await self.orders.close()
        if self._http is not None:
            await self._http.close()

    # Session ---------------------------------------------------------------------------------------
    async def login(self) -> None:
        code = pyotp.TOTP(self.config.totp_secret).at(self.clock())
        body = {"clientcode": self.config.clientcode, "password": self.config.pin, "totp": code}
        try:
            data = await self._send("loginByPassword", body, Priority.QUERY)
        except OrderRefused as exc:
            raise LoginFailed(exc.message, exc.errorcode, route="loginByPassword") from None
        self._adopt(data)
        self.logins += 1

    async def credentials(self) -> StreamCredentials:
        """What the sockets authenticate with; logs in first when there is no session yet."""
        if self._tokens is None:
            await self._renew(self._generation, full=True)
        assert self._tokens is not None
        return StreamCredentials(self.config.clientcode, self.config.api_key, f"Bearer {self._tokens.jwt}", self._tokens.feed)

    async def renew(self) -> None:
        """Force a renewal (a socket refused our token)."""
        await self._renew(self._generation)

    def _adopt(self, data: Any) -> None:
        if not isinstance(data, dict) or not data.get("jwtToken"):
            raise SessionExpired("the broker's login answer carried no tokens")
        self._tokens = _Tokens(data["jwtToken"], data.get("refreshToken", ""), data.get("feedToken", ""))
        self._generation += 1

    async def _renew(self, seen: int, *, full: bool = False) -> None:
        async with self._renewing:
            if self._generation != seen and self._tokens is not None:
                return  # another caller renewed while we waited
            if self._tokens is not None and self._tokens.refresh and not full:
                try:
                    self._adopt(await self._send("generateTokens", {"refreshToken": self._tokens.refresh}, Priority.QUERY))
                    self.renewals += 1
                    return
                except BrokerError:
                    pass  # the refresh token is spent too: log in again
            await self.login()

    # Calls -----------------------------------------------------------------------------------------
    async def call(self, route: str, body: dict[str, Any] | None = None, *, priority: Priority = Priority.QUERY,
                   segment: str = "", ttl_s: float | None = None, suffix: str = "") -> Any:
        """One REST call: the `data` of a successful answer, or a typed BrokerError."""
        if self.config.market_data_only and route not in MARKET_DATA_ROUTES:
            raise NotMarketData(route, self.config.clientcode)  # at once, before any order slot is waited for
        if route in SHARED_READS and body is None and not suffix:
            return await self._shared_read(route, priority)
        return await self._call(route, body, priority=priority, segment=segment, ttl_s=ttl_s, suffix=suffix)

    async def _shared_read(self, route: str, priority: Priority) -> Any:
        waiting = self._waiting_reads.get(route)
        if waiting is None:
            waiting = self._waiting_reads[route] = asyncio.get_running_loop().create_future()
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody left to read it is fine
            task = asyncio.create_task(self._read_for_all(route, waiting, priority), name=f"shared-{route}")
            self._reads.add(task)
            task.add_done_callback(self._reads.discard)
        return await asyncio.shield(waiting)

    async def _read_for_all(self, route: str, answer: asyncio.Future, priority: Priority) -> None:
        def sent() -> None:  # from here on a new caller needs a newer read
            if self._waiting_reads.get(route) is answer:
                del self._waiting_reads[route]

        try:
            data = await self._call(route, None, priority=priority, on_turn=sent)
        except asyncio.CancelledError:
            sent()
            answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller sharing the read gets its error
            sent()
            answer.set_exception(exc)
        else:
            answer.set_result(data)

    async def _call(self, route: str, body: dict[str, Any] | None, *, priority: Priority, segment: str = "",
                    ttl_s: float | None = None, suffix: str = "", on_turn: Callable[[], None] | None = None) -> Any:
        if self._tokens is None:
            await self._renew(self._generation, full=True)
        if route in ORDER_ROUTES:
            await self.orders.acquire(segment, priority, ttl_s)
        for attempt in range(2):
            seen = self._generation
            try:
                return await self._send(route, body, priority, suffix=suffix, paced=route not in ORDER_ROUTES,
                                        on_turn=on_turn)
            except SessionExpired:
                if attempt:
                    raise
                await self._renew(seen)
        raise AssertionError("unreachable")

    async def _send(self, route: str, body: dict[str, Any] | None, priority: Priority, *, suffix: str = "",
                    paced: bool = True, on_turn: Callable[[], None] | None = None) -> Any:
        method, path = ROUTES[route]
        if self.config.market_data_only and route not in MARKET_DATA_ROUTES:
            raise NotMarketData(route, self.config.clientcode)
        for retry in range(RATE_LIMIT_RETRIES + 1):
            if paced:
                await self.routes.acquire(route)
            if on_turn is not None:
                on_turn()
            try:
                async with self.http.request(method, self.root + path + suffix, headers=self._headers(route),
                                             data=json.dumps(body) if method == "POST" else None) as reply:
                    status, content = reply.status, await reply.read()
            except asyncio.TimeoutError:
                raise BrokerUnavailable("the broker did not answer in time", route=route) from None
            except aiohttp.ClientConnectorError as exc:
                raise BrokerUnavailable(f"cannot reach the broker{self._from}: {exc.os_error}", route=route) from None
            except aiohttp.ClientError as exc:
                raise BrokerUnavailable(f"cannot reach the broker: {exc.__class__.__name__}", route=route) from None
            if RATE_LIMIT_TEXT in content[:200] and status in (200, 403, 429):
                self.rate_limit_retries += 1
                await asyncio.sleep(0.25 * 2**retry)
                continue
            return self._read(route, status, content)
        raise RateLimited("the broker kept refusing for rate", route=route)

    @property
    def _from(self) -> str:
        return f" from {self.config.source_address}" if self.config.source_address else ""

    def _headers(self, route: str) -> dict[str, str]:
        address = self.config.source_address or "127.0.0.1"  # the broker reads the login's address here
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-ClientLocalIP": address,
            "X-ClientPublicIP": address,
            "X-MACAddress": "00:00:00:00:00:00",
            "X-PrivateKey": self.config.api_key,
            "X-UserType": "USER",
            "X-SourceID": "WEB",
        }
        if self._tokens is not None and route != "loginByPassword":
            headers["Authorization"] = f"Bearer {self._tokens.jwt}"
        return headers

    def _read(self, route: str, status: int, content: bytes) -> Any:
        if status >= 500:
            raise BrokerUnavailable(f"the broker answered HTTP {status}", _code(content), route=route)
        try:
            payload = json.loads(content)
        except ValueError:
            raise BrokerUnavailable(f"the broker answered HTTP {status} with no JSON", route=route) from None
        if not isinstance(payload, dict):
            raise BrokerUnavailable("the broker answered with an unexpected JSON shape", route=route)
        code = str(payload.get("errorcode") or payload.get("errorCode") or "")
        message = str(payload.get("message") or "no message")
        if code in TOKEN_ERRORS and route not in NO_SESSION_ROUTES:
            raise SessionExpired(message, code, route=route)
        if payload.get("status") is True or payload.get("success") is True:
            return payload.get("data")
        if code == "AG8004":
            raise LoginFailed(message, code, route=route)
        if route in LOGGED_REFUSALS:
            log.warning("the broker refused %s for %s%s: %s [%s]", route, self.config.clientcode, self._from,
                        message, code or "no code")
        raise OrderRefused(message, code, route=route)


def _code(content: bytes) -> str:
    try:
        payload = json.loads(content)
    except ValueError:
        return ""
    return str(payload.get("errorcode") or payload.get("errorCode") or "") if isinstance(payload, dict) else ""
