"""One socket kept up, for both SmartAPI streams (smart-stream and smart-order-update).

    Backoff        exponential backoff with full jitter, reset by a healthy connection
    Reconnector    connect with the handshake headers, run a session, back off, connect again
    StreamEvent    what either stream reports about itself (connected, refused, disconnected…)

Reconnect policy: after any end of a connection (server close, network error, refused handshake, a
stall) wait a delay drawn from [0, min(30 s, 0.5 s x 2^failures)] (full jitter) and connect again;
`failures` resets once a connection has lasted a minute. A 401/403 on the handshake means the
credentials are stale: `renew` (when given) is awaited and the provider asked again, as it is before
every attempt. A login with a source address (the static-IP rule) binds every connection to it. What a new connection sends first (the tick stream's subscriptions) is the session's
business.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from service.broker.smartapi.config import StreamCredentials

__all__ = [
    "Backoff",
    "Credentials",
    "Reconnector",
    "Renew",
    "StreamEvent",
    "handshake_headers",
    "stop_tasks",
]

log = logging.getLogger(__name__)

Credentials = Callable[[], Awaitable[StreamCredentials]]
Renew = Callable[[], Awaitable[None]]


class StreamEvent(msgspec.Struct, frozen=True):
    """connected, subscribed, disconnected, refused, stalled, recovered, malformed, error,
    fallback-ltp, fallback-failed, subscriber-error, stopped — with a human-readable detail, and the
    number of the login's smart-stream socket it is about (0: a stream of its own)."""

    kind: str
    detail: str = ""
    socket: int = 0


class Backoff:
    """Exponential backoff with full jitter; `connected_for` a healthy while resets it."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, healthy_s: float = 60.0,
                 draw: Callable[[], float] = random.random) -> None:
        self.base_s, self.cap_s, self.healthy_s, self._draw = base_s, cap_s, healthy_s, draw
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures, 30))
        self.failures += 1
        return ceiling * self._draw()

    def connected_for(self, seconds: float) -> None:
        if seconds >= self.healthy_s:
            self.failures = 0


def handshake_headers(credentials: StreamCredentials) -> dict[str, str]:
    """The SDK's four headers; the JWT with "Bearer " whether or not the session added it."""
    jwt = credentials.jwt_token
    return {
        "Authorization": jwt if jwt.startswith("Bearer ") else f"Bearer {jwt}",
        "x-api-key": credentials.api_key,
        "x-client-code": credentials.clientcode,
        "x-feed-token": credentials.feed_token,
    }


async def stop_tasks(tasks: list[asyncio.Task], what: str, again_after_s: float = 2.0) -> None:
    """Cancel `tasks` and wait until every one has ended. One still running `again_after_s` after its
    cancel (the cancel was swallowed on its way down) is named in a warning and cancelled again, so a
    stop always ends. Cancelling the stop itself cancels what is left and re-raises."""
    pending = {task for task in tasks if not task.done()}
    try:
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=again_after_s)
            for task in pending:
                frames = task.get_stack(limit=1)
                where = f"{frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else "?"
                log.warning("%s: task %s still running %.0f s after its cancel (at %s); cancelling it again",
                            what, task.get_name(), again_after_s, where)
    except asyncio.CancelledError:
        for task in pending:
            task.cancel()
        raise
    for task in tasks:  # an exception a task ended with is retrieved, as gather(return_exceptions) did
        if not task.cancelled():
            task.exception()


class Reconnector:
    """Keeps one socket up: connect, run `session` on it, and after any end back off and connect again."""

    def __init__(self, url: str, credentials: Credentials, report: Callable[[str, str], None], *,
                 renew: Renew | None = None, backoff: Backoff | None = None, open_timeout_s: float = 7.0,
                 ping_interval_s: float = 10.0, max_queue: int = 1024,
                 connection: type[ClientConnection] = ClientConnection, source_address: str = "") -> None:
        self.url = url
        self.backoff = backoff or Backoff()
        self._credentials, self._renew, self._report = credentials, renew, report
        self._options: dict[str, Any] = {
            "open_timeout": open_timeout_s, "ping_interval": ping_interval_s, "ping_timeout": ping_interval_s,
            "close_timeout": 1.0, "compression": None, "max_queue": max_queue, "user_agent_header": "tickguard",
            "create_connection": connection,
        }
        if source_address:  # the static-IP rule: the login's socket leaves from its own address
            self._options["local_addr"] = (source_address, 0)

    async def run(self, session: Callable[[ClientConnection], Awaitable[str]], down: Callable[[], None]) -> None:
        """Forever (until cancelled): `session` returns why it ended, or raises ConnectionClosed."""
        task = asyncio.current_task()
        while True:
            kind, detail = await self._attempt(session)
            if task is not None and task.cancelling():
                # A cancel that reached the attempt but came out as a failed connection (a library that
                # turned it into a timeout or a closed socket) still ends the loop.
                raise asyncio.CancelledError
            self._report(kind, detail)
            down()
            await asyncio.sleep(self.backoff.next_delay())

    async def _attempt(self, session: Callable[[ClientConnection], Awaitable[str]]) -> tuple[str, str]:
        try:
            credentials = await self._credentials()
        except Exception as exc:  # noqa: BLE001 - the provider's own failure (login, REST): try later
            return "refused", f"no credentials: {exc!r}"
        loop = asyncio.get_running_loop()
        try:
            async with connect(self.url, additional_headers=handshake_headers(credentials), **self._options) as ws:
                opened = loop.time()
                self._report("connected", self.url)
                try:
                    return "disconnected", await session(ws)
                finally:
                    self.backoff.connected_for(loop.time() - opened)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                await self._stale()
            reason = exc.response.headers.get("x-error-message", "")
            return "refused", f"handshake answered HTTP {status} {reason}".rstrip()
        except ConnectionClosed as exc:
            return "disconnected", f"connection closed: {exc}"
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return "disconnected", f"unreachable: {exc!r}"
        except Exception as exc:  # a fault of ours must cost one connection, never the stream
            log.exception("%s: connection ended by an unexpected error", self.url)
            return "disconnected", f"failed: {exc!r}"

    async def _stale(self) -> None:
        if self._renew is None:
            return
        try:
            await self._renew()
        except Exception as exc:  # noqa: BLE001
            self._report("refused", f"renewing the session failed: {exc!r}")
