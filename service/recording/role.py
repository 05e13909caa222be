"""`tickguard record`: the ticks of the instruments named, recorded until the process is told to stop.

The market-data login `serve` uses (service/brokers.py: the default login's broker) opens its tick
socket, subscribes the instruments given — EXCHANGE:TOKEN pairs, and symbols resolved through the
instrument master — and every tick it delivers is offered to a `Recorder`, as `serve`'s guard offers
it hers. No engine, no orders, no store: a process that only listens.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.brokers import brokers_from_settings
from service.health import DOWN_EVENTS, UP_EVENTS
from service.market_calendar import load_market_calendar
from service.recording.recorder import Recorder, RecorderCounts
from service.settings import Settings
from service.startup import Readiness
from service.symbols import SymbolBook
from streams import SessionClock

__all__ = ["RecordRole"]

log = logging.getLogger("tickguard.recording")


class RecordRole:
    def __init__(self, settings: Settings, root: Path, instruments: Sequence[tuple[str, str]] = (),
                 symbols: Sequence[str] = ()) -> None:
        self.settings = settings
        self.instruments = list(instruments)
        self.symbols = list(symbols)
        self.broker, _others = brokers_from_settings(settings)  # market data: the default login's
        self.stream = self.broker.tick_stream()
        self.recorder = Recorder(root, queue_limit=settings.record_queue)
        self.subscribed: list[tuple[str, str]] = []
        self._subscriptions: list[Any] = []

    async def start(self) -> None:
        """Log in, resolve the symbols, then record from the first tick of the socket."""
        await Readiness().reach(self.settings.smartapi_user, self.broker.connect)  # refused: LoginRefused
        resolved = await self._resolve()
        self.subscribed = list(dict.fromkeys([*self.instruments, *resolved]))
        self._expect_ticks_in_session()
        await asyncio.to_thread(self.recorder.start)
        self._subscriptions.append(self.stream.ticks.subscribe(self.recorder.offer))
        self._subscriptions.append(self.stream.events.subscribe(_log_event))
        self.stream.subscribe(self.subscribed)
        await self.stream.start()

    async def stop(self) -> RecorderCounts:
        """The socket closed first, then every tick it delivered written and the file closed."""
        try:
            await self.stream.stop()
        finally:
            for subscription in self._subscriptions:
                subscription.dispose()
            await asyncio.to_thread(self.recorder.stop)
            await self.broker.close()
        return self.recorder.counts()

    async def _resolve(self) -> list[tuple[str, str]]:
        if not self.symbols:
            return []
        book = SymbolBook(self.settings, isolated=False)  # a lookup or two: no need to parse in a child
        try:
            await book.open()
            found = [book.resolver.lookup(text) for text in self.symbols]
        finally:
            await book.close()
        for text, symbol in zip(self.symbols, found):
            log.info("symbol resolved", extra={"symbol": text, "instrument": f"{symbol.exchange}:{symbol.token}",
                                               "tradingsymbol": symbol.tradingsymbol})
        return [(symbol.exchange, symbol.token) for symbol in found]

    def _expect_ticks_in_session(self) -> None:
        """With exchange hours, a quiet socket outside the session is a closed market, not a stall."""
        if self.settings.market_hours == "always":
            return
        sessions = SessionClock(load_market_calendar(self.settings.holidays_file).calendar)
        self.stream.expect_ticks = lambda exchanges: any(sessions.is_open(exchange, int(time.time() * 1000))
                                                         for exchange in exchanges)


def _log_event(event: Any) -> None:
    """The socket's ups and downs as `serve` logs them (service/health.py); routine news at debug."""
    if event.kind in DOWN_EVENTS and event.kind != "stopped":  # stopped: by us, on the way out
        level = logging.WARNING
    else:
        level = logging.INFO if event.kind in UP_EVENTS else logging.DEBUG
    log.log(level, "tick stream %s", event.kind, extra={"detail": event.detail})
