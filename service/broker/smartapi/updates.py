"""The smart-order-update stream (SmartWebSocketOrderUpdate) as the port's `OrderUpdateStream`.

The socket pushes `{"order-status": "ABxx", "orderData": <order-book row>}`: AB00 once on connect
(reported as `ready`), AB01…AB11 as `OrderUpdate(code, order)`. Nothing missed while it is down is
ever replayed, so the order book fills the gap: polled at once when the socket goes down, every
`poll_every_s` while it stays down, once right after every (re)connect, and every
`reconcile_every_s` while it is up (a socket can also lose updates silently). Rows that changed
since last seen come out as `OrderUpdate("POLL", order)`; a polled row never takes an order back
to an older state than the socket already reported. Polls are at least `min_poll_gap_s` apart (a
second by default: SmartAPI allows getOrderBook once a second). The socket is kept up as the tick
stream's is (`reconnect.py`).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from reactivex import Observable
from reactivex.subject import Subject
from websockets.asyncio.client import ClientConnection

from service.broker.smartapi.config import SmartApiConfig
from service.broker.smartapi.reconnect import (
    Backoff,
    Credentials,
    Reconnector,
    Renew,
    StreamEvent,
    stop_tasks,
)
from service.broker.smartapi.rows import order_from_row
from service.broker.types import TERMINAL_STATUSES, BrokerOrder, OrderUpdate

__all__ = ["CONNECTED", "MIN_POLL_GAP_S", "POLL", "OrderUpdates"]

log = logging.getLogger(__name__)

CONNECTED = "AB00"
POLL = "POLL"
MIN_POLL_GAP_S = 1.0
PollOrders = Callable[[], Awaitable[list[BrokerOrder]]]
_State = tuple[Any, ...]


def _state(order: BrokerOrder) -> _State:
    """What makes a row news: status, fills and the order's own terms (not its time stamp or text)."""
    return (order.status, order.filled, order.cancelled, order.average_price, order.quantity, order.price,
            order.trigger_price)


class OrderUpdates:
    """`OrderUpdateStream` on SmartAPI's smart-order-update socket, with the order book as its fallback."""

    def __init__(self, config: SmartApiConfig, credentials: Credentials, poll_orders: PollOrders, *,
                 renew: Renew | None = None, backoff: Backoff | None = None, poll_every_s: float = 2.0,
                 reconcile_every_s: float | None = 60.0, ping_s: float = 10.0,
                 min_poll_gap_s: float = MIN_POLL_GAP_S) -> None:
        self.config = config
        self.min_poll_gap_s = min_poll_gap_s  # SmartAPI's getOrderBook limit; tests shorten it
        self.poll_every_s = max(poll_every_s, min_poll_gap_s)
        self.reconcile_every_s = reconcile_every_s
        self._poll = poll_orders
        self._updates: Subject[OrderUpdate] = Subject()
        self._events: Subject[StreamEvent] = Subject()
        self._seen: dict[str, _State] = {}  # order id -> its last state we emitted
        self._down = asyncio.Event()
        self._polling = asyncio.Lock()
        self._last_poll = float("-inf")
        self._tasks: list[asyncio.Task] = []
        self._link = Reconnector(config.order_update_url, credentials, self._report, renew=renew, backoff=backoff,
                                 open_timeout_s=config.timeout_s, ping_interval_s=ping_s,
                                 source_address=config.source_address)

    @property
    def updates(self) -> Observable[OrderUpdate]:
        return self._updates

    @property
    def events(self) -> Observable[StreamEvent]:
        return self._events

    @property
    def down(self) -> bool:
        """True while the socket is down (the order book is polled every `poll_every_s`)."""
        return self._down.is_set()

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._link.run(self._session, self._down.set), name="order-updates"),
                asyncio.create_task(self._poll_loop(), name="order-updates-poll"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks, "order updates")
        self._down.clear()
        if tasks:
            self._report("stopped", "")

    def _report(self, kind: str, detail: str = "") -> None:
        try:
            self._events.on_next(StreamEvent(kind, detail))
        except Exception:  # an event observer's failure must not end the stream
            log.exception("order-update event observer failed on %s", kind)

    def _emit(self, update: OrderUpdate) -> None:
        self._seen[update.order.order_id] = _state(update.order)
        try:
            self._updates.on_next(update)
        except Exception as exc:  # noqa: BLE001
            self._report("subscriber-error", f"an order-update observer raised {exc!r}")

    # The socket ----------------------------------------------------------------------------------------
    async def _session(self, ws: ClientConnection) -> str:
        self._down.clear()
        catch_up = asyncio.create_task(self.poll_once("reconnected"))
        try:
            while True:
                self._on_message(await ws.recv())
        finally:
            catch_up.cancel()

    def _on_message(self, message: str | bytes) -> None:
        try:
            body = json.loads(message)
            code, row = body["order-status"], body["orderData"]
            if code == CONNECTED:
                self._report("ready", f"AB00 for {body.get('user-id', '')}")
                return
            order = order_from_row(row)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._report("malformed", f"order update {str(message)[:80]!r}: {exc!r}")
            return
        self._emit(OrderUpdate(str(code), order))

    # The order book --------------------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while True:
            if self._down.is_set():
                await asyncio.sleep(self.poll_every_s)
                if self._down.is_set():
                    await self.poll_once("socket down")
                continue
            try:
                async with asyncio.timeout(self.reconcile_every_s):
                    await self._down.wait()
                why = "socket down"
            except TimeoutError:
                why = "reconcile"
            await self.poll_once(why)

    async def poll_once(self, why: str = "asked") -> int:
        """Poll the order book now (at most once every `min_poll_gap_s`); emit rows that changed.
        Returns how many."""
        async with self._polling:
            loop = asyncio.get_running_loop()
            wait = self._last_poll + self.min_poll_gap_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                orders = await self._poll()
            except Exception as exc:  # noqa: BLE001
                self._report("poll-failed", f"{why}: {exc!r}")
                return 0
            finally:
                self._last_poll = loop.time()
            changed = [order for order in orders if self._news(order)]
            for order in changed:
                self._emit(OrderUpdate(POLL, order))
            self._report("polled", f"{why}: {len(orders)} orders, {len(changed)} changed")
            return len(changed)

    def _news(self, order: BrokerOrder) -> bool:
        last = self._seen.get(order.order_id)
        state = _state(order)
        if last is None:
            return True
        if last == state:
            return False
        # A book fetched before an update arrived must not take the order back in time.
        if last[0] in TERMINAL_STATUSES and order.status not in TERMINAL_STATUSES:
            return False
        return order.filled >= last[1]
