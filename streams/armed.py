"""The engine's per-trade state: levels from the rules, trailing, phase, and its keys in the book."""
from __future__ import annotations

from .index import NO_HIGH, NO_LOW
from .rules import levels, trail_stop
from .types import Phase, Side, StopState, Trade

__all__ = ["ArmedTrade"]


class ArmedTrade:
    """The engine's mutable view of one armed (or exiting) trade; `low_key`/`high_key` are its keys
    in its token's book."""

    __slots__ = (
        "activation", "active", "exchange", "high_key", "long", "low_key", "offset", "phase",
        "segment", "stop", "target", "tick_size", "token", "trade", "trailed",
    )  # fmt: skip

    def __init__(self, trade: Trade) -> None:
        lv = levels(trade)
        basis = trade.basis or trade.instrument
        self.trade = trade
        self.token = basis.token
        self.exchange = basis.exchange
        self.segment = trade.instrument.exchange
        self.tick_size = basis.tick_size
        self.long = lv.side is Side.LONG
        self.stop = lv.stop
        self.target = lv.target
        self.offset = lv.trail_offset
        self.activation = lv.activation_price
        self.active = lv.trail_offset is not None and (
            lv.activation_price <= lv.entry if self.long else lv.activation_price >= lv.entry
        )
        self.trailed = False
        self.phase = Phase.ARMED
        if self.active and self.offset is not None:
            # best starts at the entry: trailing from arming already holds the stop within reach.
            self.tighten(trail_stop(self.long, lv.entry, self.offset, self.tick_size), True)
        self.low_key: int | None = None
        self.high_key: int | None = None

    def tighten(self, stop: int | None, trailing: bool) -> None:
        """Carry a trailed stop over (resume after restart, amend): kept only when tighter."""
        if self.offset is None:
            return
        self.active = self.active or trailing
        if stop is not None and (self.stop is None or (stop > self.stop if self.long else stop < self.stop)):
            self.stop = stop
            self.trailed = True

    def keys(self) -> tuple[int | None, int | None]:
        trigger = None
        if self.offset is not None:
            if self.long:
                trigger = NO_LOW if self.stop is None else self.stop + self.offset + 1
                if not self.active:
                    trigger = max(trigger, self.activation)
            else:
                trigger = NO_HIGH if self.stop is None else self.stop - self.offset - 1
                if not self.active:
                    trigger = min(trigger, self.activation)
        if self.long:
            near = [k for k in (self.target, trigger) if k is not None]
            return self.stop, min(near) if near else None
        near = [k for k in (self.target, trigger) if k is not None]
        return max(near) if near else None, self.stop

    def state(self) -> StopState:
        return StopState(self.trade.id, self.phase, self.stop, self.target, self.active, self.trailed)
