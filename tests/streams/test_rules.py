from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.streams.streams_helpers import rule, trade, trail

from streams import Instrument, RuleError, Side, SizedFor, StopRule, levels


@pytest.mark.parametrize(
    ("stop", "long_stop", "short_stop"),
    [
        (rule("points", 10), 99_000, 101_000),
        (rule("entry_pct", "1.5"), 98_500, 101_500),
        # 0.333 % of 1000.00 = 3.33: the stop rounds to the tick towards the entry
        (rule("entry_pct", "0.333"), 99_670, 100_330),
        # Rs 500 at risk on 3 shares = 166.6667 a share
        (rule("rupees", 500), 83_335, 116_665),
    ],
)
def test_stop_levels_for_each_distance_type(stop, long_stop, short_stop):
    assert levels(trade(side="long", quantity=3, stop=stop)).stop == long_stop
    assert levels(trade(side="short", quantity=3, stop=stop)).stop == short_stop


def test_fund_pct_risks_a_share_of_the_fund_over_the_quantity():
    # 2 % of Rs 1,00,000 over 40 shares = Rs 50 a share
    long = trade(side="long", quantity=40, fund=10_000_000, stop=rule("fund_pct", 2))
    short = trade(side="short", quantity=40, fund=10_000_000, stop=rule("fund_pct", 2))
    assert (levels(long).stop, levels(short).stop) == (95_000, 105_000)


def sized(kind: str, value: int) -> StopRule:
    return StopRule(kind, Decimal(value), sized=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(("stop", "long_stop", "short_stop"), [
    # Rs 1 000 at risk; q* = Rs 1,00,000 / Rs 1 000 = 100 shares → Rs 10 a share, whatever the 1 share held
    (sized("rupees", 1000), 99_000, 101_000),
    # 2 % of Rs 1,00,000 = Rs 2 000 over q* = 100 → Rs 20
    (sized("fund_pct", 2), 98_000, 102_000),
])
def test_a_sized_rule_divides_by_the_fund_sized_quantity(stop, long_stop, short_stop):
    q_star = SizedFor(Decimal(10_000_000), 100_000)
    for side, level in (("long", long_stop), ("short", short_stop)):
        made = trade(side=side, quantity=1, fund=10_000_000, stop=stop, sized_for=q_star)
        assert levels(made).stop == level
    # without q* (a trade stored before it was recorded) the filled quantity is the divisor
    assert levels(trade(side="long", quantity=40, stop=sized("rupees", 1000))).stop == 97_500


def test_q_star_with_leverage_and_an_odd_price_is_exact():
    # Rs 1 000 over q* = (Rs 1,00,000 × 5) / Rs 764 → Rs 1.528 a share; long stop rounds up to 998.50
    made = trade(side="long", quantity=1, stop=sized("rupees", 1000), sized_for=SizedFor(Decimal(50_000_000), 76_400))
    assert levels(made).stop == 99_850


def test_an_unsized_rule_ignores_q_star():
    made = trade(side="long", quantity=4, stop=rule("rupees", 100), sized_for=SizedFor(Decimal(10_000_000), 100_000))
    assert levels(made).stop == 97_500  # Rs 100 / 4


def test_a_distance_below_one_tick_becomes_one_tick():
    assert levels(trade(side="long", stop=rule("points", "0.02"))).stop == 99_995
    assert levels(trade(side="short", stop=rule("points", "0.02"))).stop == 100_005


def test_an_entry_off_the_tick_grid_still_leaves_a_full_tick():
    # entry 1000.07, stop 0.05 below = 1000.02 -> rounds up to 1000.05, only 2 paise away -> 1000.00
    assert levels(trade(side="long", entry=100_007, stop=rule("points", "0.05"))).stop == 100_000
    assert levels(trade(side="short", entry=100_007, stop=rule("points", "0.05"))).stop == 100_015


@pytest.mark.parametrize(
    ("target", "long_target", "short_target"),
    [(rule("points", 20), 102_000, 98_000), (rule("entry_pct", "0.333"), 100_330, 99_670)],
)
def test_target_levels_round_towards_the_entry(target, long_target, short_target):
    assert levels(trade(side="long", target=target)).target == long_target
    assert levels(trade(side="short", target=target)).target == short_target


def test_trail_offset_in_whole_ticks_and_activation_price_exact():
    lv = levels(trade(side="long", trailing=trail("points", "2.02", rule("entry_pct", "0.333"))))
    assert (lv.trail_offset, lv.activation_price) == (200, 100_333)
    lv = levels(trade(side="short", trailing=trail("points", "0.01", rule("points", 5))))
    assert (lv.trail_offset, lv.activation_price) == (5, 99_500)


def test_no_activation_means_trailing_from_the_entry():
    lv = levels(trade(side="long", trailing=trail("points", 5)))
    assert lv.activation_price == lv.entry == 100_000


def test_levels_use_the_basis_instrument_and_its_side():
    # a long put guarded on the underlying: the stop is above the underlying's entry
    option = trade(
        side="long",
        entry=15_000,
        stop=rule("points", 50),
        basis=Instrument("99926000", "NSE", 5),
        basis_entry=2_400_000,
        basis_side=Side.SHORT,
    )
    lv = levels(option)
    assert (lv.side, lv.entry, lv.stop) == (Side.SHORT, 2_400_000, 2_405_000)


@pytest.mark.parametrize(
    ("made", "field"),
    [
        (dict(stop=rule("points", 1000)), "stoploss"),  # distance = the entry: stop at zero
        (dict(stop=rule("entry_pct", 120), side="short"), "stoploss"),
        (dict(stop=rule("points", 0)), "stoploss"),
        (dict(stop=rule("points", -5)), "stoploss"),
        (dict(stop=rule("fund_pct", 1)), "fund"),
        (dict(stop=rule("bogus", 1)), "stoploss"),
        (dict(target=rule("points", 1000), side="short"), "target"),
        (dict(trailing=trail("rupees", 100)), "trail"),
        (dict(trailing=trail("points", 5, rule("fund_pct", 1))), "trail.activation"),
        (dict(trailing=trail("points", 2000)), "trail"),
        (dict(quantity=0), "quantity"),
        (dict(entry=0), "entry"),
    ],
)
def test_refused_rules_name_the_field(made, field):
    with pytest.raises(RuleError) as refused:
        levels(trade(**made))
    assert refused.value.field == field
    assert refused.value.reason


def test_a_float_value_means_its_decimal_text():
    # 0.1 as a float is 0.1000000000000000055...; taken as text it is exactly 10 paise
    assert levels(trade(side="long", stop=rule("points", 0.1))).stop == 99_990


@given(st.fractions(min_value=-10**9, max_value=10**9) | st.integers(-10**9, 10**9), st.integers(1, 10_000))
def test_rounding_to_the_tick_is_the_plain_floor_and_ceiling(price, tick):
    from fractions import Fraction
    import math

    from streams.rules import ceil_tick, floor_tick

    assert floor_tick(price, tick) == math.floor(Fraction(price) / tick) * tick
    assert ceil_tick(price, tick) == math.ceil(Fraction(price) / tick) * tick
