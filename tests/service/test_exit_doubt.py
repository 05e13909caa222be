"""Exits in doubt (trading-semantics §5): a placement that timed out or met a 5xx, its tag not found,
may still be at the broker. It stays the trade's exit, its quantity reserved, until the broker settles
it — the order-update socket or the order book shows the tag — or two order-book reads at least
DOUBT_SETTLE_S apart both lack the tag (never placed: the next attempt goes). The Trader runs on the
model broker (`tests/support/rig.py`), so each fault is exact."""
from __future__ import annotations

import dataclasses

from service.broker import OrderStatus
from service.broker.model import Fault
from service.trades import TradeState, tag_for
from tests.support.rig import FAST, SBIN, trading_rig

THROUGH_STOP = 78_900  # the trades open at 800.00 with a 10-point stop


def exposure(exits) -> int:
    """What the trade's exits could sell if every live one filled: filled plus still working."""
    return sum(o.filled + (0 if o.terminal else o.unfilled) for o in exits)


async def test_an_exit_in_doubt_gets_no_second_exit_and_is_found_in_the_order_book(tmp_path):
    config = dataclasses.replace(FAST, doubt_settle_s=0.3)
    async with trading_rig(tmp_path, config=config) as rig:
        trade_id = await rig.open_trade(quantity=5)
        # placed, resting unfilled, its updates lost and the book showing it only after 0.2 s
        rig.broker.arm(Fault(placement="doubt_placed", fill="rest", updates="lost", listed_after_s=0.2))
        rig.broker.set_price("NSE", SBIN, THROUGH_STOP)
        trade = await rig.settled(trade_id)
        exits = rig.exits(trade_id)
        assert [o.tag for o in exits] == [tag_for(trade_id, "exit", 1)], exits
        assert trade.state is TradeState.CLOSED and trade.exited == 5
        assert rig.broker.net("NSE", SBIN) == 0
        kinds = [e["kind"] for e in await rig.store.events(trade_id)]
        assert "exit_in_doubt" in kinds and "exit_retry" not in kinds, kinds


async def test_an_exit_in_doubt_is_settled_by_the_order_update_socket(tmp_path):
    config = dataclasses.replace(FAST, doubt_settle_s=5.0)  # the book never shows it: only the socket can tell
    async with trading_rig(tmp_path, config=config) as rig:
        trade_id = await rig.open_trade(quantity=5)
        rig.broker.arm(Fault(placement="doubt_placed", updates="delayed", delay_s=0.3, listed_after_s=60))
        rig.broker.set_price("NSE", SBIN, THROUGH_STOP)
        trade = await rig.settled(trade_id, timeout=3)
        assert trade.state is TradeState.CLOSED and trade.exited == 5
        assert len(rig.exits(trade_id)) == 1 and rig.broker.net("NSE", SBIN) == 0


async def test_an_exit_in_doubt_is_never_followed_by_an_exit_that_could_oversell(tmp_path):
    """However late the socket tells, the second attempt waits for two reads DOUBT_SETTLE_S apart."""
    config = dataclasses.replace(FAST, doubt_settle_s=0.5)
    async with trading_rig(tmp_path, config=config) as rig:
        trade_id = await rig.open_trade(quantity=5)
        rig.broker.arm(Fault(placement="doubt_placed", fill="rest", updates="delayed", delay_s=0.2,
                             listed_after_s=0.4))
        rig.broker.set_price("NSE", SBIN, THROUGH_STOP)
        await rig.until(lambda: rig.exits(trade_id), "the exit at the broker")
        await rig.settled(trade_id)
        assert exposure(rig.exits(trade_id)) <= 5 and rig.broker.net("NSE", SBIN) == 0


async def test_an_exit_never_placed_goes_again_after_two_reads_doubt_settle_s_apart(tmp_path):
    settle_s = 0.25
    async with trading_rig(tmp_path, config=dataclasses.replace(FAST, doubt_settle_s=settle_s)) as rig:
        trade_id = await rig.open_trade(quantity=5)
        rig.broker.arm(Fault(placement="doubt_lost"))
        rig.broker.set_price("NSE", SBIN, THROUGH_STOP)
        trade = await rig.settled(trade_id)
        first, second = tag_for(trade_id, "exit", 1), tag_for(trade_id, "exit", 2)
        assert trade.state is TradeState.CLOSED and [o.tag for o in rig.exits(trade_id)] == [second]
        sent_at = {request.tag: at for at, request, _ in rig.broker.placements}
        reads = [at for at, tag in rig.broker.book_reads if tag == first and at < sent_at[second]]
        assert len(reads) >= 2 and reads[-1] - reads[0] >= settle_s, (reads, sent_at)
        record = next(o for o in await rig.store.orders(trade_id) if o.tag == first)
        assert record.status == OrderStatus.FAILED and "never placed" in record.text


async def test_an_exit_whose_status_cannot_be_read_is_kept_not_doubled(tmp_path):
    """An unreadable status is not "in doubt" (the broker has the order) and not finished: the exit
    stays reserved and is looked up until its real status arrives."""
    async with trading_rig(tmp_path) as rig:
        trade_id = await rig.open_trade(quantity=5)
        rig.broker.arm(Fault(fill="rest", unreadable_s=0.3))
        rig.broker.set_price("NSE", SBIN, THROUGH_STOP)
        await rig.until(lambda: rig.exits(trade_id), "the exit at the broker")
        record = await rig.until(lambda: _status(rig, trade_id, OrderStatus.UNRECOGNISED), "the unreadable status")
        assert record.status == OrderStatus.UNRECOGNISED
        trade = await rig.settled(trade_id)
        assert trade.state is TradeState.CLOSED and len(rig.exits(trade_id)) == 1
        assert rig.broker.net("NSE", SBIN) == 0


async def _status(rig, trade_id: int, status: OrderStatus):
    orders = [o for o in await rig.store.orders(trade_id) if o.role == "exit" and o.status == status]
    return orders[0] if orders else None


async def test_an_entry_in_doubt_is_settled_the_same_way(tmp_path):
    async with trading_rig(tmp_path) as rig:
        rig.broker.arm(Fault(placement="doubt_lost"), Fault(placement="doubt_placed", updates="lost", listed_after_s=0.05))
        never = await rig.open_trade(quantity=3, armed=False)
        trade = await rig.settled(never)
        assert trade.state is TradeState.REJECTED and "never placed" in trade.reason
        found = await rig.open_trade(quantity=3)  # found by its tag in the order book, filled, armed
        assert (await rig.trade(found)).filled == 3 and len(rig.broker.orders(tag_for(found, "entry", 1))) == 1
