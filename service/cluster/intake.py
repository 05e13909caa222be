"""`tickguard intake`: the webhooks, the read API, the browser feed and the dashboard of a cluster.

Alerts are validated, deduplicated, decided and committed to the shared PostgreSQL store as in
`tickguard serve` (a strategy's decisions serialised by a PostgreSQL lock, so any number of intakes
decide as one). The decision's order commands are written into the outbox in the alert's own
transaction (`OutboxDispatch`) and published to each login's command queue afterwards — by this
intake at once, or by any intake's sweep if this one died in between. A trade is closed by the
operator the same way: a `Close` command through the outbox.

What an intake shows comes over the bus: every trade version stored anywhere (the feed reads the
events after it from the store), service events (`evt.note.<kind>`: an alert refused, a halt) and
the guard leaders' prices (`px.<exchange>.<token>`, not stored).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from service.charges.setting import charging
from service.accounts.directory import AccountDirectory
from service.accounts.model import Account
from service.alerts.dispatch import Accepted, Opened, asked_quantity
from service.alerts.intake import Intake
from service.alerts.plan import Plan
from service.alerts.strategies import Strategy, load_strategies
from service.brokers import brokers_from_settings
from service.cluster.bus import Bus, Message
from service.cluster.commands import Close, Enter, Reduce, encode, login_part, read_trade, trade_login
from service.cluster.outbox import Outbox
from service.cluster.remote import RemoteGuard, require_store
from service.errors import SettingsError
from service.execution.config import ExecConfig
from service.halts import Halts
from service.limits import EngineLimits
from service.listeners import Listeners
from service.market_calendar import CalendarWatch
from service.metrics import Metrics
from service.notify import Notifier
from service.operator import OperatorSwitch
from service.plugins import PluginBoard
from service.runtime import calendar_from_settings, exec_config, live_prices
from service.settings import Settings
from service.startup import Readiness
from service.store import Store
from service.symbols import SymbolBook
from service.trades import TradeRecord
from streams import SessionClock

__all__ = ["IntakeRole", "OutboxDispatch"]

log = logging.getLogger("tickguard.intake")


class OutboxDispatch:
    """An accepted alert's entries, closes and part-exits as commands in the outbox, in its transaction."""

    def __init__(self, bus: Bus, outbox: Outbox, default_login: str) -> None:
        self.bus = bus
        self.outbox = outbox
        self.default_login = default_login

    def subject(self, trade: TradeRecord | None) -> str:
        return self.bus.subject("cmd", self.default_login if trade is None else trade_login(trade, self.default_login))

    def add(self, db: Any, trade_id: int, command: Enter | Close | Reduce, now_ms: int) -> None:
        Outbox.add(db, subject=self.subject(Store.load_trade(db, trade_id)), msg_id=command.msg_id(),
                   payload=encode(command), now_ms=now_ms)

    def in_transaction(self, db: Any, plan: Plan, accepted: Accepted, opened: Opened, now_ms: int) -> None:
        cause = f"alert-{accepted.alert_id}"
        for trade_id, account, target in opened:
            self.add(db, trade_id, Enter(trade=trade_id, fund=account.fund, quantity=asked_quantity(plan, target),
                                         accepted_ms=now_ms), now_ms)
        for trade_id in accepted.closing:
            self.add(db, trade_id, Close(trade=trade_id, reason="SIGNAL", cause=cause), now_ms)
        for trade_id, units in accepted.reducing:
            self.add(db, trade_id, Reduce(trade=trade_id, units=units, reason="SIGNAL", cause=cause), now_ms)

    def after_commit(self, plan: Plan, accepted: Accepted, opened: Opened) -> None:
        self.outbox.kick()


NO_LOSS_LIMITS = "daily loss limits are not enforced by a cluster yet (README: Running as a cluster)"


class ClusterIntake(Intake):
    """The intake, refusing what a cluster cannot yet keep: an entry on an account with a daily loss limit."""

    def entry_refusal(self, account: Account | None, strategy: str = "", db: Any = None) -> str:
        if account is not None and account.max_daily_loss is not None:
            return f"the account has a daily loss limit (maxdailyloss): {NO_LOSS_LIMITS}"
        return super().entry_refusal(account, strategy, db)


