from __future__ import annotations

import msgspec
from tests.streams.streams_helpers import T0, rule, tick, trade, trail

import streams
from streams import (
    Arm,
    Armed,
    Clock,
    Command,
    ExitIntent,
    ExitReason,
    Phase,
    PluginFailed,
    SetLimit,
    StateChange,
    StopState,
    fold,
)


def test_every_public_name_is_exported_once_and_exists():
    names = streams.__all__
    assert len(names) == len(set(names))
    assert names == sorted(names)
    for name in names:
        assert hasattr(streams, name), name


def test_public_modules_export_only_what_they_define_or_alias():
    for module in (streams.types, streams.rules, streams.armed, streams.stops, streams.engine, streams.index,
                   streams.limits, streams.session, streams.pipeline, streams.plugins, streams.errors):  # fmt: skip
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_trade_events_round_trip_through_msgspec_for_the_store():
    events = [Arm(trade(1, "long", stop=rule("points", "10.5"), trailing=trail("points", 2, rule("entry_pct", 1)))),
              SetLimit("account", "A1", 50_000, True)]  # fmt: skip
    encoded = msgspec.json.encode(events)
    assert msgspec.json.decode(encoded, type=list[Command]) == events


def test_state_changes_and_intents_round_trip_through_msgspec():
    changes = [
        Armed(StopState(1, Phase.ARMED, 99_000, None, False, False)),
        PluginFailed("spike", "tick", "boom"),
        ExitIntent(1, ExitReason.STOP, 99_000, tick(98_000)),
    ]
    decoded = msgspec.json.decode(msgspec.json.encode(changes), type=list[StateChange | ExitIntent])
    assert decoded == changes


def test_replaying_the_inputs_through_fold_rebuilds_the_same_outputs():
    from reactivex import from_iterable

    inputs = [Clock(T0), Arm(trade(1, "long", stop=rule("points", 10), trailing=trail("points", 5))),
              tick(100_800), tick(100_200)]  # fmt: skip
    first: list = []
    again: list = []
    from_iterable(inputs).pipe(fold()).subscribe(first.append)
    from_iterable(inputs).pipe(fold()).subscribe(again.append)
    assert first == again
    assert first[-1] == ExitIntent(1, ExitReason.TRAIL, 100_300, tick(100_200))
