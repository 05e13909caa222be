"""Where a broker stop sits, against a reference computed another way (in rupees, with fractions)."""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.execution.backstop_levels import Buffer, broker_levels, moved_enough

TICKS = st.sampled_from([1, 5, 10, 25, 100])


def reference(stop: int, long: bool, tick: int, pct: Fraction | None, paise: int | None, protection: Fraction):
    """The rule as the README states it: the trigger `buffer` behind the stop (at least two ticks), the
    limit `protection` percent of the trigger beyond it (at least one tick), both on the tick and away
    from the position."""
    behind = Fraction(stop) * pct / 100 if pct is not None else Fraction(paise)
    behind = max(math.ceil(behind / tick), 2) * tick
    trigger = stop - behind if long else stop + behind
    trigger = max(tick, math.floor(Fraction(trigger, tick)) * tick) if long else math.ceil(Fraction(trigger, tick)) * tick
    room = max(math.ceil(Fraction(trigger) * protection / 100 / tick), 1) * tick
    limit = max(tick, trigger - room) if long else trigger + room
    return trigger, limit


@given(stop=st.integers(100, 5_000_000), long=st.booleans(), tick=TICKS,
       pct=st.one_of(st.none(), st.decimals("0.01", "5", places=2)), rupees=st.integers(0, 5000),
       protection=st.decimals("0.05", "5", places=2))
def test_levels_match_the_reference(stop, long, tick, pct, rupees, protection):
    stop = stop // tick * tick
    buffer = Buffer(pct=pct) if pct is not None else Buffer(pct=None, paise=rupees)
    trigger, limit = broker_levels(stop, long, tick, buffer, protection)
    expected = reference(stop, long, tick, Fraction(str(pct)) if pct is not None else None,
                         rupees if pct is None else None, Fraction(str(protection)))
    assert (trigger, limit) == expected
    assert trigger % tick == 0 and limit % tick == 0
    if long:
        assert limit < trigger < stop or trigger == limit == tick
    else:
        assert stop + 2 * tick <= trigger < limit


def test_a_band_keeps_both_levels_inside_the_circuit():
    trigger, limit = broker_levels(10_000, True, 5, Buffer(pct=Decimal("0.2")), Decimal("5"), band=(9_600, 11_000))
    assert (trigger, limit) == (9_980, 9_600)


@pytest.mark.parametrize("text, buffer", [("0.2%", Buffer(pct=Decimal("0.2"))), (" 1.5 ", Buffer(pct=None, paise=150)),
                                          ("0.25 %", Buffer(pct=Decimal("0.25")))])
def test_buffers_parse(text, buffer):
    assert Buffer.parse(text) == buffer


@pytest.mark.parametrize("text", ["", "abc", "-1%", "25%", "1,5"])
def test_bad_buffers_are_refused(text):
    with pytest.raises(ValueError):
        Buffer.parse(text)


@given(placed=st.integers(1_000, 1_000_000), move=st.integers(-50_000, 50_000), long=st.booleans())
def test_only_a_tighter_trigger_by_the_step_moves_the_broker_stop(placed, move, long):
    wanted = placed + move if long else placed - move
    assert moved_enough(placed, wanted, long, Decimal("0.25")) == (move > 0 and move * 400 >= placed)
