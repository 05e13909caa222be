"""The executor's side of the stop engine, and trade versions onto the bus.

`RemoteGuard` stands where execution expects the guard (`service.guard.Guard`) in an executor: the
engine runs in the guard shards, which learn of every trade from its published versions (an entry
fill arms it there, an exit fill reduces or confirms it). What execution asks of the guard locally —
which trades are armed, their last armed version for the exit's quick path, a close that the engine
would have fired — is answered from what this executor has seen.

`TradePublisher` puts every trade version a process stores onto the bus, in the order stored, with
the message id `t<id>v<version>` (a version published twice is stored once).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from service.cluster.bus import Bus
from service.cluster.commands import encode, trade_shard
from service.errors import SettingsError
from service.settings import Settings
from service.trades import TradeRecord
from streams import ExitIntent, ExitReason, Phase, StopState

__all__ = ["RemoteGuard", "TradePublisher", "require_store"]

log = logging.getLogger("tickguard.cluster")
FRESH_S = 0.2  # an intent's tick prices its first exit order, not a chase's re-pricing (EXIT_CHASE_MS later)


def require_store(settings: Settings) -> None:
    """Every role of a cluster shares one PostgreSQL store: refuse to start without DATABASE_URL."""
    if not settings.database_url:
        raise SettingsError([("DATABASE_URL", "the cluster's roles share one PostgreSQL store: set it")])


class RemoteGuard:
    """The guard as an executor sees it (see the module's docstring)."""

    def __init__(self, on_exit: Callable[[ExitIntent], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._on_exit = on_exit
        self._clock = clock
        self.records: dict[int, TradeRecord] = {}  # armed trades as last armed or reduced here
        self._ticks: dict[tuple[str, str], tuple[int, float]] = {}  # the prices intents came with, and when

    def heard(self, intent: ExitIntent) -> None:
        """An intent's tick: the exit is priced from it (fresh) instead of a REST read."""
        if intent.tick is not None:
            self._ticks[(intent.tick.exchange, intent.tick.token)] = (intent.tick.ltp, self._clock())

    def arm(self, record: TradeRecord, resume_stop: int | None = None, resume_trailing: bool = False) -> None:
        self.records[record.id] = record

    def reduce(self, record: TradeRecord, quantity: int, exit_price: int) -> None:
        if record.id in self.records:
            self.records[record.id] = record

    def confirm(self, trade_id: int, exit_price: int) -> None:
        self.records.pop(trade_id, None)

    def disarm(self, trade_id: int) -> None:
        self.records.pop(trade_id, None)

    def close(self, trade_id: int, reason: str = "MANUAL") -> None:
        """What the engine would fire for a close it is told of, fired here (the shard's engine sees the
        trade EXITING; an intent it fires meanwhile finds the exit already working)."""
        self._on_exit(ExitIntent(trade_id=trade_id, reason=ExitReason(reason), level=None, tick=None))

    def armed(self, trade_id: int) -> bool:
        return trade_id in self.records

    def stop_state(self, trade_id: int) -> StopState | None:
        record = self.records.get(trade_id)
        if record is None:
            return None
        return StopState(trade_id=trade_id, phase=Phase.ARMED, stop=record.stop, target=record.target,
                         trail_active=False, trailed=False)

    def last_price(self, exchange: str, token: str) -> int | None:
        """The price of the intent that fired an exit on this instrument, for up to FRESH_S; else None
        (the guard shards hold the ticks: execution asks the broker, as for a chase's re-pricing)."""
        heard = self._ticks.get((exchange, token))
        if heard is None or self._clock() - heard[1] > FRESH_S:
            return None
        return heard[0]

    def set_limit(self, limit: Any) -> None:
        """Loss limits are held by the guard shards' engines (README: what the cluster leaves out)."""

    def restore_day(self, restored: Any) -> None:
        """As `set_limit`."""


class TradePublisher:
    """Trade versions onto the bus, in the order they were stored (one task drains a queue)."""

    def __init__(self, bus: Bus, shards: int) -> None:
        self.bus = bus
        self.shards = shards
        self._queue: asyncio.Queue[TradeRecord] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.published = 0

    def subject(self, trade: TradeRecord) -> str:
        return self.bus.subject("evt", "trade", str(trade_shard(trade, self.shards)), str(trade.id))

    def __call__(self, trade: TradeRecord) -> None:
        self._queue.put_nowait(trade)
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="trade-versions")

    async def _drain(self) -> None:
        while True:
            trade = await self._queue.get()
            while True:
                try:
                    await self.bus.publish(self.subject(trade), encode(trade), msg_id=f"t{trade.id}v{trade.version}")
                    self.published += 1
                    self._queue.task_done()
                    break
                except Exception as exc:  # the bus is away: the client reconnects; try the same version again
                    log.warning("trade version not published yet", extra={"trade_id": trade.id, "error": repr(exc)})
                    await asyncio.sleep(0.2)

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until every queued version is published (at stop)."""
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()

    async def stop(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
