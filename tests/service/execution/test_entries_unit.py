"""The entry queue on the model broker: sized from the fund and the margin, sent in slices within the
freeze quantity, expired when queued too long, held back while a slice's placement is in doubt."""
from __future__ import annotations

import itertools

from service.broker import OrderKind, OrderSide, expired_reason
from service.broker.model import Fault
from service.trades import TradeState, tag_for
from tests.service.execution.conftest import PRICE, SBIN, Parts


async def test_an_entry_is_sized_from_the_fund_and_sent_as_one_market_order(parts: Parts):
    trade = await parts.pending()
    parts.entries.submit([trade.id], 8 * PRICE + PRICE // 2, {})  # a fund of 8.5 shares buys 8
    opened = await parts.in_state(trade.id, TradeState.OPEN)
    assert (opened.quantity, opened.filled) == (8, 8)
    [order] = parts.broker.orders(tag_for(trade.id, "entry", 1))
    assert (order.side, order.kind, order.quantity) == (OrderSide.BUY, OrderKind.MARKET, 8)
    assert parts.broker.net("NSE", SBIN) == 8


async def test_the_margin_caps_what_the_alert_asked_for(parts: Parts):
    parts.broker.cash = 3 * PRICE
    trade = await parts.pending()
    parts.entries.submit([trade.id], 10 * PRICE, {trade.id: 5})
    opened = await parts.in_state(trade.id, TradeState.OPEN)
    assert opened.quantity == 3
    [sized] = await parts.event(trade.id, "sized")
    assert (sized["quantity"], sized["asked"]) == (3, 5)


async def _filled(parts: Parts, trade_id: int, quantity: int) -> bool:
    return (await parts.trade(trade_id)).filled == quantity


async def test_a_large_entry_goes_out_in_slices_within_the_freeze_quantity(parts: Parts):
    trade = await parts.pending(freeze_qty=2)
    parts.entries.submit([trade.id], 10**10, {trade.id: 5})
    await parts.until(lambda: _filled(parts, trade.id, 5), "every slice filled")
    sent = sorted((o.tag, o.quantity) for o in parts.broker.orders(tag_for(trade.id, "entry", 1)[:-1]))
    assert sent == [(tag_for(trade.id, "entry", n), q) for n, q in ((1, 2), (2, 2), (3, 1))]
    assert parts.broker.net("NSE", SBIN) == 5


async def test_an_entry_queued_too_long_expires_instead_of_trading_late(parts: Parts):
    parts.entries.clock = itertools.count(0, 10).__next__  # every look at the clock: ten seconds later
    trade = await parts.pending()
    parts.entries.submit([trade.id], 10**10, {trade.id: 5})
    expired = await parts.in_state(trade.id, TradeState.EXPIRED)
    assert expired.reason.startswith(expired_reason(0).partition(" 0.00 s")[0])
    assert parts.broker.placements == []


async def test_a_refused_entry_is_rejected_with_the_brokers_words(parts: Parts):
    parts.broker.arm(Fault(placement="refused", text="Security is not allowed to trade"))
    trade = await parts.pending()
    parts.entries.submit([trade.id], 10**10, {trade.id: 5})
    rejected = await parts.in_state(trade.id, TradeState.REJECTED)
    assert rejected.reason == "Security is not allowed to trade [AB4009]"


async def test_a_slice_in_doubt_holds_back_the_next_until_the_rule_settles_it(parts: Parts):
    parts.broker.arm(Fault(placement="doubt_lost"))
    trade = await parts.pending(freeze_qty=2)
    parts.entries.submit([trade.id], 10**10, {trade.id: 5})
    rejected = await parts.in_state(trade.id, TradeState.REJECTED)
    assert rejected.reason == "the entry was never placed (its placement was in doubt)"
    assert [request.tag for _, request, _ in parts.broker.placements] == [tag_for(trade.id, "entry", 1)]
    assert parts.broker.net("NSE", SBIN) == 0


async def test_an_entry_in_doubt_found_at_the_broker_is_confirmed(parts: Parts):
    parts.broker.arm(Fault(placement="doubt_placed", updates="lost"))
    trade = await parts.pending()
    parts.entries.submit([trade.id], 10**10, {trade.id: 5})
    opened = await parts.in_state(trade.id, TradeState.OPEN)  # no update ever came: the order book told
    assert opened.filled == 5 and "entry_in_doubt" in await parts.kinds(trade.id)
