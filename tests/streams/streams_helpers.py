"""Builders shared by the stream tests: IST times, ticks, trades, and a marble runner."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from reactivex.testing.marbles import marbles_testing

from streams import (
    ExitIntent,
    Instrument,
    PipelineConfig,
    Plugin,
    Rules,
    Side,
    StopRule,
    Tick,
    Trade,
    TrailRule,
    exit_intents,
    guard,
)

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
MONDAY = dt.date(2025, 1, 6)


def ist(hour: int, minute: int = 0, second: int = 0, day: dt.date = MONDAY) -> int:
    """Epoch ms of an IST wall time."""
    return int(dt.datetime.combine(day, dt.time(hour, minute, second), IST).timestamp() * 1000)


T0 = ist(10)  # Monday 10:00 IST, inside every session


def tick(ltp: int, at: int = T0, token: str = "2885", exchange: str = "NSE") -> Tick:
    return Tick(token, exchange, ltp, at)


def rule(kind: str, value: str | int) -> StopRule:
    return StopRule(kind, Decimal(str(value)))  # type: ignore[arg-type]


def trail(kind: str, value: str | int, activation: StopRule | None = None) -> TrailRule:
    return TrailRule(kind, Decimal(str(value)), activation)  # type: ignore[arg-type]


def trade(
    id: int = 1,
    side: str = "long",
    entry: int = 100_000,
    quantity: int = 10,
    stop: StopRule | None = None,
    target: StopRule | None = None,
    trailing: TrailRule | None = None,
    token: str = "2885",
    exchange: str = "NSE",
    tick_size: int = 5,
    **fields: Any,
) -> Trade:
    fields.setdefault("account", "A1")
    fields.setdefault("strategy", "S1")
    return Trade(
        id=id,
        instrument=Instrument(token, exchange, tick_size),
        side=Side(side),
        quantity=quantity,
        entry=entry,
        rules=Rules(stop, target, trailing),
        **fields,
    )


def run_marbles(
    *,
    ticks: str,
    events: str = "-",
    clock: str = "-c",
    lookup: dict[str, Any],
    plugins: Sequence[Plugin] = (),
    config: PipelineConfig | None = None,
    intents_only: bool = True,
) -> list[Any]:
    """Run the guard operator on virtual time; return the recorded (time, value) pairs.

    Marble frames are one second apart. The clock marble defaults to one Clock at frame 1 (`c`
    must then be in the lookup, usually T0). Completion and errors are returned as strings.
    """
    with marbles_testing(timespan=1.0) as (start, _cold, hot, _exp):
        tick_stream = hot(ticks, lookup)
        operator = guard(hot(events, lookup), hot(clock, lookup), config=config, plugins=plugins)
        stream = tick_stream.pipe(operator)
        if intents_only:
            stream = stream.pipe(exit_intents())
        records = start(stream)
    out = []
    for record in records:
        note = record.value
        if note.kind == "N":
            out.append((int(record.time) - 200, note.value))
        elif note.kind == "E":
            out.append((int(record.time) - 200, f"error: {note.exception!r}"))
        else:
            out.append((int(record.time) - 200, "completed"))
    return out


def intent(trade_id: int, reason: str, level: int | None, fired_by: Tick | None, source: str = "") -> ExitIntent:
    return ExitIntent(trade_id, reason, level, fired_by, source)  # type: ignore[arg-type]
