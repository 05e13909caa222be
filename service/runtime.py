"""The runtime: tickguard's parts built from the settings and wired together — wiring only.

    store ─ symbols ─ brokers (one per login) ─ market data ─ accounts ─ strategies
    (MARKET_DATA=live: the market data a login of its own, the relay of its prices to the paper exchange)
    guard (ticks into the stop engine) ─ engine changes (as trade events) ─ halts
    trader (orders, entries, exits, positions) ─ intake (alerts in) ─ operator switch
    stream health ─ sampler ─ notifier ─ listeners (feed, notifications)
    recorder (RECORD_TICKS: the guard's ticks to disk)

`start` opens them in order — the store, the brokers and their order-update sockets, the guard,
then recovery (trading-semantics §8) before anything is shown as protected — and `stop` closes
whatever had started, also after a failed start.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from decimal import Decimal

from service.charges.setting import charging
from service.accounts.directory import AccountDirectory
from service.alerts.strategies import Strategy, load_strategies
from service.alerts.dispatch import LocalDispatch
from service.alerts.intake import Intake
from service.alerts.prices import LivePrices
from service.brokers import brokers_from_settings, market_data_from_settings
from service.execution import ExecConfig, Trader
from service.execution.backstop_levels import BackupConfig, Buffer
from service.gc_tuning import Heap
from service.guard import Guard
from service.halts import Halts
from service.health import Sampler, StreamHealth
from service.changes import EngineChanges
from service.limits import EngineLimits
from service.listeners import Listeners
from service.live_data import HttpPaperPrices, PaperPrices, PaperRelay, paper_on_live_data
from service.market_calendar import CalendarWatch, MarketCalendar, load_market_calendar
from service.metrics import Metrics
from service.notify import Notifier
from service.operator import OperatorSwitch
from service.plugins import PluginBoard, load_plugins
from service import recording  # its names load pyarrow (~40 MB resident) on first use: only when recording
from service.recovery import RecoveryParts, recover
from service.settings import Settings
from service.startup import Readiness
from service.store import Store
from service.trade_log import TradeLog
from service.symbols import SymbolBook
from streams import Calendar, SegmentHours, SessionClock

__all__ = ["Runtime", "always_open_calendar", "calendar_from_settings", "exec_config", "live_prices"]

log = logging.getLogger("tickguard.runtime")


def always_open_calendar() -> Calendar:
    """The paper market's hours: every day, all day, no square-off (MARKET_HOURS=always)."""
    hours = SegmentHours(dt.time(0, 0), dt.time(23, 59, 59, 999000))
    return Calendar({code: hours for code in ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")}, weekends=True)


class Runtime:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 paper_prices: PaperPrices | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.listeners = Listeners()
        self.store = Store(settings.database_url or settings.tickguard_db)
        self.charging = charging(settings.brokerage, settings.charges_schedule)  # P&L net of charges
        # Accounts naming another client code trade on that login (CREDENTIALS_FILE); market data comes
        # from the default one, or with MARKET_DATA=live from a login of its own while orders go to the
        # paper exchange (service/live_data; `paper_prices`: the embedded exchange's, else its control
        # API). The brokers' TOTP needs the wall clock, whatever `clock` is.
        self.broker, self.logins = brokers_from_settings(settings)
        self.market = market_data_from_settings(settings, self.broker)
        ticks = self.market.tick_stream()
        self.relay: PaperRelay | None = None
        if settings.market_data == "live":
            wired = paper_on_live_data(self.market, self.broker, self.logins,
                                       paper_prices or HttpPaperPrices(settings.paper_base_url))
            self.relay, ticks, self.broker, self.logins = wired.relay, wired.guard_ticks, wired.broker, wired.logins
        self.symbols = SymbolBook(settings, search=self._search)
        self.strategies: dict[str, Strategy] = load_strategies(settings.strategies_file)
        self.accounts = AccountDirectory(settings, clock=clock)
        market, calendar = calendar_from_settings(settings)
        self.plugins = PluginBoard(load_plugins(settings), metrics=self.metrics, announce=self.listeners.announce)
        self.halts = Halts(self.store, self.now_ms, self.listeners.announce)  # every halt and the day's P&L, kept
        self.guard = Guard(ticks, on_exit=self._on_exit, on_change=self._on_change,
                           calendar=calendar, stale_ms=round(settings.stale_tick_s * 1000), clock=clock,
                           plugins=self.plugins.operators, on_plugin=self.plugins.on_change)
        self.recorder: recording.Recorder | None = None
        if settings.record_ticks:
            self.recorder = recording.Recorder(settings.record_dir, queue_limit=settings.record_queue)
            self.guard.record_ticks(self.recorder.offer)
            self.metrics.watch_recording(self.recorder.counts)
        self.sessions = sessions = SessionClock(calendar)  # the engine's calendar, asked outside the engine
        stream = self.guard.stream
        stream.expect_ticks = lambda exchanges: any(sessions.is_open(exchange, self.now_ms()) for exchange in exchanges)
        self.calendar_watch = CalendarWatch(market, lambda: {pair[0] for pair in stream.subscriptions}, self.now_ms)
        self.trader = Trader(self.store, self.broker, self.guard, clock=clock, config=exec_config(settings),
                             metrics=self.metrics, on_trade=self.listeners.trade_changed, market=self.market)
        self.trader.stops.session_open = lambda exchange: sessions.is_open(exchange, self.now_ms())
        self.trader.stops.announce = self.listeners.announce
        self.metrics.unprotected_at_broker.set_function(lambda: self.trader.stops.unprotected(self.guard.records))
        self.trader.brokers = dict(self.logins)
        self.changes = EngineChanges(self.store, self.halts, record=self.trader.record, now_ms=self.now_ms,
                                     spawn=self.trader.spawn)
        self.limits = EngineLimits(self.guard)
        self.intake = Intake(settings=settings, store=self.store, symbols=self.symbols, strategies=self.strategies,
                             accounts=self.accounts, entries_open=self.guard.entries_open,
                             leverage=self.trader.config.leverage, dispatch=LocalDispatch(self.trader), halts=self.halts,
                             limits=self.limits, metrics=self.metrics, announce=self.listeners.announce,
                             logins=set(self.logins), prices=live_prices(settings, self.guard.last_seen, self.market.ltp,
                                                                         sessions, self.now_ms), clock=clock,
                             entry_window=lambda exchange: sessions.entry_window(exchange, self.now_ms()),
                             publish=self.listeners.trade_changed)
        self.operator = OperatorSwitch(store=self.store, halts=self.halts, trader=self.trader, metrics=self.metrics,
                                       announce=self.listeners.announce)
        self.health = StreamHealth(self.metrics, self.trader.book)
        self.heap = Heap()
        self.sampler = Sampler(guard=self.guard, store=self.store, metrics=self.metrics,
                               calendar_watch=self.calendar_watch, heap=self.heap,
                               halted=lambda: self.halts.global_halt, now_ms=self.now_ms)
        self.notifier = Notifier(settings, clock=clock)
        self.listeners.trade.append(self.notifier.on_trade)
        self.trade_log = TradeLog(self.store)  # every trade's life in the log, a line per event
        self.listeners.trade.append(self.trade_log.on_trade)
        self.listeners.event.append(self.notifier.on_event)
        self.recovery: dict[str, int] = {}
        self.readiness = Readiness()  # /healthz; a broker that cannot be reached at start is tried again
        self._subscriptions: list = []

    @property
    def halted(self) -> bool:
        """The operator's halt: no new entries on any account or strategy."""
        return self.halts.global_halt

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _search(self, exchange: str, text: str) -> list[dict[str, str]]:
        hits = await self.market.search(exchange, text)
        return [{"exchange": h.exchange, "tradingsymbol": h.tradingsymbol, "symboltoken": h.token} for h in hits]

    def _on_exit(self, intent) -> None:
        self.trader.on_exit_intent(intent)

    def _on_change(self, change) -> None:
        self.changes.on_change(change)

    # Life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.notifier.start()  # first: whatever recovery finds (an UNPROTECTED trade) gets told
        await asyncio.to_thread(self.store.open)
        await self.trade_log.start()
        await self.halts.restore()
        await self.readiness.reach(self.settings.smartapi_user, self.broker.connect)
        if self.market.owned:
            await self.readiness.reach(f"{self.settings.market_data_user} (market data)", self.market.connect)
        await self.symbols.open()
        for login, broker in (("", self.broker), *self.logins.items()):
            if broker is not self.broker:
                await self.readiness.reach(login, broker.connect)
            updates = broker.order_update_stream()
            self._subscriptions.append(updates.updates.subscribe(functools.partial(self.trader.on_order_update,
                                                                                   login=login)))
            self._subscriptions.append(updates.events.subscribe(functools.partial(self.health.order_stream_event,
                                                                                  login=login)))
            await updates.start()
        self._subscriptions.append(self.guard.stream.events.subscribe(
            functools.partial(self.health.stream_event, "ticks")))
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.start)
        await self.guard.start()
        if self.relay is not None:  # after the guard: on each tick the engine goes first
            await self.readiness.reach("the paper exchange (live prices)", self.relay.renew)
            await self.relay.start([self.broker, *self.logins.values()])
        self.recovery = await recover(RecoveryParts(
            store=self.store, brokers=[self.broker, *self.logins.values()], trader=self.trader, guard=self.guard,
            sessions=self.sessions, clock=self.clock, restore_day=self.restore_day, market=self.market))
        self.calendar_watch.start()  # after recovery: the exchanges of re-armed trades are in use
        self.heap.settle()
        for login in ("", *self.logins):  # one position book per login, snapshotted once recovery is done
            await self.trader.book(login).refresh()
        self.sampler.start()

    async def restore_day(self) -> None:
        await self.limits.restore_day(self.halts, self.accounts.last_good() or [], self.strategies)

    async def stop(self) -> None:
        """Stop whatever has started (also after a failed start)."""
        await self.sampler.stop()
        await self.trader.stop()
        await self.trade_log.stop()
        await self.notifier.stop()
        self.heap.release()
        for subscription in self._subscriptions:
            subscription.dispose()
        relay = [self.relay.stop] if self.relay is not None else []
        steps = [self.symbols.close, *relay, self.guard.stop, self._stop_recorder, self.broker.close,
                 *(b.close for b in self.logins.values()), self.market.close, self.accounts.close, self.store.close]
        for step in steps:
            try:
                await step()
            except Exception:  # keep closing the rest
                log.exception("error while stopping")


    async def _stop_recorder(self) -> None:
        """After the guard: every tick it took is written."""
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.stop)


