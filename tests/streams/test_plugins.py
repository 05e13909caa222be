"""Plug-in failure isolation: a broken plug-in can never silence a stop."""
from __future__ import annotations

import msgspec
import pytest
from reactivex import operators as ops
from tests.streams.streams_helpers import T0, intent, rule, run_marbles, tick, trade

from streams import (
    Arm,
    ExitIntent,
    Pipeline,
    PipelineConfig,
    Plugin,
    PluginFailed,
    PluginSpec,
    PluginWithheld,
    Refused,
    Tick,
)

LONG = trade(1, "long", stop=rule("points", 10))  # stop 990.00
FLAT, CROSS = tick(100_000), tick(98_000)


def _raise(message: str):
    def fail(_: object) -> object:
        raise RuntimeError(message)

    return fail


def reported(got: list) -> list:
    return [(frame, v.name, v.stage) for frame, v in got if isinstance(v, PluginFailed)]


def exits(got: list) -> list:
    return [(frame, v) for frame, v in got if isinstance(v, ExitIntent)]


def run(ticks: str, *plugins: Plugin, events: str = "--x", clock: str = "-k", **lookup):
    table = dict(x=Arm(LONG), k=T0, f=FLAT, c=CROSS) | lookup
    return run_marbles(ticks=ticks, events=events, clock=clock, lookup=table, plugins=plugins, intents_only=False)


# -- the spec (loading it is the service's: tests/service/test_plugins.py) -------------------------


def test_a_spec_with_unknown_fields_is_refused():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"factory": "a.b:c", "stage": "tick", "kwarg": {}}, PluginSpec)


# -- tick stage failures ---------------------------------------------------------------------------


def test_a_tick_stage_that_raises_is_unplugged_and_the_stop_fires_on_the_raw_tick():
    broken = Plugin("broken", "tick", ops.map(_raise("boom")))
    got = run("---f-c", broken)
    assert reported(got) == [(3, "broken", "tick")]
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_a_tick_stage_that_raises_on_the_crossing_tick_does_not_delay_it():
    def fussy(tick_: Tick) -> Tick:
        if tick_.ltp < 99_500:
            raise ValueError("cannot handle a fall")
        return tick_

    got = run("---f-c", Plugin("fussy", "tick", ops.map(fussy)))
    assert reported(got) == [(5, "fussy", "tick")]
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_a_tick_stage_that_fails_while_being_plugged_in_is_reported_at_subscribe():
    def operator(_: object) -> object:
        raise RuntimeError("no")

    got = run("---c", Plugin("dead-on-arrival", "tick", operator))
    assert reported(got) == [(0, "dead-on-arrival", "tick")]
    assert exits(got) == [(3, intent(1, "STOP", 99_000, CROSS))]


@pytest.mark.parametrize(
    ("name", "operator"),
    [
        ("completes", ops.take(1)),
        ("errors", ops.flat_map(lambda _: __import__("reactivex").throw(RuntimeError("x")))),
        ("wrong-type", ops.map(lambda t: t.ltp)),
        ("not-an-operator", lambda source: "a string"),
    ],
)
def test_a_tick_stage_that_misbehaves_is_unplugged(name, operator):
    got = run("---f-c", Plugin(name, "tick", operator))
    assert [r[1] for r in reported(got)] == [name]
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_a_tick_stage_that_withholds_a_real_move_is_overruled_on_the_next_crossing_tick():
    deaf = Plugin("deaf", "tick", ops.filter(lambda _: False))
    lower = tick(97_500)
    got = run("---c-l", deaf, l=lower)
    withheld = [(f, v) for f, v in got if isinstance(v, PluginWithheld)]
    assert withheld == [(5, PluginWithheld("deaf", "2885", lower))]
    assert exits(got) == [(5, intent(1, "STOP", 99_000, lower))]


def test_a_withheld_crossing_fires_when_hold_ms_of_clock_passes():
    deaf = Plugin("deaf", "tick", ops.filter(lambda _: False))
    later = T0 + 1_000
    got = run("---c", deaf, clock="-k---n", n=later)
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_a_filter_may_drop_a_single_spike_that_reverts():
    only_sane = Plugin("sane", "tick", ops.filter(lambda t: t.ltp > 99_000))
    got = run("---c-f-f", only_sane)
    assert exits(got) == [] and not [v for _, v in got if isinstance(v, PluginWithheld)]


def test_a_tick_stage_that_only_smooths_the_price_is_overruled_too():
    flat = Plugin("flatten", "tick", ops.map(lambda t: msgspec.structs.replace(t, ltp=100_000)))
    got = run("---c-c", flat)
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_an_engine_error_is_not_blamed_on_the_plug_in():
    faults: list[Exception] = []

    def emit(item: object) -> None:
        if isinstance(item, ExitIntent):
            raise LookupError("the consumer broke")

    pipeline = Pipeline(emit, PipelineConfig(), [Plugin("fine", "tick", ops.map(lambda t: t))], faults.append)
    pipeline.on_clock(T0)
    pipeline.on_event(Arm(LONG))
    pipeline.on_tick(CROSS)
    assert [type(f) for f in faults] == [LookupError]
    assert pipeline._tick_stages[0].alive


# -- signal and observer stages --------------------------------------------------------------------


def test_a_signal_stage_adds_custom_exits_it_cannot_disguise():
    def exit_on_flat(source):
        return source.pipe(
            ops.filter(lambda item: isinstance(item, Tick) and item.ltp == 100_000),
            ops.map(lambda item: ExitIntent(1, "STOP", None, item)),
        )

    got = run("---f-f", Plugin("flat-exit", "signal", exit_on_flat))
    assert exits(got) == [(3, intent(1, "CUSTOM", None, FLAT, "flat-exit"))]


def test_a_signal_stage_that_raises_is_unplugged_and_stops_still_fire():
    got = run("---f-c", Plugin("flaky", "signal", ops.map(_raise("indicator broke"))))
    assert reported(got) == [(1, "flaky", "signal")]  # at the first thing it saw
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_a_runaway_signal_stage_is_unplugged():
    def chatter(source):
        refused = ops.filter(lambda i: isinstance(i, Refused))
        return source.pipe(refused, ops.map(lambda _: ExitIntent(99, "CUSTOM", None, None)))

    def seed(source):
        flat = ops.filter(lambda i: isinstance(i, Tick) and i.ltp == 100_000)
        return source.pipe(flat, ops.map(lambda _: ExitIntent(99, "CUSTOM", None, None)))

    got = run("---f-c", Plugin("chatter", "signal", chatter), Plugin("seed", "signal", seed))
    assert reported(got) == [(3, "chatter", "signal")]
    assert exits(got) == [(5, intent(1, "STOP", 99_000, CROSS))]


def test_an_observer_that_raises_is_unplugged_and_nothing_else_changes():
    got = run("---c", Plugin("noisy", "observer", ops.map(_raise("disk full"))))
    assert reported(got) == [(1, "noisy", "observer")]
    assert exits(got) == [(3, intent(1, "STOP", 99_000, CROSS))]
