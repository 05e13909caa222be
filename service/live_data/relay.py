"""The paper relay: the live market's ticks into the paper exchange, every traded instrument watched first.

    watch(pairs)    the market-data stream subscribed to these pairs (held for as long as the service
                    runs) and the paper exchange told to price them from outside: its random walk off,
                    an order on one waiting for the first live price. Awaited before an order on an
                    instrument is sent (`orders.WatchedBroker`), so the exchange always has, or waits
                    for, a live price to fill at
    each tick       of the market-data stream, forwarded in the order it came: the paper exchange
                    trades at it, and fills market, limit and stop orders and GTT rules against it
    caught_up()     returns once every tick received so far has reached the paper exchange (or been
                    given up): awaited before each order, so an exit fired by a tick never meets the
                    price before that tick at the exchange

Before it starts, the relay renews the feed session (`renew`): every instrument the paper exchange
prices from outside waits for a price of this run — the last one it had may be from before a restart,
or yesterday.

Two ways to the paper exchange (`PaperPrices`): in-process when it runs beside the service (`tickguard
serve` without PAPER_URL: a call on its `paper.outside.OutsidePrices`, on the same event loop), or its
control API (POST /paper/v1/outside/watch and /outside/ticks) when it runs on its own. Ticks go in
batches, one at a time: whatever arrived while one was on its way is the next.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import aiohttp

from service.broker import LIVE_STATUSES, Broker, BrokerError, BrokerUnavailable
from service.broker.port import TickStream
from service.errors import SettingsError
from streams import Tick

__all__ = ["PaperRelay", "PaperPrices", "HttpPaperPrices", "LocalPaperPrices", "MAX_PENDING"]

log = logging.getLogger("tickguard.live_data")

Pair = tuple[str, str]
Row = tuple[str, str, int]  # exchange, token, ltp in paise
MAX_PENDING = 50_000  # ticks waiting for the paper exchange; past it, only each instrument's latest is kept
ROUTE = "paper outside prices"
OUTSIDE = "/paper/v1/outside"
BATCH = 10_000  # prices or instruments a request (the paper exchange's own limit)


class PaperPrices(Protocol):
    """Where the relay sends: the paper exchange's outside prices."""

    async def renew(self) -> None:
        """A new feed session: what is priced from outside waits for a fresh price."""

    async def watch(self, pairs: list[Pair]) -> list[Pair]:
        """Price `pairs` from outside; returns the pairs the paper exchange does not list."""

    async def prices(self, rows: list[Row]) -> None: ...

    async def close(self) -> None: ...


class LocalPaperPrices:
    """The paper exchange running in this process (its `OutsidePrices`, on this event loop)."""

    def __init__(self, outside: Any) -> None:
        self._outside = outside

    async def renew(self) -> None:
        self._outside.renew()

    async def watch(self, pairs: list[Pair]) -> list[Pair]:
        return list(self._outside.watch(pairs))

    async def prices(self, rows: list[Row]) -> None:
        self._outside.apply(rows)

    async def close(self) -> None:
        return None


