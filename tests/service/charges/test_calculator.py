"""Hand-computed charges, one round trip per segment and exchange, both sides of 2026-04-01.

Every figure below is worked out by hand from the formula in `service/charges/calculator.py`: rupees
first, then paise, each charge rounded half up to the paisa, GST on the rounded charges.
"""
from __future__ import annotations

import datetime as dt

import pytest

from service.charges import ANGEL_ONE, Breakdown, Fills, charges, flat_plan

BEFORE = dt.date(2026, 3, 31)  # the last day of futures STT 0.02 %, options STT 0.10 %
FROM = dt.date(2026, 4, 1)  # Union Budget 2026: futures 0.05 %, options 0.15 %
FLAT_20 = flat_plan(20)


def test_equity_intraday_on_nse():
    # buy 100 @ 800, sell @ 810; B = 80 000, S = 81 000, T = 161 000 rupees
    # brokerage 2 orders x Rs 20                 = Rs 40        = 4000 p
    # STT 0.025 % x S = 81 000 x 0.00025          = Rs 20.25     = 2025 p
    # exch 0.00297 % x T = 161 000 x 0.0000297    = Rs 4.7817    = 478.17 p -> 478
    # SEBI 0.0001 % x T = 161 000 x 0.000001      = Rs 0.161     = 16.1 p   -> 16
    # stamp 0.003 % x B = 80 000 x 0.00003        = Rs 2.40      = 240 p
    # GST 18 % x (4000 + 478 + 16) = 0.18 x 4494  = 808.92 p     -> 809
    # total 4000 + 2025 + 478 + 16 + 240 + 809    = 7568 p
    fills = Fills.round_trip(100, 800_00, 810_00)
    assert charges(fills, "equity_intraday", "NSE", FROM, FLAT_20) == Breakdown(4000, 2025, 478, 16, 240, 809, 7568)


def test_equity_intraday_on_bse():
    # the same trade; only the exchange's charge differs
    # exch 0.00375 % x 161 000 = Rs 6.0375 = 603.75 p -> 604
    # GST 0.18 x (4000 + 604 + 16) = 0.18 x 4620 = 831.6 p -> 832
    # total 4000 + 2025 + 604 + 16 + 240 + 832 = 7717 p
    fills = Fills.round_trip(100, 800_00, 810_00)
    assert charges(fills, "equity_intraday", "BSE", FROM, FLAT_20) == Breakdown(4000, 2025, 604, 16, 240, 832, 7717)


def test_equity_intraday_is_the_same_on_both_sides_of_the_budget():
    fills = Fills.round_trip(100, 800_00, 810_00)
    assert charges(fills, "equity_intraday", "NSE", BEFORE, FLAT_20) == charges(fills, "equity_intraday", "NSE", FROM, FLAT_20)


def test_equity_delivery_on_nse_with_angel_ones_plan():
    # buy 10 @ 2500, sell @ 2600; B = 25 000, S = 26 000, T = 51 000 rupees
    # brokerage: min(Rs 20, 0.1 % x 25 000 = Rs 25) + min(Rs 20, 0.1 % x 26 000 = Rs 26) = Rs 40 = 4000 p
    # STT 0.1 % x (B + S) = 0.001 x 51 000         = Rs 51        = 5100 p
    # exch 0.00297 % x 51 000                       = Rs 1.5147    = 151.47 p -> 151
    # SEBI 0.0001 % x 51 000                        = Rs 0.051     = 5.1 p    -> 5
    # stamp 0.015 % x 25 000                        = Rs 3.75      = 375 p
    # GST 0.18 x (4000 + 151 + 5) = 0.18 x 4156     = 748.08 p     -> 748
    # total 4000 + 5100 + 151 + 5 + 375 + 748       = 10 379 p
    fills = Fills.round_trip(10, 2500_00, 2600_00)
    for day in (BEFORE, FROM):
        assert charges(fills, "equity_delivery", "NSE", day, ANGEL_ONE) == Breakdown(4000, 5100, 151, 5, 375, 748, 10379)


def test_equity_delivery_on_bse():
    # exch 0.00375 % x 51 000 = Rs 1.9125 = 191.25 p -> 191; GST 0.18 x 4196 = 755.28 -> 755
    # total 4000 + 5100 + 191 + 5 + 375 + 755 = 10 426 p
    fills = Fills.round_trip(10, 2500_00, 2600_00)
    assert charges(fills, "equity_delivery", "BSE", FROM, ANGEL_ONE) == Breakdown(4000, 5100, 191, 5, 375, 755, 10426)


def test_futures_on_nse_before_and_from_the_budget():
    # one lot of 75 bought @ 24 000, sold @ 24 100; B = 18 00 000, S = 18 07 500, T = 36 07 500 rupees
    # brokerage Rs 40 = 4000 p
    # STT before: 0.02 % x 18 07 500 = Rs 361.50 = 36 150 p; from: 0.05 % = Rs 903.75 = 90 375 p
    # exch 0.00173 % x 36 07 500 = Rs 62.40975 = 6240.975 p -> 6241
    # SEBI 0.0001 % x 36 07 500 = Rs 3.6075 = 360.75 p -> 361
    # stamp 0.002 % x 18 00 000 = Rs 36 = 3600 p
    # GST 0.18 x (4000 + 6241 + 361) = 0.18 x 10 602 = 1908.36 p -> 1908
    # total before 4000 + 36 150 + 6241 + 361 + 3600 + 1908 = 52 260 p; from: 106 485 p
    fills = Fills.round_trip(75, 24000_00, 24100_00)
    assert charges(fills, "futures", "NSE", BEFORE, FLAT_20) == Breakdown(4000, 36150, 6241, 361, 3600, 1908, 52260)
    assert charges(fills, "futures", "NSE", FROM, FLAT_20) == Breakdown(4000, 90375, 6241, 361, 3600, 1908, 106485)


