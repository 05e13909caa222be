"""`tickguard guard --shard i/n`: the stop engine for the instruments of one shard, one leader at a time.

Every process of a shard logs in to the market-data login at start (a REST session, no socket) and
waits for the shard's lease (`service.cluster.lease`). The one that holds it leads:

1. it notes where the trade-version stream stands, reads the shard's OPEN trades and their resumable
   stops from the store (what the executors have reconciled by order tag) and arms them;
2. it follows the shard's trade versions from the noted point (an entry fill arms, an exit fill
   reduces, a settled trade is confirmed; a version no newer than one seen is ignored, so the overlap
   between the snapshot and the stream is harmless);
3. only then does it open the tick socket and subscribe its instruments.

Exit intents go to the owning login's executor as `Exit` commands carrying the lease token; the
engine's changes (levels armed, a trail moved, rules refused) are stored as trade events and published.
Nothing is sent or stored once the lease is not held: a leader that finds its lease lost — a renewal
refused, or a pause longer than the lease — stops acting and exits (its supervisor starts it again as a
standby). Executors refuse intents with an older token than the newest they know.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from service.brokers import brokers_from_settings
from service.changes import EngineChanges
from service.cluster.bus import Bus, Message
from service.cluster.commands import Exit, encode, login_part, read_trade, trade_login, trade_shard
from service.cluster.lease import Lease
from service.cluster.remote import TradePublisher, require_store
from service.errors import SettingsError
from service.execution.journal import Journal
from service.exits import ExitCode
from service.guard import Guard
from service.halts import Halts
from service.plugins import PluginBoard, load_plugins
from service.metrics import Metrics
from service.runtime import calendar_from_settings
from service.settings import Settings
from service.store import Store
from service.trades import OPEN_STATES, TradeRecord, TradeState
from streams import ExitIntent, StateChange

__all__ = ["LOST_EXIT_CODE", "ShardGuard", "parse_shard"]

log = logging.getLogger("tickguard.guardian")
LOST_EXIT_CODE = ExitCode.LEASE_LOST  # the process's exit status when its lease was lost: its supervisor restarts it
PRICE_INTERVAL_S = 0.1
ARM_SLICE = 100  # trades armed at a takeover between two turns of the event loop (~10-25 ms of work)


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` (0 <= i < n <= 64) as (i, n)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SettingsError([("--shard", f"expected i/n such as 0/2, not {text!r}")]) from None
    if not 0 <= index < count <= 64:
        raise SettingsError([("--shard", f"expected 0 <= i < n <= 64, not {text!r}")])
    return index, count


class ShardGuard:
    def __init__(self, settings: Settings, shard: int, shards: int, *, clock: Callable[[], float] = time.time) -> None:
        require_store(settings)
        if shards != settings.guard_shards:
            raise SettingsError([("--shard", f"{shards} shards, but GUARD_SHARDS is {settings.guard_shards}: "
                                             "every role must agree on the shard count")])
        self.settings = settings
        self.shard, self.shards = shard, shards
        self.clock = clock
        self.name = f"guard-{shard}-of-{shards}"
        self.bus = Bus(settings.nats_url, settings.cluster_name, lease_ttl_s=settings.failover_s / 2, name=self.name)
        self.store = Store(settings.database_url)
        self.broker, _others = brokers_from_settings(settings)  # market data: the default login's
        self.default_login = login_part(settings.smartapi_user)
        self.lease = Lease(self.bus, self.name, holder=f"{socket.gethostname()}:{os.getpid()}")
        self.publisher = TradePublisher(self.bus, shards)
        self.journal = Journal(self.store, self.now_ms, self._published)
        self.metrics = Metrics()
        self.halts = Halts(self.store, self.now_ms, lambda kind, data: None)
        self.plugins = PluginBoard(load_plugins(settings), metrics=self.metrics, announce=lambda kind, data: None)
        _market, calendar = calendar_from_settings(settings)
        self.guard = Guard(self.broker.tick_stream(), on_exit=self._on_exit, on_change=self._on_change,
                           calendar=calendar, stale_ms=round(settings.stale_tick_s * 1000), clock=clock,
                           plugins=self.plugins.operators, on_plugin=self.plugins.on_change)
        self.changes = EngineChanges(self.store, self.halts, record=self._record, now_ms=self.now_ms, spawn=self._spawn)
        self.seen: dict[int, TradeRecord] = {}
        self.fired: Counter[int] = Counter()
        self.token: int | None = None
        self.dropped = 0  # intents and changes not acted on because the lease was no longer held
        self._tasks: set[asyncio.Task] = set()
        self._follow: Any = None
        self._started = False

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def leading(self) -> bool:
        return self.lease.held()

    # Life cycle -------------------------------------------------------------------------------------
    async def standby(self) -> None:
        """Everything a takeover needs that holds no socket: the bus, the store, the broker's session."""
        await self.bus.connect()
        await asyncio.to_thread(self.store.open)
        await self.broker.connect()

    async def lead(self) -> None:
        """Wait for the lease, then take the shard over (the module's docstring, steps 1-3)."""
        self.token = await self.lease.acquire(poll_s=min(0.2, self.settings.failover_s / 10))
        log.info("leading the shard", extra={"shard": self.name, "epoch": self.token})
        after = await self.bus.last_seq("EVT")
        stops = await self.store.stop_states()
        ours = [t for t in await self.store.trades(states=[TradeState.OPEN])
                if t.filled and trade_shard(t, self.shards) == self.shard]
        for count, trade in enumerate(ours, start=1):
            state = stops.get(trade.id, {})
            self._apply(trade, state.get("stop"), bool(state.get("trailed")))
            if count % ARM_SLICE == 0:
                await asyncio.sleep(0)  # a large shard: the lease's renewal must not starve meanwhile
        self._follow = await self.bus.follow(f"{self.bus.prefix}.evt.trade.{self.shard}.>", self._heard,
                                             after_seq=after)
        await self.guard.start()
        self._started = True
        self._spawn(self._send_prices(), "prices")

    async def run(self) -> int:
        """Stand by, lead until the lease is lost; the process's exit status."""
        await self.standby()
        log.info("guard standing by", extra={"shard": self.name})
        await self.lead()
        await self.lease.lost.wait()
        log.error("the shard's lease is lost: this guard acts no more", extra={"shard": self.name, "epoch": self.token})
        return LOST_EXIT_CODE

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._follow is not None:
            await self._follow.stop()
        if self._started:
            await self.guard.stop()
        if self.lease.held():
            await self.lease.release()
        await self.publisher.stop()
        for step in (self.broker.close, self.store.close, self.bus.close):
            try:
                await step()
            except Exception:
                log.exception("error while stopping")

    # Trade versions in ------------------------------------------------------------------------------
    async def _heard(self, message: Message) -> None:
        trade = read_trade(message.subject, message.data)
        if trade is not None:
            self._apply(trade)

    def _apply(self, trade: TradeRecord, resume_stop: int | None = None, resume_trailing: bool = False) -> None:
        """A trade's version into the engine (the newest seen wins; see the module's docstring)."""
        before = self.seen.get(trade.id)
        if before is not None and trade.version <= before.version:
            return
        self.seen[trade.id] = trade
        guard = self.guard
        if trade.state is TradeState.OPEN and trade.open_quantity > 0:
            if not guard.armed(trade.id):
                guard.arm(trade, resume_stop, resume_trailing)
            elif before is not None and trade.exited > before.exited:
                units = trade.exited - before.exited
                guard.reduce(trade, units, (trade.exit_value - before.exit_value) // units)
            elif before is None or trade.filled != before.filled:
                guard.arm(trade)  # a later entry fill: the engine amends the quantity
        elif trade.state not in OPEN_STATES:
            if guard.armed(trade.id):
                guard.confirm(trade.id, int(trade.exit_price or trade.entry_price or 0))
            self.fired.pop(trade.id, None)  # (its version stays seen: a late older one must not re-arm it)

    # What the engine decides, out ---------------------------------------------------------------------
    def _on_exit(self, intent: ExitIntent) -> None:
        trade = self.seen.get(intent.trade_id)
        if trade is None or self.token is None or not self.leading():
            self.dropped += 1
            return
        self.fired[intent.trade_id] += 1
        login = trade_login(trade, self.default_login)
        command = Exit(intent=intent, lease=self.name, token=self.token, fired=self.fired[intent.trade_id])
        self._spawn(self._send(self.bus.subject("cmd", login), command), f"exit-{intent.trade_id}")

    async def _send(self, subject: str, command: Exit) -> None:
        payload, msg_id = encode(command), command.msg_id()
        while self.leading():
            try:
                await self.bus.publish(subject, payload, msg_id=msg_id)
                return
            except Exception as exc:  # the bus is away for a moment: the client reconnects
                log.warning("exit intent not published yet", extra={"msg_id": msg_id, "error": repr(exc)})
                await asyncio.sleep(0.05)
        self.dropped += 1

    def _on_change(self, change: StateChange) -> None:
        if not self.leading():
            self.dropped += 1
            return
        self.changes.on_change(change)

    async def _record(self, trade_id: int, kind: str, **data: Any) -> TradeRecord | None:
        if not self.leading():
            self.dropped += 1
            return None
        known = self.seen.get(trade_id)
        if kind == "armed" and known is not None and (known.stop, known.target) == (data.get("stop"), data.get("target")):
            return known  # a takeover re-arming at the stored levels: nothing new (thousands of writes saved)
        return await self.journal.record(trade_id, kind, **data)

    def _published(self, trade: TradeRecord) -> None:
        before = self.seen.get(trade.id)
        if before is None or trade.version > before.version:
            self.seen[trade.id] = trade
        self.publisher(trade)

    async def _send_prices(self) -> None:
        """The latest price of each instrument guarded here, for the intakes' feeds (at most 10 a second,
        only those that moved; not stored: a price missed is replaced by the next)."""
        sent: dict[tuple[str, str], int] = {}
        while True:
            await asyncio.sleep(PRICE_INTERVAL_S)
            for exchange, token in {(t.exchange, t.token) for t in self.guard.records.values()}:
                price = self.guard.last_price(exchange, token)
                if price is not None and sent.get((exchange, token)) != price:
                    sent[(exchange, token)] = price
                    await self.bus.notify(self.bus.subject("px", exchange, token), str(price).encode())