class HttpPaperPrices:
    """A paper exchange of its own (PAPER_URL), through its control API."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/") + OUTSIDE
        self.timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            async with self._http.post(self.base_url + path, json=body) as reply:
                answer = await reply.json(content_type=None)
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise BrokerUnavailable(f"the paper exchange's outside prices: {exc.__class__.__name__}", route=ROUTE) from None
        if status == 403:  # a paper exchange of tickguard in live mode: it takes no price from outside
            raise SettingsError([("PAPER_URL", f"{self.base_url.removesuffix(OUTSIDE)} refuses outside prices "
                                               f"(its control API is off): {answer}")])
        if status != 200 or not isinstance(answer, dict):
            raise BrokerUnavailable(f"the paper exchange's outside prices answered HTTP {status}: {answer}", route=ROUTE)
        return answer

    async def renew(self) -> None:
        await self._post("/renew", {})

    async def watch(self, pairs: list[Pair]) -> list[Pair]:
        unknown: list[Pair] = []
        for start in range(0, len(pairs), BATCH):
            batch = [{"exchange": e, "token": t} for e, t in pairs[start:start + BATCH]]
            answer = await self._post("/watch", {"instruments": batch})
            unknown += [tuple(text.split(":", 1)) for text in answer.get("unknown", [])]  # type: ignore[misc]
        return unknown

    async def prices(self, rows: list[Row]) -> None:
        for start in range(0, len(rows), BATCH):
            await self._post("/ticks", {"ticks": [list(row) for row in rows[start:start + BATCH]]})

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


class PaperRelay:
    def __init__(self, ticks: TickStream, paper: PaperPrices) -> None:
        self.ticks = ticks  # a holder of the market-data stream (`ticks.TickHolder`), the guard holding another
        self.paper = paper
        self.watched: set[Pair] = set()
        self.forwarded = 0
        self.dropped = 0  # ticks the paper exchange could not be given (it did not answer)
        self._received = 0  # ticks taken from the stream
        self._settled = 0  # of those, delivered or given up
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._pending: list[Row] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task | None = None
        self._subscription: Any = None

    async def renew(self) -> None:
        """A new feed session at the paper exchange (call before `start`; raises a `BrokerError` while it
        cannot be reached)."""
        await self.paper.renew()

    async def start(self, brokers: Sequence[Broker] = ()) -> None:
        """Forward ticks from now on, and watch the instruments of the orders still working at the
        paper exchange (placed before a restart: their stops and limits need live prices too)."""
        self._subscription = self.ticks.ticks.subscribe(self._on_tick)
        self._sender = asyncio.create_task(self._send(), name="paper-relay")
        for broker in brokers:
            try:
                await self.watch([(o.exchange, o.token) for o in await broker.order_book() if o.status in LIVE_STATUSES])
            except BrokerError as exc:  # each is watched again when tickguard next sends an order on it
                log.warning("working orders not watched for the live prices they need", extra={"error": exc.message})

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.dispose()
            self._subscription = None
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        self._settle(self._received - self._settled)  # nobody waits on a relay that has stopped
        await self.paper.close()

    async def watch(self, pairs: Iterable[Pair]) -> None:
        """Subscribe the market data to `pairs` and have the paper exchange price them from it. Raises
        (a `BrokerError`) when either cannot be done: nothing should trade on them then."""
        new = list(dict.fromkeys((exchange, str(token)) for exchange, token in pairs if (exchange, str(token))
                                 not in self.watched))
        if not new:
            return
        self.ticks.subscribe(new)  # the stream's refusal (past its sockets' 1000 instruments each) raises here
        unknown = await self.paper.watch(new)
        if unknown:
            log.warning("the paper exchange does not list instruments the market data has; orders on them "
                        "will be refused there", extra={"instruments": [f"{e}:{t}" for e, t in unknown]})
        self.watched.update(new)

    async def caught_up(self) -> None:
        """Once every tick received until now has reached the paper exchange, or been given up."""
        if self._settled >= self._received or self._sender is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._received, waiter))
        await waiter

    def _on_tick(self, tick: Tick) -> None:
        pending = self._pending
        pending.append((tick.exchange, tick.token, tick.ltp))
        self._received += 1
        if len(pending) >= MAX_PENDING:  # the paper exchange is far behind: the latest price of each is enough
            latest = {(e, t): (e, t, ltp) for e, t, ltp in pending}
            self.dropped += len(pending) - len(latest)
            self._settle(len(pending) - len(latest))
            self._pending = list(latest.values())
        self._wake.set()

    def _settle(self, count: int) -> None:
        self._settled += count
        if self._waiters:
            waiting = []
            for target, waiter in self._waiters:
                if target <= self._settled:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    waiting.append((target, waiter))
            self._waiters = waiting

    async def _send(self) -> None:
        failing = False
        while True:
            await self._wake.wait()
            self._wake.clear()
            rows, self._pending = self._pending, []
            if not rows:
                continue
            try:
                await self.paper.prices(rows)
            except Exception as exc:  # noqa: BLE001 - the relay keeps going whatever one batch met
                self.dropped += len(rows)
                if not failing:
                    log.warning("live prices not delivered to the paper exchange",
                                extra={"error": exc.message if isinstance(exc, BrokerError) else repr(exc)})
                failing = True
            else:
                if failing:
                    log.info("live prices reach the paper exchange again")
                failing = False
                self.forwarded += len(rows)
            finally:
                self._settle(len(rows))
