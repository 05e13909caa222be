"""The desk: tickguard's composition root — store, symbols, broker, guard, execution — and the
decisions an alert needs before it is acknowledged."""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

from service.account_service import AccountDirectory, AccountsUnavailable, UnknownAccounts
from service.accounts import Account, Strategy, load_strategies, resolve_rules
from service.alerts import AlertInvalid, dedup_key, parse_alert
from service.broker.port import StreamEvent
from service.brokers import brokers_from_settings
from service.execution import ExecConfig, Trader
from service.guard import Guard
from service.halts import Halts
from service.heap import Heap
from service.market_calendar import CalendarWatch, load_market_calendar
from service.metrics import Metrics
from service.notify import Notifier
from service.plugins import PluginBoard, load_plugins
from service.policy import Policy, Refusal
from service.recovery import recover
from service.settings import Settings
from service.store import Duplicate, Store
from service.symbols import SymbolBook, SymbolError
from service.trades import OPEN_STATES, Trade, TradeEvent, TradeState
from service.webhook import ID_DEDUP_S, Plan, check_rules, decide_for, json_reply, names_contract, new_trade
from streams import (
    Armed,
    Calendar,
    ExitIntent,
    Halted,
    Rearmed,
    Refused,
    Resumed,
    SegmentHours,
    SessionClock,
    SetLimit,
    StateChange,
    StopState,
    TrailMoved,
)

__all__ = ["Desk", "always_open_calendar"]

log = logging.getLogger("tickguard.desk")
UP_EVENTS = frozenset({"connected", "ready", "recovered"})
DOWN_EVENTS = frozenset({"disconnected", "stalled", "refused", "stopped"})