def test_futures_on_bse_carry_an_unverified_exchange_charge_of_nothing():
    # BSE futures' transaction charge is in no source collected: 0, and the breakdown says so
    # GST 0.18 x (4000 + 0 + 361) = 784.98 p -> 785; total 4000 + 90 375 + 0 + 361 + 3600 + 785 = 99 121 p
    fills = Fills.round_trip(75, 24000_00, 24100_00)
    assert charges(fills, "futures", "BSE", FROM, FLAT_20) == Breakdown(4000, 90375, 0, 361, 3600, 785, 99121,
                                                                        unverified=("exchange_txn",))


def test_options_on_nse_before_and_from_the_budget():
    # 75 bought @ 120 premium, sold @ 150; B = 9000, S = 11 250, T = 20 250 rupees
    # brokerage Rs 40 = 4000 p
    # STT before 0.10 % x 11 250 = Rs 11.25 = 1125 p; from 0.15 % = Rs 16.875 = 1687.5 p -> 1688 (half up)
    # exch 0.03503 % x 20 250 = Rs 7.093575 = 709.3575 p -> 709
    # SEBI 0.0001 % x 20 250 = Rs 0.02025 = 2.025 p -> 2
    # stamp 0.003 % x 9000 = Rs 0.27 = 27 p
    # GST 0.18 x (4000 + 709 + 2) = 0.18 x 4711 = 847.98 p -> 848
    # total before 4000 + 1125 + 709 + 2 + 27 + 848 = 6711 p; from 4000 + 1688 + ... = 7274 p
    fills = Fills.round_trip(75, 120_00, 150_00)
    assert charges(fills, "options", "NSE", BEFORE, FLAT_20) == Breakdown(4000, 1125, 709, 2, 27, 848, 6711)
    assert charges(fills, "options", "NSE", FROM, FLAT_20) == Breakdown(4000, 1688, 709, 2, 27, 848, 7274)


def test_options_on_bse():
    # exch 0.0325 % x 20 250 = Rs 6.58125 = 658.125 p -> 658; GST 0.18 x (4000 + 658 + 2) = 838.8 -> 839
    # total before 4000 + 1125 + 658 + 2 + 27 + 839 = 6651 p; from 4000 + 1688 + 658 + 2 + 27 + 839 = 7214 p
    fills = Fills.round_trip(75, 120_00, 150_00)
    assert charges(fills, "options", "BSE", BEFORE, FLAT_20) == Breakdown(4000, 1125, 658, 2, 27, 839, 6651)
    assert charges(fills, "options", "BSE", FROM, FLAT_20) == Breakdown(4000, 1688, 658, 2, 27, 839, 7214)


def test_a_half_paisa_rounds_up_not_to_even():
    # intraday, 1 bought and sold @ Rs 100: STT 0.025 % x Rs 100 = 2.5 p -> 3 (to even would give 2)
    # exch 0.00297 % x Rs 200 = 0.594 p -> 1; SEBI 0.02 p -> 0; stamp 0.003 % x Rs 100 = 0.3 p -> 0
    # no brokerage: GST 0.18 x (0 + 1 + 0) = 0.18 p -> 0
    fills = Fills.round_trip(1, 100_00, 100_00)
    assert charges(fills, "equity_intraday", "NSE", FROM, flat_plan(0)) == Breakdown(0, 3, 1, 0, 0, 0, 4)


def test_orders_in_parts_are_charged_on_their_totals_and_brokerage_per_order():
    # delivery on Angel One's plan, bought in two orders (Rs 500 and Rs 30 000), sold in one (Rs 30 500)
    # brokerage: 0.1 % x 500 = Rs 0.50 (under the cap) + Rs 20 (cap) + Rs 20 (cap) = Rs 40.50 = 4050 p
    # STT 0.1 % x 61 000 = Rs 61 = 6100 p; exch 0.00297 % x 61 000 = Rs 1.8117 -> 181 p
    # SEBI 0.0001 % x 61 000 = 6.1 p -> 6; stamp 0.015 % x 30 500 = Rs 4.575 = 457.5 p -> 458
    # GST 0.18 x (4050 + 181 + 6) = 0.18 x 4237 = 762.66 p -> 763
    # total 4050 + 6100 + 181 + 6 + 458 + 763 = 11 558 p
    fills = Fills(buys=(500_00, 30000_00), sells=(30500_00,))
    assert charges(fills, "equity_delivery", "NSE", FROM, ANGEL_ONE) == Breakdown(4050, 6100, 181, 6, 458, 763, 11558)


def test_the_total_is_the_sum_of_the_charges():
    got = charges(Fills.round_trip(75, 120_00, 150_00), "options", "NSE", FROM, ANGEL_ONE)
    assert got.total == got.brokerage + got.stt + got.exchange_txn + got.sebi + got.stamp + got.gst
