"""`SmartApiBroker`: the `Broker` port on SmartAPI, for live trading and the paper exchange alike."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from service.broker.errors import BrokerError, BrokerUnavailable, NotMarketData, OrderRefused, PlacementUnknown
from service.broker.port import OrderUpdateStream, Progress, TickStream
from service.broker.smartapi.charges import charges_body, read_charges
from service.broker.smartapi.config import SmartApiConfig
from service.broker.smartapi.gtt import cancel_body, create_body, modify_body, rule_from_row, rule_id_of
from service.broker.smartapi.rest import SmartApiRest
from service.broker.smartapi.rows import (
    candle_from_row,
    fill_from_row,
    funds_from_rms,
    hit_from_row,
    order_from_row,
    paise,
    position_from_row,
)
from service.broker.types import (
    BrokerOrder,
    Candle,
    ChargeLeg,
    EstimatedCharges,
    Fill,
    Funds,
    GttRequest,
    GttRule,
    GttStatus,
    MarginLeg,
    OrderAck,
    OrderKind,
    OrderRequest,
    Position,
    Priority,
    SearchHit,
)
from streams import Tick

__all__ = ["SmartApiBroker", "MASTER_PATH", "LOOKUP_ATTEMPTS"]

MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
LOOKUP_ATTEMPTS = 3  # order-book looks after a placeOrder timeout before sending again
GTT_PAGE = 100  # rules asked per ruleList page
GTT_MAX_PAGES = 50
GTT_NOT_FOUND = ("AB9001",)  # the paper exchange's "rule not found"; SmartAPI publishes no meanings for AB90xx
QUOTE_BATCH = 50


def _rupees(paise_value: int) -> str:
    return f"{paise_value / 100:.2f}"


class SmartApiBroker:
    def __init__(self, config: SmartApiConfig, *, clock: Callable[[], float] = time.time,
                 trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self.config = config
        self.clock = clock
        self.rest = SmartApiRest(config, clock=clock, trace_configs=trace_configs)
        self._ticks: TickStream | None = None
        self._updates: OrderUpdateStream | None = None

    async def connect(self) -> None:
        await self.rest.login()

    async def close(self) -> None:
        for stream in (self._ticks, self._updates):
            if stream is not None:
                await stream.stop()
        await self.rest.close()

    # Orders ----------------------------------------------------------------------------------------
    def _order_body(self, request: OrderRequest) -> dict[str, Any]:
        body = {
            "variety": request.variety,
            "tradingsymbol": request.tradingsymbol,
            "symboltoken": request.token,
            "transactiontype": str(request.side),
            "exchange": request.exchange,
            "ordertype": str(request.kind),
            "producttype": request.product,
            "duration": request.duration,
            "price": _rupees(request.price) if request.kind in (OrderKind.LIMIT, OrderKind.STOPLOSS_LIMIT) else "0",
            "quantity": str(request.quantity),
        }
        if request.kind in (OrderKind.STOPLOSS_LIMIT, OrderKind.STOPLOSS_MARKET):
            body["triggerprice"] = _rupees(request.trigger_price)
        if request.tag:
            body["ordertag"] = request.tag
        return body

    async def place_order(self, request: OrderRequest, priority: Priority = Priority.ENTRY) -> OrderAck:
        """Place once. After a timeout or 5xx, find the order by its tag. An entry not found is sent once
        more; an exit not found is `PlacementUnknown` at once: it may still appear, and sending it again
        could sell twice, so the trader settles it (two order-book reads DOUBT_SETTLE_S apart)."""
        if len(request.tag) >= 20:
            raise OrderRefused("ordertag must be under 20 characters", "AB4008", route="placeOrder", field="tag")
        ttl = self.config.entry_ttl_s if priority == Priority.ENTRY else None
        body = self._order_body(request)
        for attempt in range(2):
            try:
                data = await self.rest.call("placeOrder", body, priority=priority, segment=request.exchange, ttl_s=ttl)
                return OrderAck(str(data["orderid"]), str(data.get("uniqueorderid") or ""))
            except BrokerUnavailable:
                if not request.tag:
                    raise PlacementUnknown("placeOrder failed in transit and the order has no tag to look for",
                                           tag="", route="placeOrder") from None
                found = await self._look_for(request.tag)
                if found is not None:
                    return OrderAck(found.order_id, found.unique_order_id)
                if attempt or priority == Priority.EXIT:
                    raise PlacementUnknown(f"placeOrder failed and no order tagged {request.tag} was found",
                                           tag=request.tag, route="placeOrder") from None
        raise AssertionError("unreachable")

    async def _look_for(self, tag: str) -> BrokerOrder | None:
        for attempt in range(LOOKUP_ATTEMPTS):
            try:
                matches = await self.find_orders(tag)
            except BrokerError:
                matches = []
            if matches:
                return matches[-1]
            if attempt + 1 < LOOKUP_ATTEMPTS:
                await asyncio.sleep(0.5)
        return None

    async def modify_order(self, order_id: str, request: OrderRequest, priority: Priority = Priority.EXIT) -> OrderAck:
        body = {**self._order_body(request), "orderid": order_id}
        body.pop("ordertag", None)
        data = await self.rest.call("modifyOrder", body, priority=priority, segment=request.exchange)
        return OrderAck(str(data.get("orderid") or order_id), str(data.get("uniqueorderid") or ""))

    async def cancel_order(self, order_id: str, variety: str = "NORMAL", priority: Priority = Priority.EXIT,
                           exchange: str = "") -> OrderAck:
        data = await self.rest.call("cancelOrder", {"variety": variety, "orderid": order_id},
                                    priority=priority, segment=exchange)
        return OrderAck(str(data.get("orderid") or order_id), str(data.get("uniqueorderid") or ""))

    async def order_book(self) -> list[BrokerOrder]:
        return [order_from_row(row) for row in await self.rest.call("getOrderBook") or []]

    async def order(self, unique_order_id: str) -> BrokerOrder | None:
        try:
            row = await self.rest.call("details", suffix=unique_order_id)
        except OrderRefused as exc:
            if exc.errorcode in ("AB1007", "AB1013"):
                return None
            raise
        return order_from_row(row) if isinstance(row, dict) else None

    async def find_orders(self, tag: str) -> list[BrokerOrder]:
        return [order for order in await self.order_book() if order.tag == tag]

    async def trade_book(self) -> list[Fill]:
        return [fill_from_row(row) for row in await self.rest.call("getTradeBook") or []]

    async def positions(self) -> list[Position]:
        return [position_from_row(row) for row in await self.rest.call("getPosition") or []]

    async def funds(self) -> Funds:
        return funds_from_rms(await self.rest.call("getRMS") or {})

    # GTT rules --------------------------------------------------------------------------------------
    # Not orders: they pace in their own routes' windows (10/s), where `priority` has no queue to jump.
    async def create_gtt(self, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        return rule_id_of(await self.rest.call("gttCreateRule", create_body(request), priority=priority), "gttCreateRule")

    async def modify_gtt(self, rule_id: str, request: GttRequest, priority: Priority = Priority.EXIT) -> str:
        data = await self.rest.call("gttModifyRule", modify_body(rule_id, request), priority=priority)
        return rule_id_of(data, "gttModifyRule")

    async def cancel_gtt(self, rule_id: str, exchange: str, token: str, priority: Priority = Priority.EXIT) -> None:
        await self.rest.call("gttCancelRule", cancel_body(rule_id, exchange, token), priority=priority)

    async def gtt_rule(self, rule_id: str) -> GttRule | None:
        try:
            data = await self.rest.call("gttDetails", {"id": rule_id})
        except OrderRefused as exc:
            if exc.errorcode in GTT_NOT_FOUND:
                return None
            raise
        if not isinstance(data, dict) or not data:
            return None
        return rule_from_row({"id": rule_id, **data})

    async def gtt_rules(self, statuses: Sequence[GttStatus] = (GttStatus.NEW, GttStatus.ACTIVE)) -> list[GttRule]:
        """Every page of ruleList: until a short or empty page, or one that brings no rule not seen yet
        (a broker that ignored `page` would otherwise be asked forever)."""
        rules: dict[str, GttRule] = {}
        for page in range(1, GTT_MAX_PAGES + 1):
            body = {"status": [str(s) for s in statuses], "page": page, "count": GTT_PAGE}
            rows = await self.rest.call("gttLists", body) or []
            fresh = [rule for rule in (rule_from_row(row, "gttLists") for row in rows) if rule.rule_id not in rules]
            rules.update((rule.rule_id, rule) for rule in fresh)
            if len(rows) < GTT_PAGE or not fresh:
                break
        return list(rules.values())

    async def margin(self, legs: Sequence[MarginLeg]) -> int:
        """`data.totalMarginRequired` of the margin batch route, in paise. The reply's shape is not in
        SmartAPI's published docs: it is the field clients commonly read (an assumption; see the README)."""
        positions = [{"exchange": leg.exchange, "qty": leg.quantity, "price": leg.price / 100,
                      "productType": leg.product, "token": leg.token, "tradeType": str(leg.side),
                      "orderType": "LIMIT" if leg.price else "MARKET"} for leg in legs]
        data = await self.rest.call("marginBatch", {"positions": positions})
        if not isinstance(data, dict) or data.get("totalMarginRequired") in (None, ""):
            raise BrokerUnavailable("the margin reply carried no totalMarginRequired", route="marginBatch")
        return paise(data["totalMarginRequired"])

    async def estimate_charges(self, legs: Sequence[ChargeLeg]) -> EstimatedCharges:
        """The broker's charges for these executed orders (`estimateCharges`), rupees by component."""
        return read_charges(await self.rest.call("estimateCharges", charges_body(legs)))

    # Market data ----------------------------------------------------------------------------------
    async def ltp(self, exchange: str, tradingsymbol: str, token: str) -> int:
        data = await self.rest.call("getLtpData", {"exchange": exchange, "tradingsymbol": tradingsymbol, "symboltoken": token})
        return paise(data["ltp"])

    async def circuit_limits(self, exchange: str, token: str) -> tuple[int, int] | None:
        """Today's (lower, upper) circuit band in paise from a FULL quote; None where there is none."""
        data = await self.rest.call("quote", {"mode": "FULL", "exchangeTokens": {exchange: [token]}})
        for row in (data or {}).get("fetched", []):
            lower, upper = paise(row.get("lowerCircuit")), paise(row.get("upperCircuit"))
            if 0 < lower < upper:
                return lower, upper
        return None

    async def quote_ticks(self, instruments: list[tuple[str, str]]) -> list[Tick]:
        """Last prices over REST, 50 a request: the tick stream's fallback while its socket is down."""
        ticks: list[Tick] = []
        now_ms = int(self.clock() * 1000)
        for start in range(0, len(instruments), QUOTE_BATCH):
            batch: dict[str, list[str]] = {}
            for exchange, token in instruments[start:start + QUOTE_BATCH]:
                batch.setdefault(exchange, []).append(token)
            data = await self.rest.call("quote", {"mode": "LTP", "exchangeTokens": batch})
            for row in (data or {}).get("fetched", []):
                ticks.append(Tick(str(row["symbolToken"]), str(row["exchange"]), paise(row["ltp"]), now_ms))
        return ticks

    async def candles(self, exchange: str, token: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        body = {"exchange": exchange, "symboltoken": token, "interval": interval,
                "fromdate": start.strftime("%Y-%m-%d %H:%M"), "todate": end.strftime("%Y-%m-%d %H:%M")}
        return [candle_from_row(row) for row in await self.rest.call("getCandleData", body) or []]

    async def search(self, exchange: str, text: str) -> list[SearchHit]:
        return [hit_from_row(row) for row in await self.rest.call("searchScrip", {"exchange": exchange, "searchscrip": text}) or []]

    async def instrument_master(self, progress: Progress | None = None) -> bytes:
        url = self.config.master_url or f"{self.config.root.rstrip('/')}{MASTER_PATH}"
        chunks: list[bytes] = []
        try:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
            async with self.rest.http.get(url, timeout=timeout) as reply:
                if reply.status != 200:
                    raise BrokerUnavailable(f"instrument master: HTTP {reply.status}", route="master")
                total = int(reply.headers.get("content-length") or 0) or None
                received = 0
                async for chunk in reply.content.iter_any():
                    chunks.append(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received, total)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BrokerUnavailable(f"instrument master: {exc.__class__.__name__}", route="master") from None
        return b"".join(chunks)

    # Streams --------------------------------------------------------------------------------------
    def tick_stream(self) -> TickStream:
        if self._ticks is None:
            from service.broker.smartapi.feeds import LoginFeed

            # Up to `stream_sockets` smart-stream sockets, opened as the instruments need them. REST prices
            # every 0.25 s for a socket's instruments while it is degraded: a stop crossed during an outage
            # fires within that, and the quote route's own pacing (10/s, 50 instruments a request) keeps
            # every socket's fallback together within SmartAPI's limit.
            self._ticks = LoginFeed(self.config, self.rest.credentials, self.quote_ticks, renew=self.rest.renew,
                                    fallback_every_s=0.25)
        return self._ticks

    def order_update_stream(self) -> OrderUpdateStream:
        if self.config.market_data_only:
            raise NotMarketData("smart-order-update", self.config.clientcode)
        if self._updates is None:
            from service.broker.smartapi.updates import OrderUpdates

            self._updates = OrderUpdates(self.config, self.rest.credentials, self.order_book, renew=self.rest.renew)
        return self._updates
