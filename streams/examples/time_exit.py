"""Signal stage: exit every trade a fixed time after it was armed (by the engine's clock).

In PLUGINS: [{"factory": "streams.examples.time_exit:time_exit", "stage": "signal",
             "kwargs": {"after_s": 1800}}]

A signal stage sees the ticks the rules see, the clock, and every engine output; it emits
`ExitIntent`s, which the engine turns into CUSTOM exits of trades that are still armed.
"""
from __future__ import annotations

from typing import Any

from reactivex import Observable, abc

from streams.types import Armed, Clock, Disarmed, ExitIntent, ExitReason, Operator

__all__ = ["time_exit"]


def time_exit(after_s: float) -> Operator[Any, ExitIntent]:
    if after_s <= 0:
        raise ValueError("after_s must be > 0")
    after_ms = round(after_s * 1000)

    def operator(source: Observable[Any]) -> Observable[ExitIntent]:
        def subscribe(observer: abc.ObserverBase[ExitIntent], scheduler: abc.SchedulerBase | None = None):
            armed_at: dict[int, int | None] = {}  # trade id -> clock when first armed
            now: int | None = None

            def on_next(item: Any) -> None:
                nonlocal now
                if type(item) is Armed:
                    armed_at.setdefault(item.state.trade_id, now)
                elif type(item) is Disarmed:
                    armed_at.pop(item.trade_id, None)
                elif type(item) is Clock:
                    now = item.now_ms
                    for trade_id, at in list(armed_at.items()):
                        if at is None:
                            armed_at[trade_id] = now
                        elif now - at >= after_ms:
                            del armed_at[trade_id]
                            observer.on_next(ExitIntent(trade_id, ExitReason.CUSTOM, None, None))

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator
