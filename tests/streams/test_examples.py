"""The example plug-ins, tested the way a user would test their own (see docs/plugins.md)."""
from __future__ import annotations

from reactivex.testing.marbles import marbles_testing
from tests.streams.streams_helpers import T0, intent, rule, run_marbles, tick, trade

from streams import Arm, Plugin
from streams.examples.spike_filter import spike_filter
from streams.examples.time_exit import time_exit


def test_spike_filter_drops_a_lone_outlier_and_keeps_a_real_gap():
    normal, spike, back = tick(100_000), tick(90_000), tick(100_050)
    gap1, gap2 = tick(94_000), tick(93_900)
    lookup = dict(n=normal, s=spike, b=back, g=gap1, h=gap2)
    with marbles_testing(timespan=1.0) as (start, _cold, hot, exp):
        ticks = hot("-n-s-b-g-h-h-h|", lookup)
        expected = exp("-n---b-------h|", lookup)  # a gap that holds is accepted after 3 rejects
        assert start(ticks.pipe(spike_filter(max_jump_pct=5, max_rejects=3))) == expected


def test_spike_filter_in_front_of_the_rules_ignores_a_bad_print():
    long = trade(1, "long", stop=rule("points", 10))  # stop 990.00
    bad, fine = tick(50_000), tick(100_000)
    plugins = [Plugin("spike_filter", "tick", spike_filter(max_jump_pct=5))]
    got = run_marbles(
        ticks="--f-b-f", events="-x", clock="-k", lookup=dict(b=bad, f=fine, x=Arm(long), k=T0), plugins=plugins
    )
    assert got == []


def test_time_exit_closes_a_trade_after_its_time():
    long = trade(1, "long", stop=rule("points", 10))
    plugins = [Plugin("time_exit", "signal", time_exit(after_s=60))]
    lookup = dict(x=Arm(long), k=T0, m=T0 + 59_999, n=T0 + 60_000)
    got = run_marbles(ticks="-", events="--x", clock="-k--m-n", lookup=lookup, plugins=plugins)
    assert got == [(6, intent(1, "CUSTOM", None, None, "time_exit"))]
