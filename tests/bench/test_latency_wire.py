"""bench.latency_wire: the crossing ticks fire one exit each where the stops part, and sweep where they do not."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.latency import base36
from bench._wirecross import TICK, Step, crossing_steps


def test_one_tick_below_each_stop_from_the_highest_tokens_taking_turns():
    stops = {"A": [(1, 1_000), (2, 1_100), (3, 900), (4, 900), (5, 895)], "B": [(6, 500)]}
    assert crossing_steps(stops) == [
        Step("A", 1_095, ("tg2X1",)), Step("B", 495, ("tg6X1",)),
        Step("A", 995, ("tg1X1",)),
        Step("A", 895, ("tg3X1", "tg4X1", "tg5X1")),  # equal stops, and one a tick below: swept together
    ]
    assert [step.measured for step in crossing_steps(stops)] == [True, True, True, False]


@given(st.dictionaries(st.sampled_from("ABCD"), st.lists(st.integers(1, 400).map(lambda n: n * TICK), max_size=12)))
def test_every_trade_fires_once_at_a_tick_through_its_stop_and_no_earlier(stops_by_token):
    stops = {token: [(i * 100 + n, stop) for n, stop in enumerate(levels)]
             for i, (token, levels) in enumerate(stops_by_token.items())}
    steps = crossing_steps(stops)
    for token, trades in stops.items():
        prices = [step for step in steps if step.token == token]
        assert [s.ltp for s in prices] == sorted((s.ltp for s in prices), reverse=True)  # the price only falls
        for trade_id, stop in trades:  # the reference: a long stop fires on the first tick at or below it
            first = next(n for n, step in enumerate(prices) if step.ltp <= stop)
            assert [n for n, step in enumerate(prices) if f"tg{base36(trade_id)}X1" in step.tags] == [first]
