from __future__ import annotations

from hypothesis import given, strategies as st

from service.replay.paths import ist_text, thin, window


def test_a_window_is_inclusive_at_both_ends():
    assert window([1, 2, 3, 4, 5], [10, 20, 30, 40, 50], 2, 4) == ([2, 3, 4], [20, 30, 40])


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=3_000), st.integers(4, 400))
def test_thinning_keeps_the_ends_and_every_extreme_within_the_bound(prices, limit):
    ms = list(range(len(prices)))
    kept_ms, kept = thin(ms, prices, limit)
    assert kept_ms == sorted(kept_ms) and kept_ms[0] == 0 and kept_ms[-1] == len(prices) - 1
    assert len(kept) <= max(limit, len(prices) if len(prices) <= limit else limit + 2)
    assert min(kept) == min(prices) and max(kept) == max(prices)
    assert all(prices[m] == p for m, p in zip(kept_ms, kept))


def test_times_read_as_ist():
    assert ist_text(1_796_358_600_250) == "2026-12-04 10:00:00.250"
