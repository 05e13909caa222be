from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.pg import is_postgres_url
from service.store import Store
from service.trades import TradeEvent, TradeRecord, TradeState, fold, realised, tag_for


@pytest.fixture
def store(any_store):
    """These tests run on SQLite and on PostgreSQL alike."""
    return any_store


def new_trade(**overrides) -> TradeRecord:
    values = dict(id=0, alert_id=None, account="A1", strategy="s1", exchange="NSE", token="3045",
                  tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", created_ms=1000, updated_ms=1000)
    values.update(overrides)
    return TradeRecord(**values)


async def test_trade_life_is_events_folded_into_the_row(store):
    trade = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    events = [
        TradeEvent(kind="sized", at_ms=1001, data={"quantity": 10}),
        TradeEvent(kind="entry_fill", at_ms=1002, data={"quantity": 4, "price": 80000}),
        TradeEvent(kind="entry_fill", at_ms=1003, data={"quantity": 6, "price": 80100}),
        TradeEvent(kind="armed", at_ms=1004, data={"stop": 79000, "target": 82000}),
        TradeEvent(kind="exit_fired", at_ms=1005, data={"reason": "STOP"}),
        TradeEvent(kind="exit_fill", at_ms=1006, data={"quantity": 10, "price": 78950}),
        TradeEvent(kind="closed", at_ms=1007),
    ]
    final = await store.record(trade.id, *events)
    assert final.state is TradeState.CLOSED
    assert (final.filled, final.entry_price, final.exited, final.exit_price) == (10, 80060, 10, 78950)
    assert final.realised_pnl == 78950 * 10 - (4 * 80000 + 6 * 80100)
    assert await store.trade(trade.id) == final
    assert await store.replay(trade.id) == final
    kinds = [e["kind"] for e in await store.events(trade.id)]
    assert kinds == ["created", "sized", "entry_fill", "entry_fill", "armed", "exit_fired", "exit_fill", "closed"]


async def test_trades_filter_by_state_and_strategy(store):
    a = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    await store.db.write(lambda db: Store.insert_trade(db, new_trade(strategy="s2")))
    await store.record(a.id, TradeEvent(kind="rejected", at_ms=2000, data={"reason": "funds"}))
    assert [t.id for t in await store.trades(states=[TradeState.REJECTED])] == [a.id]
    assert [t.strategy for t in await store.trades(strategy="s2")] == ["s2"]
    open_ones = await store.db.read(lambda db: Store.open_trades_on(db, "A1", "s2", "NSE", "3045"))
    assert len(open_ones) == 1


async def test_open_trades_are_counted_and_found_by_strategy_on_an_index(store):
    a = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    b = await store.db.write(lambda db: Store.insert_trade(db, new_trade(account="A2")))
    await store.db.write(lambda db: Store.insert_trade(db, new_trade(strategy="s2")))
    await store.record(a.id, TradeEvent(kind="rejected", at_ms=2000, data={"reason": "funds"}))
    await store.record(b.id, TradeEvent(kind="unprotected", at_ms=2000, data={"reason": "no stop"}))
    assert await store.open_counts() == (2, 1)
    assert await store.db.read(lambda db: Store.accounts_with_open_trades(db, "s1")) == ["A2"]
    assert [t.id for t in await store.db.read(lambda db: Store.open_trades_of(db, "s1"))] == [b.id]
    # Every alert asks this, so it must never read the whole table as it grows: only open trades are
    # indexed. (PostgreSQL's planner chooses by the table's statistics: a fresh table is scanned.)
    if not is_postgres_url(store.db.path):
        plan = await store.db.read(lambda db: db.execute(
            "EXPLAIN QUERY PLAN SELECT row FROM trades WHERE strategy = ?"
            " AND state IN ('PENDING_ENTRY', 'OPEN', 'EXITING', 'UNPROTECTED') ORDER BY id", ("s1",)).fetchall())
        assert any("USING INDEX trades_open_strategy" in row[-1] for row in plan), plan


async def test_orders_by_tag_and_live_orders(store):
    trade = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    tag = tag_for(trade.id, "entry", 1)
    order = await store.db.write(lambda db: Store.insert_order(
        db, trade_id=trade.id, role="entry", attempt=1, tag=tag, side="BUY", kind="MARKET", quantity=10, price=0, now_ms=5))
    assert order.status == "sending"
    assert (await store.order_by_tag(tag)).id == order.id
    await store.db.write(lambda db: Store.update_order(db, order.id, 6, broker_order_id="2511", status="complete", filled=10))
    assert await store.live_orders() == []
    with pytest.raises(Exception):  # tags are unique: an order can never be recorded twice
        await store.db.write(lambda db: Store.insert_order(
            db, trade_id=trade.id, role="entry", attempt=1, tag=tag, side="BUY", kind="MARKET", quantity=10, price=0, now_ms=7))


async def test_dedup_lookup_honours_the_window(store):
    def insert(db):
        return Store.insert_alert(db, now_ms=1000, source="opentrade", dedup_key="k", dedup_until_ms=61_000,
                                  body={"symbolname": "SBIN"}, status="accepted")
    alert_id = await store.db.write(insert)
    found = await store.db.read(lambda db: Store.find_duplicate(db, "k", 60_000))
    assert found is not None and found.id == alert_id
    assert await store.db.read(lambda db: Store.find_duplicate(db, "k", 61_000)) is None


def test_tags_are_short_and_distinct():
    assert tag_for(0, "entry", 1) == "tg0E1"
    assert tag_for(36**5, "exit", 3) == "tg100000X3"
    tags = {tag_for(n, role, a) for n in range(0, 5000, 7) for role in ("entry", "exit") for a in (1, 2, 9)}
    assert len(tags) == 715 * 6 and max(map(len, tags)) < 20


fills = st.lists(st.tuples(st.integers(1, 50), st.integers(1, 200_000)), min_size=1, max_size=6)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=fills, exits=fills, side=st.sampled_from(["LONG", "SHORT"]))
def test_fold_matches_a_reference_average_and_pnl(entries, exits, side):
    trade = new_trade(side=side)
    at = 1000
    for qty, price in entries:
        at += 1
        trade = fold(trade, TradeEvent(kind="entry_fill", at_ms=at, data={"quantity": qty, "price": price}))
    for qty, price in exits:
        at += 1
        trade = fold(trade, TradeEvent(kind="exit_fill", at_ms=at, data={"quantity": qty, "price": price}))
    entry_qty = sum(q for q, _ in entries)
    exit_qty = sum(q for q, _ in exits)
    assert trade.filled == entry_qty and trade.exited == exit_qty
    assert trade.entry_price == round(sum(q * p for q, p in entries) / entry_qty)
    sign = 1 if side == "LONG" else -1
    exited_cost = sum(q * p for q, p in entries) * min(exit_qty, entry_qty) / entry_qty
    assert realised(trade) == round(sign * (sum(q * p for q, p in exits) - exited_cost))


async def test_sweeps_see_every_trade_and_pages_are_bounded(store):
    def insert_many(db):
        for _ in range(650):
            Store.insert_trade(db, new_trade())
    await store.db.write(insert_many)
    assert len(await store.trades(states=[TradeState.PENDING_ENTRY])) == 650  # re-arming after a restart needs all
    assert len(await store.trades(limit=200)) == 200
