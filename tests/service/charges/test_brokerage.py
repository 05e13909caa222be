"""Brokerage plans: flat per order, or a percentage with a cap and a minimum."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from service.charges import ANGEL_ONE, BrokeragePlan, ChargesError, FlatPerOrder, PercentOfOrder, flat_plan


def test_flat_is_per_executed_order():
    assert flat_plan(20).for_orders("options", (1_00, 5_00_000_00, 7_00)) == 6000


def test_a_percentage_is_capped_and_floored():
    rule = PercentOfOrder(Decimal("0.25"), cap_paise=2000, minimum_paise=500)
    # 0.25 % of Rs 1000 = Rs 2.50 = 250 p -> minimum 500; of Rs 5000 = 1250 p; of Rs 10 000 = 2500 p -> cap 2000
    assert [rule.for_order(v) for v in (1000_00, 5000_00, 10000_00)] == [500, 1250, 2000]
    assert PercentOfOrder("0.03").for_order(333) == Fraction(999, 10000)  # exact, rounded only in the total


def test_angel_ones_preset():
    # the lower of Rs 20 and 0.25 % (intraday, futures) or 0.1 % (delivery); options Rs 20 an order
    assert ANGEL_ONE.for_orders("equity_intraday", (4000_00, 10000_00)) == 1000 + 2000
    assert ANGEL_ONE.for_orders("futures", (4000_00,)) == 1000
    assert ANGEL_ONE.for_orders("equity_delivery", (4000_00, 30000_00)) == 400 + 2000
    assert ANGEL_ONE.for_orders("options", (4000_00,)) == 2000


def test_a_plan_names_every_segment():
    with pytest.raises(ChargesError, match="missing segments \\['options'\\]"):
        BrokeragePlan("partial", {s: FlatPerOrder(0) for s in ("equity_intraday", "equity_delivery", "futures")})


@pytest.mark.parametrize("make", [
    lambda: FlatPerOrder(-1),
    lambda: PercentOfOrder(Decimal("-0.1")),
    lambda: PercentOfOrder(0.1),
    lambda: PercentOfOrder(Decimal("0.1"), cap_paise=100, minimum_paise=200),
    lambda: flat_plan(Decimal("0.005")),
])
def test_a_wrong_rule_is_refused(make):
    with pytest.raises(ChargesError):
        make()
