"""The stop engine: a fold over trade events, ticks and the clock that emits exit intents and state
changes through one `emit` callable.

It is plain synchronous code with no I/O and no clock of its own, so it can be driven by the
reactive pipeline (`streams.pipeline`), by a test, or by a replay of recorded inputs. It is not
thread-safe: feed it from one thread (the service feeds it on the event loop).

Gates (trading-semantics §4). A tick acts on a trade only when it is
- fresh: `clock - tick.exchange_ts_ms <= stale_ms`, clock being the latest Clock received (until the
  first Clock every tick is stale, so a pipeline without a clock fires nothing), and
- in session: the tick's exchange time stamp inside its exchange's continuous session.
A gated tick does nothing at all: it neither fires nor moves a trailing stop. Gates are checked only
when a tick crosses a level, so they cost nothing on the no-cross path.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from .armed import ArmedTrade
from .errors import RuleError
from .index import TokenBook
from .limits import Group, LossLimits
from .rules import trail_stop
from .session import Calendar, SessionClock, default_calendar, ist_day
from .types import (
    Amend,
    Arm,
    Armed,
    Clock,
    Close,
    Confirm,
    Disarm,
    Disarmed,
    EntryWindow,
    ExitIntent,
    ExitReason,
    Halted,
    Output,
    Phase,
    Rearm,
    Rearmed,
    Reduce,
    Refused,
    RestoreDay,
    Resumed,
    SetLimit,
    StopState,
    Tick,
    Trade,
    TradeEvent,
    TrailMoved,
)

__all__ = ["Engine", "EngineConfig"]

ARMED, EXITING = Phase.ARMED, Phase.EXITING


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    calendar: Calendar = msgspec.field(default_factory=default_calendar)
    stale_ms: int = 5_000  # STALE_TICK_S


class Engine:
    def __init__(
        self,
        emit: Callable[[Output], None],
        config: EngineConfig | None = None,
        fault: Callable[[Exception], None] | None = None,
    ) -> None:
        config = config or EngineConfig()
        self.emit = emit
        self.fault = fault  # where an internal error goes from the tick path; None = raise
        self.sessions = SessionClock(config.calendar)
        self.limits = LossLimits()
        self._stale_ms = config.stale_ms
        self._books: dict[str, dict[str, TokenBook]] = {}  # exchange -> token -> book
        self._guards: dict[int, ArmedTrade] = {}
        self._guarded_on: dict[tuple[str, str], int] = {}  # trades guarded per basis token
        self.clock_ms: int | None = None
        self._day: int | None = None
        self._squared: set[str] = set()
        self._entries: dict[str, bool] = {}
        self._pending_close: dict[int, ExitReason] = {}  # exits decided outside the session, by reason
        self._restores: list[RestoreDay] = []  # restored before the first Clock named the day
        self._busy = False
        self._deferred: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()

    # -- queries ---------------------------------------------------------------------------------

    def state(self, trade_id: int) -> StopState | None:
        guard = self._guards.get(trade_id)
        return None if guard is None else guard.state()

    def states(self) -> list[StopState]:
        return [guard.state() for guard in self._guards.values()]

    def guards(self, trade_id: int) -> bool:
        """The trade is armed here (or exiting, until confirmed or disarmed); False for one refused."""
        return trade_id in self._guards

    def last_tick(self, exchange: str, token: str) -> Tick | None:
        """The latest tick the engine has met of an instrument (tokens are unique only within an
        exchange); forgotten once no trade is guarded on it any more."""
        book = self._books.get(exchange, {}).get(token)
        return None if book is None else book.last

    def entries_open(self, exchange: str) -> bool:
        return self._entries.get(exchange, False)

    @property
    def halted(self) -> frozenset[tuple[str, str]]:
        return frozenset((g.scope, g.key) for g in self.limits.groups.values() if g.halted)

    def passes(self, tick: Tick) -> bool:
        """The gates: fresh against the clock, inside its exchange's session."""
        ts, clock = tick.exchange_ts_ms, self.clock_ms
        return clock is not None and clock - ts <= self._stale_ms and self.sessions.is_open(tick.exchange, ts)

    def would_act(self, tick: Tick) -> bool:
        """Would this tick fire or move something? (Used to watch tick-stage plug-ins.)"""
        book = self._books.get(tick.exchange, {}).get(tick.token)
        if book is None:
            return False
        ltp = tick.ltp
        crossed = (book.lows and book.lows[-1][0] >= ltp) or (book.highs and book.highs[-1][0] >= -ltp)
        return bool(crossed) and self.passes(tick)

    # -- inputs ----------------------------------------------------------------------------------

    def on_input(self, item: Tick | Clock | TradeEvent) -> None:
        if type(item) is Tick:
            self.on_tick(item)
        elif type(item) is Clock:
            self.on_clock(item.now_ms)
        else:
            self.on_event(item)

    def on_tick(self, tick: Tick) -> None:
        # The hot path: two dict lookups (tokens are unique only within an exchange), one store and
        # two integer comparisons when nothing crosses.
        venue = self._books.get(tick.exchange)
        if venue is None:
            venue = self._books[tick.exchange] = {}
        book = venue.get(tick.token)
        if book is None:
            book = venue[tick.token] = TokenBook(tick.exchange, tick.token)
        book.last = tick
        ltp = tick.ltp
        if ltp <= book.low or ltp >= book.high:
            try:
                self._serial(self._cross, book, tick)
            except Exception as error:
                if self.fault is None:
                    raise
                self.fault(error)

    def _serial(self, step: Callable[..., None], *args: Any) -> None:
        """Run one input to the end before the next. An input that arrives while one is being
        handled — a consumer that answers an exit intent synchronously with Confirm or Rearm — is
        queued and handled right after, never in the middle of a tick."""
        if self._busy:
            self._deferred.append((step, args))
            return
        self._busy = True
        try:
            step(*args)
            while self._deferred:
                step, args = self._deferred.popleft()
                step(*args)
        finally:
            self._busy = False

    def _cross(self, book: TokenBook, tick: Tick) -> None:
        if not self.passes(tick):
            return
        ltp = tick.ltp
        crossed = book.take_crossed(ltp)
        if len(crossed) > 1:
            crossed = sorted(set(crossed))
        for trade_id in crossed:
            guard = self._guards[trade_id]
            # take_crossed popped the keys ltp reached; forget them before unindexing the rest.
            if guard.low_key is not None and guard.low_key >= ltp:
                guard.low_key = None
            if guard.high_key is not None and guard.high_key <= ltp:
                guard.high_key = None
            self._unindex(guard)
            self._evaluate(guard, tick)
            if guard.phase is ARMED:
                self._index(guard)
        if book.watch:
            self._on_breach(self.limits.mark((book.exchange, book.token), ltp), tick)

    def _evaluate(self, guard: ArmedTrade, tick: Tick) -> None:
        ltp, stop = tick.ltp, guard.stop
        if guard.long:
            if stop is not None and ltp <= stop:
                self._fire(guard, ExitReason.TRAIL if guard.trailed else ExitReason.STOP, stop, tick)
            elif guard.target is not None and ltp >= guard.target:
                self._fire(guard, ExitReason.TARGET, guard.target, tick)
            elif guard.offset is not None:
                guard.active = guard.active or ltp >= guard.activation
                if guard.active:
                    # Every earlier price left the stop where it is, so ltp is the best price.
                    moved = trail_stop(True, ltp, guard.offset, guard.tick_size)
                    if stop is None or moved > stop:
                        self._trail(guard, moved, tick)
        else:
            if stop is not None and ltp >= stop:
                self._fire(guard, ExitReason.TRAIL if guard.trailed else ExitReason.STOP, stop, tick)
            elif guard.target is not None and ltp <= guard.target:
                self._fire(guard, ExitReason.TARGET, guard.target, tick)
            elif guard.offset is not None:
                guard.active = guard.active or ltp <= guard.activation
                if guard.active:
                    moved = trail_stop(False, ltp, guard.offset, guard.tick_size)
                    if stop is None or moved < stop:
                        self._trail(guard, moved, tick)

    def _trail(self, guard: ArmedTrade, stop: int, tick: Tick) -> None:
        old, guard.stop, guard.trailed = guard.stop, stop, True
        self.emit(TrailMoved(guard.trade.id, old, stop, tick))

    def _fire(
        self, guard: ArmedTrade, reason: ExitReason, level: int | None, tick: Tick | None, source: str = ""
    ) -> None:
        self._unindex(guard)
        guard.phase = EXITING
        self._pending_close.pop(guard.trade.id, None)
        self.emit(ExitIntent(guard.trade.id, reason, level, tick, source))

    def fire_custom(self, intent: ExitIntent, source: str) -> None:
        """An exit asked for by a signal-stage plug-in; always reason CUSTOM."""
        self._serial(self._custom, intent, source)

    def _custom(self, intent: ExitIntent, source: str) -> None:
        guard = self._guards.get(intent.trade_id)
        if guard is None:
            self.emit(Refused(intent.trade_id, "trade_id", f"{source}: no such trade"))
        elif guard.phase is ARMED:
            self._fire(guard, ExitReason.CUSTOM, intent.level, intent.tick, source)

    # -- the book --------------------------------------------------------------------------------

    def _book(self, exchange: str, token: str) -> TokenBook:
        venue = self._books.setdefault(exchange, {})
        book = venue.get(token)
        if book is None:
            book = venue[token] = TokenBook(exchange, token)
        return book

    def _index(self, guard: ArmedTrade) -> None:
        book = self._book(guard.exchange, guard.token)
        guard.low_key, guard.high_key = guard.keys()
        if guard.low_key is not None:
            book.add_low(guard.low_key, guard.trade.id)
        if guard.high_key is not None:
            book.add_high(guard.high_key, guard.trade.id)

    def _unindex(self, guard: ArmedTrade) -> None:
        book = self._books[guard.exchange][guard.token]
        if guard.low_key is not None:
            book.remove_low(guard.low_key, guard.trade.id)
            guard.low_key = None
        if guard.high_key is not None:
            book.remove_high(guard.high_key, guard.trade.id)
            guard.high_key = None

    # -- trade events ----------------------------------------------------------------------------

    def on_event(self, event: TradeEvent) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a trade event: {event!r}")
        self._serial(handler, self, event)

    def _arm(self, event: Arm) -> None:
        trade = event.trade
        if trade.id in self._guards:
            self.emit(Refused(trade.id, "id", "already armed"))
            return
        guard = self._guard(trade)
        if guard is None:
            return
        guard.tighten(event.resume_stop, event.resume_trailing)
        self._guards[trade.id] = guard
        key = (guard.exchange, guard.token)
        self._guarded_on[key] = self._guarded_on.get(key, 0) + 1
        mark = self.last_tick(trade.instrument.exchange, trade.instrument.token)
        self.limits.open_trade(trade, None if mark is None else mark.ltp)
        self._sync_watch(trade.instrument.exchange, trade.instrument.token)
        self.emit(Armed(guard.state()))
        self._settle(guard)

    def _guard(self, trade: Trade) -> ArmedTrade | None:
        try:
            basis = trade.basis or trade.instrument
            if not self.sessions.knows(basis.exchange):
                raise RuleError("exchange", f"no session hours for {basis.exchange}")
            return ArmedTrade(trade)
        except RuleError as error:
            self.emit(Refused(trade.id, error.field, error.reason))
            return None

    def _settle(self, guard: ArmedTrade) -> None:
        """A trade (re)enters ARMED: square-off, halt and the latest tick may act on it at once."""
        trade = guard.trade
        reason = None
        if trade.product == "INTRADAY" and guard.segment in self._squared:
            reason = ExitReason.SQUARE_OFF
        elif self.limits.flattening(trade):
            reason = ExitReason.RISK
        if reason is not None and self._when_open(guard, reason):
            return
        self._index(guard)
        last = self._books[guard.exchange][guard.token].last
        if last is None or not self.passes(last):
            return
        low, high = guard.low_key, guard.high_key
        if (low is not None and last.ltp <= low) or (high is not None and last.ltp >= high):
            # Only this trade meets the tick now; the others met it when it arrived.
            self._unindex(guard)
            self._evaluate(guard, last)
            if guard.phase is ARMED:
                self._index(guard)

    def _when_open(self, guard: ArmedTrade, reason: ExitReason) -> bool:
        """An exit decided without a crossing tick (square-off, risk, manual, signal) goes out only while
        the trade's segment is in session: outside it no order reaches the exchange (SmartAPI would
        keep it as an after-market order for the next open). Decided outside, it waits for the
        segment's next open and the trade stays guarded. True when it fired now."""
        if self.clock_ms is not None and self.sessions.is_open(guard.segment, self.clock_ms):
            self._fire(guard, reason, None, self.last_tick(guard.exchange, guard.token))
            return True
        self._pending_close[guard.trade.id] = reason
        return False

    def _amend(self, event: Amend) -> None:
        trade = event.trade
        old = self._guards.get(trade.id)
        if old is None:
            self.emit(Refused(trade.id, "id", "amend: no such trade"))
            return
        guard = self._guard(trade)
        if guard is None:
            return
        if old.trailed:
            guard.tighten(old.stop, old.active)
        self._drop(old)
        self._guards[trade.id] = guard
        mark = self.limits.prices.get((trade.instrument.exchange, trade.instrument.token))
        self.limits.open_trade(trade, mark)
        self._sync_watch(trade.instrument.exchange, trade.instrument.token)
        guard.phase = old.phase
        self.emit(Armed(guard.state()))
        if guard.phase is ARMED:
            self._settle(guard)

    def _drop(self, guard: ArmedTrade, exit_price: int | None = None) -> list[Group]:
        if guard.phase is ARMED:
            self._unindex(guard)
        if self._guards.pop(guard.trade.id, None) is not None:
            self._forget_unguarded(guard.exchange, guard.token)
        self._pending_close.pop(guard.trade.id, None)
        breached = self.limits.close_trade(guard.trade, exit_price)
        self._sync_watch(guard.trade.instrument.exchange, guard.trade.instrument.token)
        return breached

    def _forget_unguarded(self, exchange: str, token: str) -> None:
        """The last trade on a token is gone, and with it the subscription: the token's last tick will
        not be followed by fresher ones, so it must not settle the next trade armed there."""
        key = (exchange, token)
        left = self._guarded_on.get(key, 0) - 1
        if left > 0:
            self._guarded_on[key] = left
            return
        self._guarded_on.pop(key, None)
        book = self._books.get(exchange, {}).get(token)
        if book is not None:
            book.last = None

    def _disarm(self, event: Disarm) -> None:
        guard = self._known(event.trade_id, "disarm")
        if guard is not None:
            self._drop(guard)
            self.emit(Disarmed(event.trade_id, "disarmed"))

    def _confirm(self, event: Confirm) -> None:
        guard = self._known(event.trade_id, "confirm")
        if guard is not None:
            breached = self._drop(guard, event.exit_price)
            self.emit(Disarmed(event.trade_id, "closed"))
            self._on_breach(breached, None)

    def _reduce(self, event: Reduce) -> None:
        guard = self._known(event.trade_id, "reduce")
        if guard is None:
            return
        old = guard.trade
        part = max(0, min(event.quantity, old.quantity))
        guard.trade = msgspec.structs.replace(old, quantity=old.quantity - part,
                                              rule_quantity=old.rule_quantity or old.quantity)
        self._on_breach(self.limits.reduce(old, guard.trade, event.exit_price), None)

    def _rearm(self, event: Rearm) -> None:
        guard = self._known(event.trade_id, "rearm")
        if guard is not None and guard.phase is EXITING:
            guard.phase = ARMED
            self.emit(Rearmed(guard.state()))
            self._settle(guard)

    def _close(self, event: Close) -> None:
        guard = self._known(event.trade_id, "close")
        if guard is None or guard.phase is not ARMED:
            return
        self._when_open(guard, event.reason)

    def _set_limit(self, event: SetLimit) -> None:
        group = self.limits.set_limit(event.scope, event.key, event.max_loss, event.flatten)
        for exchange, token in {(t.instrument.exchange, t.instrument.token) for t in group.trades.values()}:
            self._sync_watch(exchange, token)
        self._on_breach([group] if group.breached() else [], None)

    def _restore_day(self, event: RestoreDay) -> None:
        if self._day is None:
            self._restores.append(event)  # the day is not known before the first Clock
            return
        if event.day != self._day:
            return  # an earlier day's figures ended at its roll
        group = self.limits.restore(event.scope, event.key, event.realised, event.halted)
        self._on_breach([group] if group.breached() else [], None)

    def _known(self, trade_id: int, event: str) -> ArmedTrade | None:
        guard = self._guards.get(trade_id)
        if guard is None:
            self.emit(Refused(trade_id, "trade_id", f"{event}: no such trade"))
        return guard

    # -- risk ------------------------------------------------------------------------------------

    def _sync_watch(self, exchange: str, token: str) -> None:
        watch = self.limits.watched((exchange, token))
        book = self._book(exchange, token)
        if book.watch != watch:
            book.set_watch(watch)

    def _on_breach(self, groups: list[Group], tick: Tick | None) -> None:
        for group in groups:
            group.halted = True
            assert group.max_loss is not None
            self.emit(Halted(group.scope, group.key, group.pnl, group.max_loss, self.clock_ms or 0))
            if group.flatten:
                for trade_id in sorted(group.trades):
                    guard = self._guards[trade_id]
                    if guard.phase is ARMED and trade_id not in self._pending_close:
                        if tick is not None and guard.segment == tick.exchange:
                            self._fire(guard, ExitReason.RISK, None, tick)  # a gated tick: in session
                        else:
                            self._when_open(guard, ExitReason.RISK)

    # -- the clock -------------------------------------------------------------------------------

    def on_clock(self, now_ms: int) -> None:
        self._serial(self._clock, now_ms)

    def _clock(self, now_ms: int) -> None:
        if self.clock_ms is not None and now_ms < self.clock_ms:
            return  # time does not run backwards; a late Clock is ignored
        self.clock_ms = now_ms
        day = ist_day(now_ms)
        if day != self._day:
            self._day = day
            self._squared.clear()
            for group in self.limits.new_day():
                self.emit(Resumed(group.scope, group.key, now_ms))
        if self._restores:
            restores, self._restores = self._restores, []
            for restore in restores:
                self._restore_day(restore)
        for exchange in self.sessions.exchanges:
            self._timed(exchange, day, now_ms)
        for trade_id, reason in list(self._pending_close.items()):
            guard = self._guards[trade_id]
            if self.sessions.is_open(guard.segment, now_ms):
                self._fire(guard, reason, None, self.last_tick(guard.exchange, guard.token))

    def _timed(self, exchange: str, day: int, now_ms: int) -> None:
        entries = self.sessions.entries_open(exchange, now_ms)
        if self._entries.get(exchange) is not entries:
            self._entries[exchange] = entries
            self.emit(EntryWindow(exchange, entries, now_ms))
        if exchange in self._squared:
            return
        square_off = self.sessions.square_off_ms(exchange, day)
        if square_off is None or now_ms < square_off:
            return
        self._squared.add(exchange)
        for trade_id in sorted(self._guards):
            guard = self._guards[trade_id]
            if guard.phase is ARMED and guard.segment == exchange and guard.trade.product == "INTRADAY":
                self._when_open(guard, ExitReason.SQUARE_OFF)


_HANDLERS: dict[type, Callable[[Engine, object], None]] = {
    Arm: Engine._arm,
    Amend: Engine._amend,
    Disarm: Engine._disarm,
    Confirm: Engine._confirm,
    Reduce: Engine._reduce,
    Rearm: Engine._rearm,
    Close: Engine._close,
    SetLimit: Engine._set_limit,
    RestoreDay: Engine._restore_day,
}  # type: ignore[dict-item]
