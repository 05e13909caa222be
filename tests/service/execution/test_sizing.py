from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from service.execution.sizing import size_equity, size_future, size_option


def test_equity_is_fund_capped_by_margin():
    assert size_equity(fund=100_000_00, margin=50_000_00, price=800_00).quantity == 62
    assert size_equity(fund=10_000_00, margin=50_000_00, price=800_00).quantity == 12
    assert size_equity(fund=10_000_00, margin=50_000_00, price=800_00, leverage=Decimal(5)).quantity == 62


def test_equity_refusals_say_why():
    sized = size_equity(fund=500_00, margin=1_000_00, price=800_00)
    assert sized.refused and "less than one share" in sized.reason
    sized = size_equity(fund=10_000_00, margin=500_00, price=800_00, quantity=5)
    assert sized.refused and "not one share" in sized.reason and "5 asked" in sized.reason
    assert size_equity(fund=10_000_00, margin=10_000_00, price=800_00, quantity=5).quantity == 5


def test_an_alert_quantity_above_the_margin_is_capped_not_refused():
    sized = size_equity(fund=10_000_00, margin=1_000_00, price=800_00, quantity=5)
    assert (sized.quantity, sized.asked, sized.refused) == (1, 5, False)
    assert sized.reason == "capped by margin: 1000.00 allows 1 of the 5 shares asked"
    assert sized.event() == {"quantity": 1, "asked": 5, "reason": sized.reason}
    within = size_equity(fund=10_000_00, margin=10_000_00, price=800_00, quantity=5)
    assert within.asked is None and within.event() == {"quantity": 5}


def test_options_in_whole_lots():
    assert size_option(fund=100_000_00, margin=1_000_000_00, premium=120_00, lot_size=75).quantity == 11 * 75
    sized = size_option(fund=5_000_00, margin=1_000_000_00, premium=120_00, lot_size=75)
    assert sized.refused and "one lot costs 9000.00" in sized.reason
    assert size_option(fund=0, margin=100_000_00, premium=100_00, lot_size=75, lots=2).quantity == 150
    capped = size_option(fund=0, margin=20_000_00, premium=100_00, lot_size=75, lots=5)
    assert (capped.quantity, capped.asked) == (150, 375) and "2 of the 5 lots" in capped.reason
    assert size_option(fund=0, margin=5_000_00, premium=100_00, lot_size=75, lots=5).refused


def test_futures_in_whole_lots_of_the_brokers_margin():
    # One NIFTY lot blocks ₹2,70,000: a ₹6,00,000 allocation buys 2 lots, 150 units.
    assert size_future(fund=600_000_00, margin=1_000_000_00, lot_margin=270_000_00, lot_size=75).quantity == 150
    sized = size_future(fund=100_000_00, margin=1_000_000_00, lot_margin=270_000_00, lot_size=75)
    assert sized.refused and sized.reason == "one lot needs a margin of 270000.00, more than the allocation 100000.00"
    capped = size_future(fund=0, margin=600_000_00, lot_margin=270_000_00, lot_size=75, lots=3)
    assert (capped.quantity, capped.asked) == (150, 225)
    assert size_future(fund=0, margin=600_000_00, lot_margin=0, lot_size=75).refused


# A reference model of sizing, written as plainly as the spec says it (trading-semantics §3):
# the cap is what the margin allows in whole units (equity) or whole lots (derivatives); a count
# the alert asks for is min(asked, cap); a sized count is min(allocation, margin) in whole units or
# lots; refused iff not one unit or lot fits.
def reference(*, asked: int | None, fund: int, margin: int, unit_cost: Fraction) -> int | None:
    """Units or lots, or None for a refusal. `unit_cost` is what one share or lot takes of the margin."""
    available = max(0, margin)
    cap = math.floor(available / unit_cost)
    count = min(asked, cap) if asked is not None else math.floor(min(fund, available) / unit_cost)
    return count if count >= 1 else None


asked_counts = st.none() | st.integers(1, 10_000)


@given(fund=st.integers(0, 10**10), margin=st.integers(-10**6, 10**10), price=st.integers(5, 10**7),
       leverage=st.sampled_from([Decimal(1), Decimal(2), Decimal("4.5")]), asked=asked_counts)
def test_equity_matches_the_reference_model(fund, margin, price, leverage, asked):
    sized = size_equity(fund=fund, margin=margin, price=price, leverage=leverage, quantity=asked)
    expected = reference(asked=asked, fund=fund, margin=margin, unit_cost=Fraction(price) / Fraction(leverage))
    assert sized.quantity == (expected or 0) and sized.refused == (expected is None)
    assert (sized.asked is not None) == (asked is not None and expected is not None and expected < asked)
    if sized.refused:
        assert sized.reason


@given(fund=st.integers(0, 10**10), margin=st.integers(-10**6, 10**10), premium=st.integers(5, 10**6),
       lot=st.integers(1, 2000), asked=asked_counts)
def test_options_match_the_reference_model(fund, margin, premium, lot, asked):
    sized = size_option(fund=fund, margin=margin, premium=premium, lot_size=lot, lots=asked)
    expected = reference(asked=asked, fund=fund, margin=margin, unit_cost=Fraction(premium * lot))
    assert sized.quantity == (expected or 0) * lot and sized.refused == (expected is None)
    if sized.asked is not None:
        assert sized.asked == asked * lot > sized.quantity


@given(fund=st.integers(0, 10**11), margin=st.integers(-10**6, 10**11), lot_margin=st.integers(1, 10**9),
       lot=st.integers(1, 2000), asked=asked_counts)
def test_futures_match_the_reference_model(fund, margin, lot_margin, lot, asked):
    sized = size_future(fund=fund, margin=margin, lot_margin=lot_margin, lot_size=lot, lots=asked)
    expected = reference(asked=asked, fund=fund, margin=margin, unit_cost=Fraction(lot_margin))
    assert sized.quantity == (expected or 0) * lot and sized.refused == (expected is None)
    assert sized.quantity % lot == 0
    if not sized.refused:
        assert sized.quantity // lot * lot_margin <= max(0, margin)


@given(fund=st.integers(0, 10**10), margin=st.integers(-10**6, 10**10), price=st.integers(5, 10**7),
       leverage=st.sampled_from([Decimal(1), Decimal(2), Decimal("4.5")]))
def test_equity_never_exceeds_allocation_or_margin(fund, margin, price, leverage):
    sized = size_equity(fund=fund, margin=margin, price=price, leverage=leverage)
    allocation = min(fund, max(0, margin))
    if sized.refused:
        assert allocation * leverage < price
    else:
        assert sized.quantity * price <= allocation * leverage < (sized.quantity + 1) * price


@given(fund=st.integers(0, 10**10), margin=st.integers(0, 10**10), premium=st.integers(5, 10**6), lot=st.integers(1, 2000))
def test_options_whole_lots_within_allocation(fund, margin, premium, lot):
    sized = size_option(fund=fund, margin=margin, premium=premium, lot_size=lot)
    if not sized.refused:
        assert sized.quantity % lot == 0
        assert sized.quantity * premium <= min(fund, margin) < sized.quantity * premium + lot * premium
