from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import Engine, Tick, TokenBook
from streams.index import NO_HIGH, NO_LOW


def test_an_empty_book_is_crossed_by_no_price():
    book = TokenBook("NSE", "2885")
    assert (book.low, book.high) == (NO_LOW, NO_HIGH)
    assert book.take_crossed(1) == []


def test_the_book_caches_the_nearest_key_of_each_side():
    book = TokenBook("NSE", "2885")
    book.add_low(99_000, 1)
    book.add_low(99_500, 2)
    book.add_high(101_000, 3)
    book.add_high(100_800, 4)
    assert (book.low, book.high) == (99_500, 100_800)


def test_a_falling_price_pops_only_the_low_keys_it_reached():
    book = TokenBook("NSE", "2885")
    for trade_id, key in enumerate([98_000, 99_000, 99_500, 99_600], start=1):
        book.add_low(key, trade_id)
    book.add_high(101_000, 9)
    assert book.take_crossed(99_500) == [4, 3]
    assert (book.low, book.high, len(book)) == (99_000, 101_000, 3)


def test_a_rising_price_pops_only_the_high_keys_it_reached():
    book = TokenBook("NSE", "2885")
    book.add_high(101_000, 1)
    book.add_high(100_500, 2)
    book.add_high(102_000, 3)
    assert book.take_crossed(101_000) == [2, 1]
    assert book.high == 102_000


def test_removing_a_key_refreshes_the_cache_and_unknown_keys_raise():
    book = TokenBook("NSE", "2885")
    book.add_low(99_000, 1)
    book.add_low(99_500, 2)
    book.remove_low(99_500, 2)
    assert book.low == 99_000
    with pytest.raises(KeyError):
        book.remove_low(99_500, 2)
    book.add_high(101_000, 3)
    book.remove_high(101_000, 3)
    assert book.high == NO_HIGH


def test_a_watched_book_sends_every_price_to_the_slow_path():
    book = TokenBook("NSE", "2885")
    book.add_low(99_000, 1)
    book.set_watch(True)
    assert book.low >= 10**12 and book.high <= -(10**12)
    assert book.take_crossed(100_000) == []  # the real keys still decide what is crossed
    book.set_watch(False)
    assert book.low == 99_000


@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 50)), max_size=80))
def test_older_ticks_are_counted_per_instrument(stream):
    """A tick whose exchange time stamp is below the newest one met of its own instrument is counted;
    ticks of other instruments, or of equal stamps, are not (the plain model: a newest stamp per token)."""
    engine = Engine(lambda _: None)
    newest: dict[str, int] = {}
    expected = 0
    for token, ts in stream:
        if ts < newest.get(token, -1):
            expected += 1
        newest[token] = max(newest.get(token, -1), ts)
        engine.on_tick(Tick(token, "NSE", 100_000, ts))
    assert engine.older_ticks == expected
