"""The stop engine: a fold over trade events, ticks and the clock that emits exit intents and state
changes through one `emit` callable.

It is plain synchronous code with no I/O and no clock of its own, so it can be driven by the
reactive pipeline (`streams.pipeline`), by a test, or by a replay of recorded inputs. It is not
thread-safe: feed it from one thread (the service feeds it on the event loop).

Two layers, one module each: `streams.stops` is the tick path (the book of levels, the gates,
crossing, trailing, firing, exits waiting for the session, the flattening a halt orders); this
module adds the inputs that arm, change and time the trades — the trade events, and the clock with
the IST day it names (day roll, entry windows, intraday square-off, exits released at the open).
"""
from __future__ import annotations

from collections.abc import Callable

import msgspec

from .armed import ArmedTrade
from .errors import RuleError
from .limits import Group
from .session import Calendar, SessionClock, default_calendar, ist_day
from .stops import Stops
from .types import (
    Amend,
    Arm,
    Armed,
    Clock,
    Close,
    Command,
    Confirm,
    Disarm,
    Disarmed,
    EntryWindow,
    ExitReason,
    Output,
    Phase,
    Rearm,
    Rearmed,
    Reduce,
    Refused,
    RestoreDay,
    Resumed,
    SetLimit,
    Tick,
    Trade,
)

__all__ = ["Engine", "EngineConfig"]

ARMED, EXITING = Phase.ARMED, Phase.EXITING


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    calendar: Calendar = msgspec.field(default_factory=default_calendar)
    stale_ms: int = 5_000  # STALE_TICK_S


class Engine(Stops):
    def __init__(
        self,
        emit: Callable[[Output], None],
        config: EngineConfig | None = None,
        fault: Callable[[Exception], None] | None = None,
    ) -> None:
        config = config or EngineConfig()
        super().__init__(emit, SessionClock(config.calendar), config.stale_ms, fault)
        self._guarded_on: dict[tuple[str, str], int] = {}  # trades guarded per basis token
        self._day: int | None = None
        self._squared: set[str] = set()
        self._entries: dict[str, bool] = {}
        self._restores: list[RestoreDay] = []  # restored before the first Clock named the day

    # -- inputs ----------------------------------------------------------------------------------

    def on_input(self, item: Tick | Clock | Command) -> None:
        if type(item) is Tick:
            self.on_tick(item)
        elif type(item) is Clock:
            self.on_clock(item.now_ms)
        else:
            self.on_event(item)

    # -- trade events ----------------------------------------------------------------------------

    def on_event(self, event: Command) -> None:
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

    # -- the clock -------------------------------------------------------------------------------

    def on_clock(self, now_ms: int) -> None:
        self._serial(self._clock, now_ms)

    def entries_open(self, exchange: str) -> bool:
        return self._entries.get(exchange, False)

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
