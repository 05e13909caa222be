"""The order ledger on the model broker: orders sent with their rows, the broker's news applied —
fills into trades and position books, a finished order no longer working or reserved."""
from __future__ import annotations

import time

from service.broker import BrokerOrder, OrderKind, OrderSide, OrderStatus, OrderUpdate
from service.broker.model import Fault
from service.store import OrderRecord
from service.trades import TradeState, tag_for
from tests.service.execution.conftest import KEY, PRICE, SBIN, Parts


async def test_an_entry_fill_opens_the_trade_and_counts_in_the_book(parts: Parts):
    assert parts.book.held(KEY, True) == 0
    trade = await parts.pending(5)
    record = await parts.send(trade, "entry", 1, 5)
    assert record is not None and record.tag == tag_for(trade.id, "entry", 1)
    assert record.broker_order_id and record.status in (OrderStatus.SENT, OrderStatus.COMPLETE)
    opened = await parts.in_state(trade.id, TradeState.OPEN)
    assert (opened.filled, opened.entry_price) == (5, PRICE)
    assert parts.fills == [(record.tag, 5, PRICE, False)]
    await parts.until(lambda: parts.orders.get(record.tag).status == OrderStatus.COMPLETE, "the entry complete")
    assert parts.book.held(KEY, True) == 5  # known from the fill, without asking the broker
    assert await parts.book.refresh()  # nothing of ours still working on it
    kinds = await parts.kinds(trade.id)  # the fill's news may be applied before the ack is recorded
    assert kinds[:2] == ["created", "sized"] and sorted(kinds[2:]) == ["entry_fill", "entry_sent"]
    assert parts.published[-1].state is TradeState.OPEN


async def test_the_last_exit_fill_closes_the_trade(parts: Parts):
    trade = await parts.opened(5)
    record = await parts.send(trade, "exit", 1, 5, price=PRICE - 400)  # a marketable sell limit
    assert record is not None
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    assert (closed.exited, closed.realised_pnl) == (5, 0)
    assert parts.fills[-1] == (record.tag, 5, PRICE, True)
    assert parts.broker.net("NSE", SBIN) == 0 and parts.book.held(KEY, True) == 0


async def test_a_resting_exit_is_reserved_until_it_is_cancelled(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(fill="rest"))
    record = await parts.send(trade, "exit", 1, 3, price=PRICE - 400)
    assert record is not None
    assert parts.book.held(KEY, True) == 2  # the 3 on their way are no one else's to sell
    await parts.broker.cancel_order(record.broker_order_id)
    await parts.until(lambda: parts.orders.get(record.tag).status == OrderStatus.CANCELLED, "the exit cancelled")
    assert parts.book.held(KEY, True) == 5
    assert (await parts.trade(trade.id)).state is TradeState.OPEN


async def test_a_partly_filled_exit_releases_only_what_did_not_fill(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(fill="partial", fraction=0.5))
    record = await parts.send(trade, "exit", 1, 4, price=PRICE - 400)
    assert record is not None
    await parts.until(lambda: parts.orders.get(record.tag).filled == 2, "half the exit filled")
    assert parts.book.held(KEY, True) == 1  # net 3, of which 2 still reserved for the rest of the exit
    await parts.broker.cancel_order(record.broker_order_id)
    await parts.until(lambda: parts.orders.get(record.tag).status == OrderStatus.CANCELLED, "the rest cancelled")
    assert parts.book.held(KEY, True) == 3 == parts.broker.net("NSE", SBIN)
    assert (await parts.trade(trade.id)).exited == 2


async def test_a_refused_entry_leaves_the_trade_rejected_and_nothing_working(parts: Parts):
    trade = await parts.pending(5)
    parts.broker.arm(Fault(placement="refused", text="RMS: margin exceeds"))
    assert await parts.send(trade, "entry", 1, 5) is None
    rejected = await parts.trade(trade.id)
    assert rejected.state is TradeState.REJECTED and rejected.reason == "RMS: margin exceeds [AB4009]"
    assert parts.orders.get(tag_for(trade.id, "entry", 1)).status == OrderStatus.REJECTED
    assert await parts.book.refresh()  # the refused order no longer counts as working


async def test_a_placement_in_doubt_stays_reserved_until_the_rule_finds_it_never_placed(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(placement="doubt_lost"))
    record = await parts.send(trade, "exit", 1, 5, price=PRICE - 400)
    assert record is not None and record.status == OrderStatus.IN_DOUBT
    assert await parts.event(trade.id, "exit_in_doubt") == [{"tag": record.tag, "reason": record.text}]
    assert parts.book.held(KEY, True) == 0  # it may be at the broker: its units stay reserved
    started = time.monotonic()
    assert not await parts.doubt.settle(trade, record.tag)
    assert time.monotonic() - started >= parts.doubt.config.doubt_settle_s  # two reads that far apart
    assert parts.orders.get(record.tag).status == OrderStatus.FAILED
    assert parts.book.held(KEY, True) == 5


async def test_a_placement_in_doubt_found_at_the_broker_is_applied(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(placement="doubt_placed", updates="lost"))
    record = await parts.send(trade, "exit", 1, 5, price=PRICE - 400)
    assert record is not None and record.status == OrderStatus.IN_DOUBT
    assert await parts.doubt.settle(trade, record.tag)  # the order book shows it: filled
    assert parts.orders.get(record.tag).status == OrderStatus.COMPLETE
    assert (await parts.trade(trade.id)).state is TradeState.CLOSED


async def test_news_of_another_order_makes_its_instrument_unknown(parts: Parts):
    assert parts.book.held(KEY, True) == 0
    manual = BrokerOrder(order_id="X1", unique_order_id="x-1", tag="", exchange="NSE", token=SBIN,
                         tradingsymbol="SBIN-EQ", side=OrderSide.BUY, kind=OrderKind.MARKET, product="INTRADAY",
                         variety="NORMAL", quantity=2, filled=2, cancelled=0, average_price=PRICE, price=0,
                         trigger_price=0, status=OrderStatus.COMPLETE)
    parts.orders.on_order_update(OrderUpdate("AB05", manual))
    assert parts.book.held(KEY, True) is None  # what it did is not ours to count: a snapshot will tell
    await parts.until(lambda: parts.book.held(KEY, True) is not None, "the book's own snapshot", timeout=3)


def test_out_of_order_writes_keep_the_most_advanced_view(parts: Parts):
    def record(status: str, filled: int, updated_ms: int) -> OrderRecord:
        return OrderRecord(id=1, trade_id=7, role="exit", attempt=1, tag="tg7X1", broker_order_id="M1",
                           unique_order_id="u1", side="SELL", kind="LIMIT", quantity=5, price=PRICE, status=status,
                           filled=filled, average_price=PRICE, text="", created_ms=0, updated_ms=updated_ms)

    parts.orders.remember(record(OrderStatus.COMPLETE, 5, 20))
    parts.orders.remember(record(OrderStatus.SENT, 0, 30))  # the write of the ack finished last
    assert parts.orders.get("tg7X1").status == OrderStatus.COMPLETE
    assert parts.orders.tags(7) == {"tg7X1"}
