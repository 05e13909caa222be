"""The armed trades' stops against the tick stream: the book of their levels, the gates, crossing,
trailing and firing, the exits that wait for their segment's session, and the flattening a halt
orders. `Engine` (`streams.engine`) builds on this layer with the inputs that arm, change and time
the trades: trade events and the clock.

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

from .armed import ArmedTrade
from .index import TokenBook
from .limits import Group, LossLimits
from .rules import trail_stop
from .session import SessionClock
from .types import ExitIntent, ExitReason, Halted, Output, Phase, Refused, StopState, Tick, TrailMoved

__all__ = ["Stops"]

ARMED, EXITING = Phase.ARMED, Phase.EXITING


class Stops:
    """The engine's tick path and its exits. It arms nothing by itself: `Engine` adds the trade
    events and the clock. Not thread-safe: feed it from one thread."""

    def __init__(
        self,
        emit: Callable[[Output], None],
        sessions: SessionClock,
        stale_ms: int,
        fault: Callable[[Exception], None] | None,
    ) -> None:
        self.emit = emit
        self.fault = fault  # where an internal error goes from the tick path; None = raise
        self.sessions = sessions
        self.limits = LossLimits()
        self._stale_ms = stale_ms
        self._books: dict[str, dict[str, TokenBook]] = {}  # exchange -> token -> book
        self._guards: dict[int, ArmedTrade] = {}
        self.clock_ms: int | None = None
        self._pending_close: dict[int, ExitReason] = {}  # exits decided outside the session, by reason
        self._busy = False
        self._deferred: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self.older_ticks = 0  # ticks older (exchange time stamp) than a tick met before of their instrument

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

    # -- ticks -----------------------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> None:
        # The hot path: two dict lookups (tokens are unique only within an exchange), two stores and
        # three integer comparisons when nothing crosses.
        venue = self._books.get(tick.exchange)
        if venue is None:
            venue = self._books[tick.exchange] = {}
        book = venue.get(tick.token)
        if book is None:
            book = venue[tick.token] = TokenBook(tick.exchange, tick.token)
        book.last = tick
        if tick.exchange_ts_ms >= book.last_ts:
            book.last_ts = tick.exchange_ts_ms
        else:  # out of order: counted (the feed's doing), and judged like any other tick
            self.older_ticks += 1
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

    # -- exits -----------------------------------------------------------------------------------

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

    def _sync_watch(self, exchange: str, token: str) -> None:
        watch = self.limits.watched((exchange, token))
        book = self._book(exchange, token)
        if book.watch != watch:
            book.set_watch(watch)
