"""A trade's charges from its fills, folded as the store folds them, against the plain reference."""
from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.charges import flat_plan
from service.charges.setting import charges_problems, parse_plan
from service.charges.trades import Charging
from service.trades import TradeEvent, TradeRecord, TradeSpec, TradeState, fold
from tests.service.charges.test_reference import reference

DAY_MS = 1_796_356_000_000  # 2026-12-04 09:16 IST
CHARGING = Charging(flat_plan(20))


def _trade(side: str, exchange: str = "NSE", product: str = "INTRADAY", **spec) -> TradeRecord:
    return TradeRecord(id=1, alert_id=None, account="A", strategy="s", exchange=exchange, token="3045",
                       tradingsymbol="SBIN-EQ", side=side, product=product, created_ms=DAY_MS,
                       spec=TradeSpec(**spec))


def _fill(trade: TradeRecord, kind: str, tag: str | None, quantity: int, price: int, at_ms: int) -> TradeRecord:
    data = {"quantity": quantity, "price": price}
    if tag is not None:
        data["tag"] = tag
    return fold(trade, TradeEvent(kind=kind, at_ms=at_ms, data=data))


# (order number, quantity, price paise): fills of up to 3 orders, an order possibly filled in parts
fills = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 500), st.integers(100, 500_000)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(side=st.sampled_from(["LONG", "SHORT"]), entries=fills, exits=fills, untagged=st.booleans())
def test_a_closed_trade_is_charged_per_executed_order(side, entries, exits, untagged):
    trade = _trade(side)
    orders: dict[str, dict[str, int]] = {"entry": {}, "exit": {}}
    at = DAY_MS
    for kind, role, letter, legs in (("entry_fill", "entry", "E", entries), ("exit_fill", "exit", "X", exits)):
        for number, quantity, price in legs:
            at += 1
            tag = None if (untagged and role == "exit") else f"tg1{letter}{number}"
            key = tag or f"@{at}"
            orders[role][key] = orders[role].get(key, 0) + quantity * price
            trade = _fill(trade, kind, tag, quantity, price, at)
    trade = fold(trade, TradeEvent(kind="closed", at_ms=at + 1))
    buys, sells = tuple(orders["entry"].values()), tuple(orders["exit"].values())
    if side == "SHORT":
        buys, sells = sells, buys
    expected = reference(buys, sells, "equity_intraday", "NSE", dt.date(2026, 12, 4), lambda v: 2000)
    charged = CHARGING.of(trade, trade.realised_pnl, None)
    b = charged.breakdown
    assert (b.brokerage, b.stt, b.exchange_txn, b.sebi, b.stamp, b.gst, b.total) == expected
    assert charged.net == trade.realised_pnl - expected[-1]


def test_what_is_open_is_charged_as_an_exit_at_the_price():
    trade = _fill(_trade("LONG"), "entry_fill", "tg1E1", 100, 80_000, DAY_MS)
    assert trade.state is TradeState.OPEN
    no_price = CHARGING.of(trade, None, None)
    assert no_price.breakdown is None and no_price.net is None and "price" in no_price.why
    charged = CHARGING.of(trade, 100 * 1_000, 81_000)
    expected = reference((8_000_000,), (8_100_000,), "equity_intraday", "NSE", dt.date(2026, 12, 4), lambda v: 2000)
    assert charged.breakdown.total == expected[-1] == 7568  # Rs 75.68: the hand case of the shared notes
    assert charged.net == 100 * 1_000 - 7568


def test_segments_follow_the_trade():
    option = _fill(_trade("LONG", exchange="NFO", product="CARRYFORWARD", right="CE"), "entry_fill", "tg1E1", 75, 12_000, DAY_MS)
    option = fold(_fill(option, "exit_fill", "tg1X1", 75, 13_000, DAY_MS + 1), TradeEvent(kind="closed", at_ms=DAY_MS + 2))
    expected = reference((75 * 12_000,), (75 * 13_000,), "options", "NSE", dt.date(2026, 12, 4), lambda v: 2000)
    assert CHARGING.of(option, option.realised_pnl, None).breakdown.total == expected[-1]
    commodity = _fill(_trade("LONG", exchange="MCX", instrumenttype="FUTCOM"), "entry_fill", "tg1E1", 1, 100, DAY_MS)
    refused = CHARGING.of(commodity, 0, 100)
    assert refused.breakdown is None and refused.net is None and "MCX" in refused.why


def test_a_trade_stored_before_orders_were_kept_counts_one_order_a_side():
    trade = msgspec.structs.replace(_trade("LONG"), filled=10, entry_value=10 * 50_000, exited=10,
                                    exit_value=10 * 51_000, state=TradeState.CLOSED, realised_pnl=10_000)
    expected = reference((500_000,), (510_000,), "equity_intraday", "NSE", dt.date(2026, 12, 4), lambda v: 2000)
    assert CHARGING.of(trade, 10_000, None).breakdown.total == expected[-1]


@pytest.mark.parametrize(("text", "order_value", "fee"), [
    ("angel-one", 8_000_000, 2000), ("angel-one", 100_000, 250), ("20", 1, 2000), ("0", 10**9, 0),
    ("0.03%", 10_000_000, 3000), ("0.03%<=20", 10_000_000, 2000), ("12.50", 5, 1250),
])
def test_brokerage_setting(text, order_value, fee):
    assert parse_plan(text).for_orders("equity_intraday", (order_value,)) == fee


@pytest.mark.parametrize("text", ["twenty", "-5", "Rs 20", "%", "5%<=", "0.001%<=x", "1.234"])
def test_a_brokerage_setting_that_means_nothing_is_refused(text):
    assert [name for name, _ in charges_problems({"brokerage": text})] == ["BROKERAGE"]


def test_a_schedule_file_that_is_not_one_is_refused(tmp_path):
    bad = tmp_path / "rates.json"
    bad.write_text("{}")
    assert [name for name, _ in charges_problems({"charges_schedule": str(bad)})] == ["CHARGES_SCHEDULE"]