def calendar_from_settings(settings: Settings) -> tuple[MarketCalendar | None, Calendar]:
    """The exchanges' calendar (MARKET_HOURS=exchange, with HOLIDAYS_FILE) or the paper market's hours."""
    market = None if settings.market_hours == "always" else load_market_calendar(settings.holidays_file)
    return market, always_open_calendar() if market is None else market.calendar


def live_prices(settings: Settings, last_seen, read, sessions: SessionClock, now_ms: Callable[[], int]) -> LivePrices:
    """The alert price check's live prices: a fresh tick, else a paced getLtpData read; none outside the session."""
    return LivePrices(last_tick=last_seen, read=read, session_open=lambda exchange: sessions.is_open(exchange, now_ms()),
                      stale_ms=round(settings.stale_tick_s * 1000), clock=lambda: now_ms() / 1000)


def exec_config(settings: Settings) -> ExecConfig:
    """Execution's settings."""
    return ExecConfig(exit_order_type=settings.exit_order_type, protection_pct=Decimal(str(settings.exit_protection_pct)),
                      chase_ms=settings.exit_chase_ms, exit_attempts=settings.exit_attempts,
                      entry_ttl_s=settings.entry_ttl_s, doubt_settle_s=settings.doubt_settle_s,
                      backup=backup_config(settings))


def backup_config(settings: Settings) -> BackupConfig:
    """The BROKER_STOP settings for execution's broker stops."""
    return BackupConfig(mode=settings.broker_stop, buffer=Buffer.parse(settings.broker_stop_buffer),
                        step_pct=Decimal(str(settings.broker_stop_step)), min_s=settings.broker_stop_min_s,
                        protection_pct=Decimal(str(settings.exit_protection_pct)))