class _Stops:
    def view(self, trade: TradeRecord) -> None:
        return None  # a broker stop is known to its login's executor; the trade's events tell of it


class Desk:
    """What the web layer asks of execution, in an intake: closes go out as commands."""

    def __init__(self, store: Store, dispatch: OutboxDispatch, clock: Callable[[], float], config: ExecConfig) -> None:
        self.store = store
        self.dispatch = dispatch
        self.clock = clock
        self.config = config
        self.stops = _Stops()
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coroutine: Any, name: str) -> asyncio.Task:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, trade_id: int, command: Close | Reduce) -> None:
        now = int(self.clock() * 1000)
        await self.store.db.write(lambda db: self.dispatch.add(db, trade_id, command, now))
        self.dispatch.outbox.kick()

    async def close(self, trade_id: int, reason: str = "MANUAL") -> None:
        cause = f"operator-{int(self.clock() * 1000)}"
        await self._send(trade_id, Close(trade=trade_id, reason=reason, cause=cause))

    async def reduce(self, trade_id: int, quantity: int, reason: str = "MANUAL") -> None:
        cause = f"operator-{int(self.clock() * 1000)}"
        await self._send(trade_id, Reduce(trade=trade_id, units=quantity, reason=reason, cause=cause))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Prices:
    """The guard leaders' latest prices, as the feed asks the guard for them."""

    def __init__(self, sessions: SessionClock, now_ms: Callable[[], int]) -> None:
        self.sessions = sessions
        self.now_ms = now_ms
        self.latest: dict[tuple[str, str], int] = {}
        self.heard_ms: dict[tuple[str, str], int] = {}  # when this intake heard each price (its arrival)

    def heard(self, message: Message) -> None:
        _prefix, _px, exchange, token = message.subject.rsplit(".", 3)
        try:
            self.latest[(exchange, token)] = int(message.data)
        except ValueError:
            return
        self.heard_ms[(exchange, token)] = self.now_ms()

    def last_price(self, exchange: str, token: str) -> int | None:
        return self.latest.get((exchange, token))

    def last_seen(self, exchange: str, token: str) -> tuple[int, int] | None:
        """(price, when it arrived here) — a leader sends a price only when it moved, so an unchanged one
        ages here and the price check reads it from the broker instead."""
        price = self.latest.get((exchange, token))
        return None if price is None else (price, self.heard_ms[(exchange, token)])

    def entries_open(self, exchange: str) -> bool:
        return self.sessions.entries_open(exchange, self.now_ms())


