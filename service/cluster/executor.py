"""`tickguard executor --login CODE`: one login's broker session, order pacer, placements and
order-update socket, fed by that login's commands on the bus.

It starts as `tickguard serve` does for orders — the store, the broker login, the order-update socket,
then recovery by order tag of this login's trades only (`OwnedStore`) — and only then consumes. The
durable consumer is made afresh at start: a command a killed executor had taken but not acknowledged
comes back at once, not after the acknowledgement wait. Each command is acknowledged once its
outcome is stored (`Acks`): an entry once its first order is at the broker or the trade is settled,
a close or an exit once the trade is no longer open. Handling is idempotent on the state it finds, so
a command delivered twice acts once.

An `Exit` carries the guard shard's lease token; one older than the newest this executor knows for
that shard (`Fence`) is refused: a guard leader that was paused past its lease acts no more.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats.js.errors

from service.accounts.credentials import load_logins
from service.brokers import brokers_from_settings
from service.cluster.bus import Bus, Message
from service.cluster.commands import Close, Command, Enter, Exit, Reduce, decode_command, login_part, read_trade, trade_login
from service.cluster.lease import Fence
from service.cluster.remote import RemoteGuard, TradePublisher, require_store
from service.errors import SettingsError
from service.execution import Trader
from service.metrics import Metrics
from service.notify import Notifier
from service.recovery import RecoveryParts, recover
from service.runtime import calendar_from_settings, exec_config
from service.settings import Settings
from service.store import OrderRecord, Store
from service.trades import OPEN_STATES, TradeRecord, TradeState
from streams import SessionClock

__all__ = ["ExecutorRole", "OwnedStore"]

log = logging.getLogger("tickguard.executor")

_NOT_OPEN = frozenset(TradeState) - OPEN_STATES | {TradeState.EXITING}  # settled, or an exit working


class OwnedStore:
    """The store as recovery sees it in an executor: only the trades (and their orders) of its login."""

    def __init__(self, store: Store, owns: Callable[[TradeRecord], bool]) -> None:
        self._store = store
        self._owns = owns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def trades(self, **query: Any) -> list[TradeRecord]:
        return [t for t in await self._store.trades(**query) if self._owns(t)]

    async def live_orders(self) -> list[OrderRecord]:
        orders, owned = await self._store.live_orders(), {}
        for order in orders:
            if order.trade_id not in owned:
                trade = await self._store.trade(order.trade_id)
                owned[order.trade_id] = trade is not None and self._owns(trade)
        return [o for o in orders if owned[o.trade_id]]


class Acks:
    """Commands waiting for their outcome to be stored, acknowledged as the trade's versions show it."""

    def __init__(self) -> None:
        self._waiting: dict[int, list[tuple[Callable[[TradeRecord], Awaitable[bool]], Message]]] = {}

    def wait(self, trade_id: int, done: Callable[[TradeRecord], Awaitable[bool]], message: Message) -> None:
        self._waiting.setdefault(trade_id, []).append((done, message))

    async def check(self, trade: TradeRecord) -> None:
        waiting = self._waiting.get(trade.id)
        if not waiting:
            return
        for item in list(waiting):
            done, message = item
            if not await done(trade):
                continue
            current = self._waiting.get(trade.id)
            if current is None or item not in current:
                continue  # another look at the trade (it ran while this one awaited) acknowledged it
            current.remove(item)
            if not current:
                del self._waiting[trade.id]
            await message.ack()

    def __len__(self) -> int:
        return sum(len(v) for v in self._waiting.values())


class ExecutorRole:
    def __init__(self, settings: Settings, login: str, *, clock: Callable[[], float] = time.time) -> None:
        require_store(settings)
        self.settings = settings
        self.clock = clock
        default, others = brokers_from_settings(settings)
        self.login = login_part(login)
        self.default_login = login_part(settings.smartapi_user)
        known = {self.default_login, *others}
        if self.login not in known:
            raise SettingsError([("--login", f"{login} is neither SMARTAPI_USER nor in CREDENTIALS_FILE "
                                             f"({', '.join(sorted(known))})")])
        self.broker = default if self.login == self.default_login else others[self.login]
        self.bus = Bus(settings.nats_url, settings.cluster_name, lease_ttl_s=settings.failover_s / 2,
                       name=f"executor-{self.login}")
        self.store = Store(settings.database_url)
        self.metrics = Metrics()
        self.remote = RemoteGuard(on_exit=lambda intent: self.trader.on_exit_intent(intent))
        self.trader = Trader(self.store, self.broker, self.remote, clock=clock, config=exec_config(settings),
                             metrics=self.metrics, on_trade=self._published)
        if self.login != self.default_login:
            self.trader.brokers = {self.login: self.broker}
        self.book_key = "" if self.login == self.default_login else self.login
        _market, calendar = calendar_from_settings(settings)
        self.sessions = SessionClock(calendar)
        self.trader.stops.session_open = lambda exchange: self.sessions.is_open(exchange, self.now_ms())
        self.publisher = TradePublisher(self.bus, settings.guard_shards)
        self.fence = Fence(self.bus)
        self.notifier = Notifier(settings, clock=clock)  # this login's trades: each told once, by their executor
        self.acks = Acks()
        self.seen: dict[int, int] = {}  # trade id -> newest version seen (stored here or on the bus)
        self.refused_stale = 0
        self.recovery: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []
        self._follow: Any = None
        self._subscriptions: list = []

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def owns(self, trade: TradeRecord) -> bool:
        return trade_login(trade, self.default_login) == self.login

    # Trade versions --------------------------------------------------------------------------------
    def _published(self, trade: TradeRecord) -> None:
        """A version this executor stored: onto the bus, and any command waiting on it acknowledged."""
        self.seen[trade.id] = max(self.seen.get(trade.id, 0), trade.version)
        self.publisher(trade)
        self.notifier.on_trade(trade)
        self.trader.spawn(self.acks.check(trade), f"ack-{trade.id}")

    async def _heard(self, message: Message) -> None:
        """A version another process stored (a guard's levels, a trail): the broker stop follows it."""
        trade = read_trade(message.subject, message.data)
        if trade is None or not self.owns(trade) or trade.version <= self.seen.get(trade.id, 0):
            return
        self.seen[trade.id] = trade.version
        if trade.id in self.remote.records and trade.state is TradeState.OPEN:
            self.remote.records[trade.id] = trade
        self.trader.stops.observe(trade)
        self.notifier.on_trade(trade)  # (an UNPROTECTED trade the guard found is told by its login's executor)
        await self.acks.check(trade)

    # Life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.notifier.start()
        await self.bus.connect()
        await asyncio.to_thread(self.store.open)
        await self.fence.start()
        await self.broker.connect()
        updates = self.broker.order_update_stream()
        self._subscriptions.append(updates.updates.subscribe(
            lambda update: self.trader.on_order_update(update, login=self.book_key)))
        await updates.start()
        after = await self.bus.last_seq("EVT")
        self.recovery = await recover(RecoveryParts(
            store=OwnedStore(self.store, self.owns), brokers=[self.broker], trader=self.trader, guard=self.remote,
            sessions=self.sessions, clock=self.clock, restore_day=_nothing, expire_unsent=False, check_crossed=False))
        await self.trader.book(self.book_key).refresh()
        self._follow = await self.bus.follow(f"{self.bus.prefix}.evt.trade.>", self._heard, after_seq=after)
        self._tasks.append(asyncio.create_task(self._consume(), name=f"commands-{self.login}"))
        log.info("executor ready", extra={"login": self.login, **self.recovery})

    async def run(self) -> int:
        """Start, then serve until cancelled."""
        await self.start()
        print(f"tickguard executor   login {self.login} ready", flush=True)
        await asyncio.Event().wait()
        return 0

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.trader.stop()
        for subscription in self._subscriptions:
            subscription.dispose()
        if self._follow is not None:
            await self._follow.stop()
        await self.publisher.stop()
        await self.fence.stop()
        await self.notifier.stop()
        for step in (self.broker.close, self.store.close, self.bus.close):
            try:
                await step()
            except Exception:
                log.exception("error while stopping")

    # Commands ---------------------------------------------------------------------------------------
    async def _consume(self) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):  # afresh: what a killed executor held comes back now
            await self.bus.js.delete_consumer(self.bus.cmd_stream, f"executor-{self.login}")
        commands = await self.bus.commands(self.login)
        while True:
            # One at a time: a batch fetch of nats-py on this server waits for the rest of its batch (up to
            # ~1 s seen), and an exit must not wait behind it; a login's commands come at order rates.
            for message in await commands.next(batch=1, timeout_s=1.0):
                try:
                    command = decode_command(message.data)
                except msgspec.MsgspecError as exc:
                    log.error("undecodable command dropped", extra={"subject": message.subject, "error": str(exc)})
                    await message.ack()
                    continue
                self.trader.spawn(self._handle(command, message), f"command-{message.seq}")

    async def _handle(self, command: Command, message: Message) -> None:
        trade = await self.store.trade(command.intent.trade_id if isinstance(command, Exit) else command.trade)
        if trade is None or not self.owns(trade):
            log.error("command for a trade this executor does not own", extra={"command": repr(command)})
            await message.ack()
            return
        if isinstance(command, Enter):
            if trade.state is not TradeState.PENDING_ENTRY or await self.store.orders(trade.id):
                await message.ack()  # entered (or settled) already: a command delivered twice acts once
                return
            self.acks.wait(trade.id, self._entry_settled, message)
            self.trader.submit([trade.id], fund=command.fund, requested={trade.id: command.quantity},
                               age_s=max(0.0, self.clock() - command.accepted_ms / 1000),
                               resize=True)  # no order of it is stored: one sized by a killed executor goes now
        elif isinstance(command, Exit):
            if not await self.fence.admits(command.lease, command.token):
                self.refused_stale += 1
                log.warning("exit intent with a stale lease token refused",
                            extra={"trade_id": trade.id, "lease": command.lease, "token": command.token})
                await message.ack()
                return
            if trade.state not in (TradeState.OPEN, TradeState.UNPROTECTED):
                await message.ack()
                return
            self.acks.wait(trade.id, _no_longer_open, message)
            self.remote.heard(command.intent)
            self.trader.on_exit_intent(command.intent)
        elif isinstance(command, Close):
            if trade.state in _NOT_OPEN:
                await message.ack()
                return
            self.acks.wait(trade.id, _no_longer_open, message)
            await self.trader.close(trade.id, command.reason)
        elif isinstance(command, Reduce):
            if trade.state is not TradeState.OPEN:
                await message.ack()
                return
            await self.trader.reduce(trade.id, command.units, command.reason)
            await message.ack()
        await self.acks.check(await self.store.trade(trade.id) or trade)

    async def _entry_settled(self, trade: TradeRecord) -> bool:
        if trade.state is not TradeState.PENDING_ENTRY:
            return True
        return any(o.role == "entry" and o.status != "sending" for o in await self.store.orders(trade.id))


async def _no_longer_open(trade: TradeRecord) -> bool:
    return trade.state in _NOT_OPEN


async def _nothing() -> None:
    return None


def logins_of(settings: Settings) -> list[str]:
    """Every login an executor may run for: SMARTAPI_USER and each of CREDENTIALS_FILE."""
    return sorted({login_part(settings.smartapi_user), *(login_part(l.clientcode) for l in load_logins(settings))})
