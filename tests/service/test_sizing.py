from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from service.sizing import size_equity, size_option


def test_equity_is_fund_capped_by_margin():
    assert size_equity(fund=100_000_00, margin=50_000_00, price=800_00).quantity == 62
    assert size_equity(fund=10_000_00, margin=50_000_00, price=800_00).quantity == 12
    assert size_equity(fund=10_000_00, margin=50_000_00, price=800_00, leverage=Decimal(5)).quantity == 62


def test_equity_refusals_say_why():
    sized = size_equity(fund=500_00, margin=1_000_00, price=800_00)
    assert sized.refused and "less than one share" in sized.reason
    sized = size_equity(fund=10_000_00, margin=1_000_00, price=800_00, quantity=5)
    assert sized.refused and "more margin" in sized.reason
    assert size_equity(fund=10_000_00, margin=10_000_00, price=800_00, quantity=5).quantity == 5


def test_options_in_whole_lots():
    assert size_option(fund=100_000_00, margin=1_000_000_00, premium=120_00, lot_size=75).quantity == 11 * 75
    sized = size_option(fund=5_000_00, margin=1_000_000_00, premium=120_00, lot_size=75)
    assert sized.refused and "one lot costs 9000.00" in sized.reason
    assert size_option(fund=0, margin=100_000_00, premium=100_00, lot_size=75, lots=2).quantity == 150


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
