from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from service.charges import ANGEL_ONE, Fills, charges
from service.replay.errors import ReplayError
from service.replay.outcomes import Slippage, brokerage_plan
from service.replay.table import read_csv, write_csv
from tests.service.replay.synth import plan, replay, rules, ticks


def test_slippage_is_read_and_moves_fills_against_the_trade():
    assert Slippage.parse("none") == Slippage()
    assert Slippage.parse("ticks:2").fill(80_000, 5, buying=False) == 79_990
    assert Slippage.parse("ticks:2").fill(80_000, 5, buying=True) == 80_010
    assert Slippage.parse("pct:0.1").fill(80_000, 5, buying=False) == 79_920
    assert Slippage.parse("pct:0.01").fill(80_003, 5, buying=True) == 80_003 + 10  # 8.0003 paise, out to the tick
    assert str(Slippage.parse("ticks:1")) == "1 tick" and str(Slippage.parse("pct:0.05")) == "0.05%"
    for bad in ("ticks:1.5", "ticks", "pts:2", ""):
        with pytest.raises(ReplayError):
            Slippage.parse(bad)


def test_brokerage_plans_by_name():
    assert brokerage_plan("angel") is ANGEL_ONE
    assert brokerage_plan("none").for_orders("equity_intraday", (10**9,)) == 0
    assert brokerage_plan("20").for_orders("options", (1, 2)) == 4000
    with pytest.raises(ReplayError):
        brokerage_plan("cheap")


def test_charges_are_the_calculators_on_the_entry_and_exit_orders_and_net_is_gross_less_them():
    rows, _ = replay([plan(quantity=50, rules_=rules(stop=("points", 5)))], ticks([801, 794]))
    row = rows[("live", 1)]
    expected = charges(Fills((50 * 80_000,), (50 * 79_400,)), "equity_intraday", "NSE", dt.date(2026, 12, 4), ANGEL_ONE)
    assert (row.brokerage, row.stt, row.exchange_txn, row.sebi, row.stamp, row.gst, row.charges) == (
        expected.brokerage, expected.stt, expected.exchange_txn, expected.sebi, expected.stamp, expected.gst, expected.total)
    assert row.net == row.gross - row.charges == 50 * -600 - expected.total


def test_a_short_buys_back_and_a_delivery_trade_pays_delivery_rates():
    rows, _ = replay([plan(side="SHORT", product="DELIVERY", rules_=rules(stop=("points", 5)))], ticks([806]))
    row = rows[("live", 1)]
    expected = charges(Fills((10 * 80_600,), (10 * 80_000,)), "equity_delivery", "NSE", dt.date(2026, 12, 4), ANGEL_ONE)
    assert (row.gross, row.charges) == (-6_000, expected.total)


def test_an_exchange_without_a_schedule_has_no_charges_and_says_so():
    rows, _ = replay([plan(exchange="MCX", rules_=rules(stop=("points", 5)))], ticks([794], exchange="MCX"))
    row = rows[("live", 1)]
    assert row.gross == -6_000 and row.charges is None and row.net is None and "no charges" in row.note


def test_the_csv_keeps_paise_and_reads_back(tmp_path):
    rows, _ = replay([plan(rules_=rules(stop=("points", 5)))], ticks([801, 794]), slippage="ticks:1")
    path = tmp_path / "replay.csv"
    write_csv(path, rows.values())
    assert read_csv(path) == list(rows.values())
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["variant", "trade_id", "account"] and "exit_ist" in header and "gross" in header
    assert Decimal(read_csv(path)[0].exit_price) == 79_395