def always_open_calendar() -> Calendar:
    """The paper market's hours: every day, all day, no square-off (MARKET_HOURS=always)."""
    import datetime as dt

    hours = SegmentHours(dt.time(0, 0), dt.time(23, 59, 59, 999000))
    return Calendar({code: hours for code in ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")}, weekends=True)


def _ticker(symbolname: str, exchange: str | None) -> str:
    """The ticker to resolve: `exchange` prefixed unless the symbol carries its own (`NSE:SBIN`), which
    must then agree with it."""
    prefix, sep, _ = symbolname.partition(":")
    if not exchange:
        return symbolname
    if not sep:
        return f"{exchange}:{symbolname}"
    if prefix.strip().upper() != exchange:
        raise AlertInvalid([{"field": "exchange", "reason": f"{exchange} disagrees with the symbol's own {prefix}"}])
    return symbolname


class Desk:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.store = Store(settings.tickguard_db)
        # Accounts naming another client code trade on that login (CREDENTIALS_FILE); market data always
        # comes from the default one.
        self.broker, self.logins = brokers_from_settings(settings)
        self.symbols = SymbolBook(settings, search=self._search)
        self.strategies: dict[str, Strategy] = load_strategies(settings.strategies_file)
        self.accounts = AccountDirectory(settings, clock=clock)
        market = None if settings.market_hours == "always" else load_market_calendar(settings.holidays_file)
        calendar = always_open_calendar() if market is None else market.calendar
        self.plugins = PluginBoard(load_plugins(settings), metrics=self.metrics, announce=self._announce)
        self.guard = Guard(self.broker.tick_stream(), on_exit=self._on_exit, on_change=self._on_change,
                           calendar=calendar, stale_ms=round(settings.stale_tick_s * 1000), clock=clock,
                           plugins=self.plugins.operators, on_plugin=self.plugins.on_change)
        self.sessions = sessions = SessionClock(calendar)  # the engine's calendar, asked outside the engine
        stream = self.broker.tick_stream()
        stream.expect_ticks = lambda: any(sessions.is_open(exchange, self.now_ms())
                                          for exchange in {pair[0] for pair in stream.subscriptions})
        self.calendar_watch = CalendarWatch(market, lambda: {pair[0] for pair in stream.subscriptions}, self.now_ms)
        self.trader = Trader(self.store, self.broker, self.guard, clock=clock, config=ExecConfig(
            exit_order_type=settings.exit_order_type, protection_pct=Decimal(str(settings.exit_protection_pct)),
            chase_ms=settings.exit_chase_ms, exit_attempts=settings.exit_attempts, entry_ttl_s=settings.entry_ttl_s,
            doubt_settle_s=settings.doubt_settle_s),
            metrics=self.metrics)
        self.trader.on_trade = self._trade_changed
        self.trader.brokers = dict(self.logins)
        self.halted = False
        self.halts = Halts(self.store, self.now_ms, self._announce)  # every halt and the day's P&L, kept (service/halts.py)
        self.loss_halts = self.halts.loss  # (scope, key) halted by a daily-loss limit until the day rolls
        self._limits: dict[tuple[str, str], tuple[int | None, bool]] = {}
        self._updates = None
        self._sampler: asyncio.Task | None = None
        # Who else hears about trades and desk events (the browser feed, notifications): called on the
        # event loop after the change is stored; a listener must not block (queue and return).
        self.trade_listeners: list[Callable[[Trade], None]] = []
        self.event_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.notifier = Notifier(settings, clock=clock)
        self.heap = Heap()
        self._throttled: dict[tuple[str, str], float] = {}  # (stream, event kind) -> last logged
        self._ticks_events = None
        self.trade_listeners.append(self.notifier.on_trade)
        self.event_listeners.append(self.notifier.on_event)

    def _trade_changed(self, trade: Trade) -> None:
        for listener in self.trade_listeners:
            try:
                listener(trade)
            except Exception:  # a broken listener must never stop execution
                log.exception("trade listener failed")

    def _announce(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self.event_listeners:
            try:
                listener(kind, data)
            except Exception:
                log.exception("event listener failed")

    async def _sample(self) -> None:
        """Once a second: tick counts, stream lag and trade gauges into the metrics (never per tick)."""
        seen = self.guard.ticks_seen
        while True:
            await asyncio.sleep(1.0)
            now = self.now_ms()
            latest = self.guard.latest_tick_ms
            self.metrics.count_ticks(self.guard.ticks_seen - seen, latest, now)
            if self.guard.ticks_seen != seen and latest is not None:  # where a restart checks candles from
                await self.store.db.write(lambda db: Store.set_flag(db, "last_tick_ms", latest, now))
            seen = self.guard.ticks_seen
            open_trades, unprotected = await self.store.open_counts()
            self.metrics.set_trades(open_trades - unprotected, unprotected)
            self.metrics.set_halted(self.halted)
            self.calendar_watch.check()  # a new year, or a trade on an exchange without a calendar
            self.heap.maintain(guarding=bool(self.guard.records))

    async def _search(self, exchange: str, text: str) -> list[dict[str, Any]]:
        hits = await self.broker.search(exchange, text)
        return [{"exchange": h.exchange, "tradingsymbol": h.tradingsymbol, "symboltoken": h.token} for h in hits]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # Life cycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.notifier.start()  # first: whatever recovery finds (an UNPROTECTED trade) gets told
        await asyncio.to_thread(self.store.open)
        flags = await self.store.flags()
        self.halted = bool(flags.get("halted", False))
        await self.halts.restore(self.halted)
        await self.broker.connect()
        await self.symbols.open()
        self._updates = []
        for login, broker in (("", self.broker), *self.logins.items()):
            if broker is not self.broker:
                await broker.connect()
            updates = broker.order_update_stream()
            self._updates.append(updates.updates.subscribe(functools.partial(self.trader.on_order_update, login=login)))
            self._updates.append(updates.events.subscribe(functools.partial(self._order_stream_event, login=login)))
            await updates.start()
        self._ticks_events = self.guard.stream.events.subscribe(functools.partial(self._stream_event, "ticks"))
        await self.guard.start()
        self.recovery = await recover(self)
        self.calendar_watch.start()  # after recovery: the exchanges of re-armed trades are in use
        self.heap.settle()
        for login in ("", *self.logins):  # one position book per login, snapshotted once recovery is done
            await self.trader.book(login).refresh()
        self._sampler = asyncio.create_task(self._sample(), name="metrics-sampler")

    async def stop(self) -> None:
        """Stop whatever has started (also after a failed start)."""
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        await self.trader.stop()
        await self.notifier.stop()
        self.heap.release()
        for subscription in [*(self._updates or []), *([self._ticks_events] if self._ticks_events else [])]:
            subscription.dispose()
        steps = [self.symbols.close, self.guard.stop, self.broker.close, *(b.close for b in self.logins.values()),
                 self.accounts.close, self.store.close]
        for step in steps:
            try:
                await step()
            except Exception:  # keep closing the rest
                log.exception("error while stopping")

    def _order_stream_event(self, event: StreamEvent, login: str) -> None:
        """Fills the order-update stream would have reported are unknown while it is down: positions too."""
        book = self.trader.book(login)
        if event.kind in ("disconnected", "stopped", "refused"):
            book.forget()
        elif event.kind == "ready":
            book.refresh_soon(1.5)  # after the catch-up poll of the order book
        self._stream_event("orders", event, login)

    def _stream_event(self, stream: str, event: StreamEvent, login: str = "") -> None:
        """Every change of a socket's health in the log and in `tickguard_stream_connected`."""
        if event.kind in UP_EVENTS:
            if not login:
                self.metrics.set_stream(stream, True)
            log.info("%s stream %s", stream, event.kind, extra={"detail": event.detail, "login": login or None})
        elif event.kind in DOWN_EVENTS:
            if not login:
                self.metrics.set_stream(stream, False)
            log.warning("%s stream %s", stream, event.kind, extra={"detail": event.detail, "login": login or None})
        elif event.kind in ("malformed", "fallback-failed"):  # can come many a second: a line per ten seconds
            now = time.monotonic()
            if now - self._throttled.get((stream, event.kind), float("-inf")) >= 10:
                self._throttled[(stream, event.kind)] = now
                log.warning("%s stream %s", stream, event.kind, extra={"detail": event.detail})
        elif event.kind in ("subscribed", "fallback-ltp", "polled"):  # routine: the order book's periodic check too
            log.debug("%s stream %s", stream, event.kind, extra={"detail": event.detail})
        else:
            log.warning("%s stream %s", stream, event.kind, extra={"detail": event.detail, "login": login or None})

    async def restore_day(self) -> None:
        """Before any trade is guarded again: the engine gets today's realised P&L and loss halts per
        account and strategy back, then the limits of every strategy and of the accounts last known."""
        for restored in await self.halts.day_so_far():
            self.guard.pipeline.on_event(restored)
        accounts = list(self.accounts.last_good() or [])
        for name, strategy in [*self.strategies.items(), ("", None)]:
            self._apply_limits(accounts, name, strategy)

    async def rearm_open_trades(self) -> None:
        """Guard again every trade that was open when tickguard stopped (the full §8 check follows)."""
        stops = await self.store.stop_states()
        for trade in await self.store.trades(states=[TradeState.OPEN]):  # an EXITING trade's exit is resumed instead
            if trade.filled:
                state = stops.get(trade.id, {})
                self.guard.arm(trade, resume_stop=state.get("stop"), resume_trailing=bool(state.get("trailed")))

    # Engine outputs -------------------------------------------------------------------------------
    def _on_exit(self, intent: ExitIntent) -> None:
        self.trader.on_exit_intent(intent)

    def _on_change(self, change: StateChange) -> None:
        kind = type(change)
        if kind is TrailMoved:
            self.trader.spawn(self._trail_moved(change), f"trail-{change.trade_id}")
        elif kind is Armed or kind is Rearmed:
            self.trader.spawn(self._armed(change.state), f"armed-{change.state.trade_id}")
        elif kind is Refused:
            self.trader.spawn(self._refused(change), f"refused-{change.trade_id}")
        elif kind is Halted:
            self.halts.halted(change)
        elif kind is Resumed:
            self.halts.resumed(change)

    async def _record(self, trade_id: int, kind: str, **data: Any) -> None:
        trade = await self.store.record(trade_id, TradeEvent(kind=kind, at_ms=self.now_ms(), data=data))
        self.trader.on_trade(trade)

    async def _armed(self, state: StopState) -> None:
        await self._record(state.trade_id, "armed", stop=state.stop, target=state.target, trailing=state.trail_active)

    async def _refused(self, change: Refused) -> None:
        trade = await self.store.trade(change.trade_id)
        if trade is None or trade.state not in (TradeState.OPEN, TradeState.PENDING_ENTRY):
            return  # an event for a trade that is no longer guarded: nothing is left unprotected
        log.error("stop rules refused at arming: the trade is not guarded", extra={"trade_id": change.trade_id})
        await self._record(change.trade_id, "unprotected", reason=f"{change.field}: {change.reason}")

    async def _trail_moved(self, change: TrailMoved) -> None:
        now = self.now_ms()
        await self._record(change.trade_id, "stop_moved", stop=change.new_stop)
        await self.store.db.write(lambda db: Store.save_stop(db, change.trade_id, {"stop": change.new_stop, "trailed": True}, now))

    # Alerts ---------------------------------------------------------------------------------------
    async def plan(self, body: dict[str, Any]) -> Plan:
        alert = parse_alert(body)
        underlying = None
        try:
            if alert.type == "option":
                symbol, underlying = await self._option_symbol(alert)
            else:
                ticker = _ticker(alert.symbolname, alert.exchange)
                symbol = await self.symbols.equity(ticker)
        except SymbolError as exc:
            raise AlertInvalid([{"field": "symbolname", "reason": exc.reason}]) from None
        if (alert.type == "option" or symbol.is_future) and alert.quantity is not None and alert.quantity % symbol.lotsize:
            raise AlertInvalid([{"field": "quantity", "reason": f"not a multiple of the lot size {symbol.lotsize}"}])
        accounts, entry_refusal = await self._accounts_for(alert)
        strategy = self.strategies.get(alert.strategyname)
        if alert.percent is not None and alert.signal.value == "sell" and not alert.chartink_word \
                and strategy is not None and strategy.policy is not Policy.CLOSE_ONLY:
            raise AlertInvalid([{"field": "percent", "reason": f"under {strategy.policy} a sell opens the other side: "
                                                              "percent goes with exit, cover or a close_only sell"}])
        self._apply_limits(accounts, alert.strategyname, strategy)
        rules: dict[str, tuple[dict[str, Any], str]] = {}
        for account in accounts:
            rules[account.account_id] = resolve_rules(alert, strategy, account)
            if alert.type == "equity" or alert.stop_basis == "underlying":  # an option's premium is known at entry
                leverage = self.trader.config.leverage.get(alert.product, Decimal(1))
                check_rules(alert, rules[account.account_id][0], underlying or symbol, account.fund, leverage)
        now = self.now_ms()
        window_s = ID_DEDUP_S if alert.id else self.settings.dedup_window_s
        stored = {k: v for k, v in body.items() if k != "token"}
        return Plan(alert, dedup_key(body), now + int(window_s * 1000), stored, symbol, rules, underlying,
                    accounts, entry_refusal, contract_named=alert.type == "option" and names_contract(alert.symbolname))

    def _apply_limits(self, accounts: list[Account], name: str, strategy: Strategy | None) -> None:
        """Hand the engine the daily-loss limits of these accounts and this strategy (when they change)."""
        wanted = {("account", a.account_id): (a.max_daily_loss, False) for a in accounts}
        if strategy is not None:
            loss = None if strategy.max_daily_loss is None else int(strategy.max_daily_loss * 100)
            wanted[("strategy", name)] = (loss, strategy.flatten_on_loss)
        for (scope, key), (loss, flatten) in wanted.items():
            if self._limits.get((scope, key), (None, False)) != (loss, flatten):
                self._limits[(scope, key)] = (loss, flatten)
                self.guard.pipeline.on_event(SetLimit(scope, key, loss, flatten))

    async def _accounts_for(self, alert: Any) -> tuple[list[Account], str]:
        """The accounts an alert trades on, and why entries are refused when the list is not fresh."""
        try:
            accounts = list(await self.accounts.for_entry(alert.accounts))
        except UnknownAccounts as exc:
            raise AlertInvalid([{"field": "accounts", "reason": f"not listed: {', '.join(exc.ids)}"}]) from None
        except AccountsUnavailable as exc:
            last = self.accounts.last_good() or []
            wanted = set(alert.accounts) if alert.accounts else None
            return [a for a in last if wanted is None or a.account_id in wanted], exc.reason
        return accounts, ""

    async def _option_symbol(self, alert: Any) -> tuple[Any, Any]:
        """The contract to buy and its underlying: a contract named in the alert, or one picked from the
        underlying's price — a call for buy, a put for sell (or the alert's `option.right`)."""
        name = alert.symbolname.split(":", 1)[-1].upper()
        if names_contract(alert.symbolname):
            contract = await self.symbols.contract(name)
            return contract, await self.symbols.equity(contract.name, search=False)
        spec = alert.option
        right = (spec.right if spec and spec.right else None) or ("PE" if alert.signal.value == "sell" and not alert.chartink_word
                                                                  else "CE")
        if alert.chartink_word and alert.signal.value == "sell":  # `short` an underlying: buy the put
            right = "PE"
        underlying = await self.symbols.equity(name, search=False)  # an option chain comes from the master only
        contract = await self.symbols.option(name, price=int(alert.price * 100), right=right,
                                             strike=spec.strike if spec else "ATM", expiry=spec.expiry if spec else "current")
        return contract, underlying

    async def accept(self, plan: Plan, source: str = "opentrade") -> Response:
        now = self.now_ms()
        strategy = self.strategies.get(plan.alert.strategyname)
        policy = strategy.policy if strategy else Policy.CLOSE_ONLY
        entries_open = self.guard.entries_open(plan.symbol.exchange)
        general = ("trading is halted: no new entries" if self.halted else plan.entry_refusal
                   or ("" if entries_open else f"outside the entry window of {plan.symbol.exchange}"))
        by_id = {account.account_id: account for account in plan.accounts}

        def work(db) -> tuple[str, Any]:
            duplicate = Store.find_duplicate(db, plan.key, now)
            if duplicate is not None:
                return "duplicate", duplicate
            open_trades = Store.open_trades_of(db, plan.alert.strategyname)
            ids = list(by_id) if plan.alert.accounts is None else list(plan.alert.accounts)
            ids += sorted({t.account for t in open_trades} - set(ids))
            opens: list[tuple[str, str, int | None]] = []
            closing: list[int] = []
            reducing: list[tuple[int, int]] = []  # (trade id, units) exited of a trade kept open
            notes: list[str] = []
            refused: list[tuple[str, Refusal]] = []  # (account, the leg it may not take)
            for account_id in ids:
                decision = decide_for(plan, account_id, open_trades, policy, plan.symbol.lotsize)
                closing += decision.close
                reducing += decision.reduce
                if decision.note:
                    notes.append(f"{account_id}: {decision.note}")
                if decision.refused is not None:
                    refused.append((account_id, decision.refused))
                if decision.open_side is None:
                    continue
                refusal = general or self._entry_refusal(by_id.get(account_id), plan.alert.strategyname, db)
                if refusal:
                    notes.append(f"{account_id}: {refusal}")
                else:
                    opens.append((account_id, decision.open_side, decision.open_quantity))
            if not opens and not closing and not reducing and refused:  # the alert asks for what may never be: nothing stored
                return "invalid", [{"field": refused[0][1].field, "reason": refused[0][1].reason}]
            if not opens and not closing and not reducing and (general or notes):
                reason = general or "; ".join(notes)
                alert_id = Store.insert_alert(db, now_ms=now, source=source, dedup_key=plan.key, dedup_until_ms=now,
                                              body=plan.stored_body, status="refused", reason=reason)
                return "refused", (alert_id, reason)
            alert_id = Store.insert_alert(db, now_ms=now, source=source, dedup_key=plan.key,
                                          dedup_until_ms=plan.dedup_until_ms, body=plan.stored_body, status="accepted",
                                          reason="; ".join(notes + [f"{a}: {r.leg} refused: {r.reason}" for a, r in refused]))
            opened = [(Store.insert_trade(db, new_trade(plan, by_id[a], side, now, alert_id)).id, by_id[a], qty)
                      for a, side, qty in opens]
            Store.set_alert_trades(db, alert_id, [t for t, _, _ in opened] + closing + [t for t, _ in reducing])
            return "accepted", (alert_id, opened, closing, reducing, notes, refused)

        outcome, value = await self.store.db.write(work)
        if outcome == "invalid":
            self.metrics.count_alert("invalid")
            return JSONResponse({"errors": value}, 422)
        if outcome == "duplicate":
            self.metrics.count_alert("duplicate")
            return JSONResponse({"alert_id": value.id, "trades": value.trade_ids, "duplicate": True}, 200)
        if outcome == "refused":
            self.metrics.count_alert("refused")
            alert_id, reason = value
            self._announce("alert_refused", {"alert_id": alert_id, "reason": reason, "alert": plan.stored_body})
            status = 503 if plan.entry_refusal and not self.halted else 409
            return JSONResponse({"alert_id": alert_id, "errors": [{"field": "signal", "reason": reason}]}, status)
        alert_id, opened, closing, reducing, notes, refused = value
        trade_ids = [t for t, _, _ in opened]
        self.metrics.count_alert("accepted")
        self._announce("alert_accepted", {"alert_id": alert_id, "trades": trade_ids, "closing": closing,
                                          "alert": plan.stored_body})
        asked = plan.alert.quantity
        if plan.alert.lots is not None:
            asked = plan.alert.lots * plan.symbol.lotsize
        for trade_id, account, target_quantity in opened:  # position_size decides the quantity itself
            quantity = target_quantity if target_quantity is not None else asked
            self.trader.submit([trade_id], fund=account.fund, requested={trade_id: quantity})
        for trade_id in closing:
            self.trader.spawn(self.trader.close(trade_id, "SIGNAL"), f"close-{trade_id}")
        for trade_id, units in reducing:
            self.trader.spawn(self.trader.reduce(trade_id, units, "SIGNAL"), f"reduce-{trade_id}")
        reply: dict[str, Any] = {"alert_id": alert_id, "trades": trade_ids, "closing": closing}
        if reducing:
            reply["reducing"] = [{"trade": t, "quantity": units} for t, units in reducing]
        if refused:
            reply["refused"] = [{"leg": r.leg, "reason": r.reason, "account": a} for a, r in refused]
        if notes:
            reply["notes"] = notes
        return json_reply(reply, 202)

    def _entry_refusal(self, account: Account | None, strategy: str = "", db: Any = None) -> str:
        if account is None:
            return "not in the account list"
        if ("account", account.account_id) in self.loss_halts:
            return "the account's daily loss limit is reached"
        if ("strategy", strategy) in self.loss_halts:
            return "the strategy's daily loss limit is reached"
        if db is not None and account.max_open_trades is not None \
                and Store.open_trade_count(db, account=account.account_id) >= account.max_open_trades:
            return f"the account already has {account.max_open_trades} open trades (its maximum)"
        limit = self.strategies.get(strategy)
        if db is not None and limit is not None and limit.max_open_trades is not None \
                and Store.open_trade_count(db, strategy=strategy) >= limit.max_open_trades:
            return f"the strategy already has {limit.max_open_trades} open trades (its maximum)"
        login = (account.clientcode or "").upper()
        if login and login != self.settings.smartapi_user.upper() and login not in self.logins:
            return f"its login {account.clientcode} is not in CREDENTIALS_FILE"
        return ""

    # Operator -------------------------------------------------------------------------------------
    async def set_halt(self, halted: bool, flatten: bool = False, reason: str = "") -> list[int]:
        await self.halts.set_operator(halted, reason)
        self.halted = halted
        self.metrics.set_halted(halted)
        operator = self.halts.operator
        self._announce("halt", {"halted": halted, "flatten": flatten, "reason": operator.reason if operator else ""})
        closing: list[int] = []
        if halted and flatten:
            for trade in await self.store.trades(states=OPEN_STATES):
                closing.append(trade.id)
                self.trader.spawn(self.trader.close(trade.id), f"flatten-{trade.id}")
        return closing


def trade_view(trade: Trade) -> dict[str, Any]:
    import msgspec

    view = msgspec.to_builtins(trade)
    view["open_quantity"] = trade.open_quantity
    return view


__all__ += ["trade_view", "Duplicate"]
