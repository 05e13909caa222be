"""Tick stage: drop a print that jumps too far from the last accepted price of its token.

In PLUGINS: [{"factory": "streams.examples.spike_filter:spike_filter", "stage": "tick",
             "kwargs": {"max_jump_pct": 5, "max_rejects": 3}}]

After `max_rejects` rejected prints in a row the filter accepts the price as the new normal: a real
gap is not a spike. (The engine will not wait that long anyway: a filter that holds back a tick which
crosses an armed level is overruled on the next crossing tick, see docs/plugins.md.)
"""
from __future__ import annotations

from decimal import Decimal

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from streams.types import Operator, Tick

__all__ = ["spike_filter"]


def spike_filter(max_jump_pct: float = 5.0, max_rejects: int = 3) -> Operator[Tick, Tick]:
    if max_jump_pct <= 0 or max_rejects < 1:
        raise ValueError("max_jump_pct must be > 0 and max_rejects >= 1")
    max_jump_bp = int(Decimal(str(max_jump_pct)) * 100)  # basis points: integer maths on paise

    def operator(ticks: Observable[Tick]) -> Observable[Tick]:
        def per_subscription(_: object) -> Observable[Tick]:
            accepted: dict[str, int] = {}
            rejected: dict[str, int] = {}

            def plausible(tick: Tick) -> bool:
                last = accepted.get(tick.token)
                jump = 0 if last is None else abs(tick.ltp - last) * 10_000
                if last is None or jump <= max_jump_bp * last or rejected.get(tick.token, 0) >= max_rejects:
                    accepted[tick.token] = tick.ltp
                    rejected.pop(tick.token, None)
                    return True
                rejected[tick.token] = rejected.get(tick.token, 0) + 1
                return False

            return ticks.pipe(ops.filter(plausible))

        return reactivex.defer(per_subscription)

    return operator