class IntakeRole:
    """The runtime an intake's web app runs on (`service.web.app.create_app(settings, runtime)`)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        require_store(settings)
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.listeners = Listeners()
        self.store = Store(settings.database_url)
        self.charging = charging(settings.brokerage, settings.charges_schedule)  # P&L net of charges
        self.bus = Bus(settings.nats_url, settings.cluster_name, lease_ttl_s=settings.failover_s / 2, name="intake")
        self.outbox = Outbox(self.store, self._publish)
        self.broker, others = brokers_from_settings(settings)  # REST only: symbol searches
        self.symbols = SymbolBook(settings, search=self._search)
        self.strategies: dict[str, Strategy] = load_strategies(settings.strategies_file)
        limited = sorted(name for name, strategy in self.strategies.items() if strategy.max_daily_loss is not None)
        if limited:
            raise SettingsError([("STRATEGIES_FILE", f"{', '.join(limited)} set max_daily_loss: {NO_LOSS_LIMITS}")])
        self.accounts = AccountDirectory(settings, clock=clock)
        market, calendar = calendar_from_settings(settings)
        self.sessions = SessionClock(calendar)
        self.guard = Prices(self.sessions, self.now_ms)
        self.calendar_watch = CalendarWatch(market, lambda: set(), self.now_ms)
        self.plugins = PluginBoard([], metrics=self.metrics, announce=self.listeners.announce)
        self.halts = Halts(self.store, self.now_ms, self._announce)
        self.dispatch = OutboxDispatch(self.bus, self.outbox, login_part(settings.smartapi_user))
        self.trader = Desk(self.store, self.dispatch, clock, exec_config(settings))
        self.intake = ClusterIntake(settings=settings, store=self.store, symbols=self.symbols, strategies=self.strategies,
                             accounts=self.accounts, entries_open=self.guard.entries_open,
                             leverage=self.trader.config.leverage, dispatch=self.dispatch, halts=self.halts,
                             limits=EngineLimits(RemoteGuard(on_exit=lambda intent: None)), metrics=self.metrics,
                             announce=self._announce, logins=set(others), clock=clock,
                             prices=live_prices(settings, self.guard.last_seen, self.broker.ltp, self.sessions,
                                                self.now_ms),
                             entry_window=lambda exchange: self.sessions.entry_window(exchange, self.now_ms()))
        self.operator = OperatorSwitch(store=self.store, halts=self.halts, trader=self.trader, metrics=self.metrics,
                                       announce=self._announce)
        self._follows: list[Any] = []
        self.notifier = Notifier(settings, clock=clock)
        self.origin = uuid.uuid4().hex
        self.readiness = Readiness()  # /healthz

    @property
    def halted(self) -> bool:
        return self.halts.global_halt

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _publish(self, subject: str, payload: bytes, msg_id: str) -> bool:
        return await self.bus.publish(subject, payload, msg_id=msg_id)

    async def _search(self, exchange: str, text: str) -> list[dict[str, str]]:
        hits = await self.broker.search(exchange, text)
        return [{"exchange": h.exchange, "tradingsymbol": h.tradingsymbol, "symboltoken": h.token} for h in hits]

    def _announce(self, kind: str, data: dict[str, Any]) -> None:
        """A service event: to this intake's listeners now, to the other intakes over the bus."""
        self.listeners.announce(kind, data)
        self.notifier.on_event(kind, data)  # this intake's own events only: each told once
        payload = msgspec.json.encode({"kind": kind, "data": data, "origin": self.origin}, enc_hook=str)
        asyncio.get_running_loop().create_task(self._note(kind, payload))

    async def _note(self, kind: str, payload: bytes) -> None:
        try:
            await self.bus.notify(self.bus.subject("note", kind), payload)
        except Exception as exc:
            log.warning("service event not shared with the other intakes", extra={"kind": kind, "error": repr(exc)})

    async def _heard_trade(self, message: Message) -> None:
        trade = read_trade(message.subject, message.data)
        if trade is not None:
            self.listeners.trade_changed(trade)

    async def _heard_note(self, message: Message) -> None:
        note = msgspec.json.decode(message.data)
        if note.get("origin") == self.origin:
            return  # this intake's own: its listeners heard it already
        if note["kind"] in ("halt", "loss_limit", "loss_resumed"):
            await self.halts.restore()  # another intake (or a guard) changed a halt: read them again
        self.listeners.announce(note["kind"], note["data"])

    # Life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.notifier.start()
        await self.bus.connect()
        await asyncio.to_thread(self.store.open)
        await self.halts.restore()
        await self.broker.connect()
        await self.symbols.open()
        self._follows.append(await self.bus.follow(f"{self.bus.prefix}.evt.trade.>", self._heard_trade))
        self._follows.append(await self.bus.listen(f"{self.bus.prefix}.note.*", self._heard_note))
        self._follows.append(await self.bus.listen(f"{self.bus.prefix}.px.*.*", self.guard.heard))
        await self.outbox.start()
        self.outbox.kick()  # rows another intake left unpublished

    async def stop(self) -> None:
        await self.outbox.stop()
        await self.trader.stop()
        await self.notifier.stop()
        for follow in self._follows:
            await follow.stop()
        for step in (self.symbols.close, self.broker.close, self.accounts.close, self.store.close, self.bus.close):
            try:
                await step()
            except Exception:
                log.exception("error while stopping")
