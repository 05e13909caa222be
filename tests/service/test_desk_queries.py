"""The desk's pieces without the app: rupee strings, open P&L, the store's pages (against a plain list),
a day's bounds, and the bounded price history."""
from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.store import Store, ist_date
from service.store_desk import day_bounds
from service.trades import TradeEvent, TradeRecord, TradeState
from service.web.prices import PriceHistory
from service.web.views import open_pnl, pnl, rupees, trade_view

DAY = "2026-12-01"
DAY_START, DAY_END = day_bounds(DAY)


def new_trade(**overrides) -> TradeRecord:
    values = dict(id=0, alert_id=None, account="A1", strategy="s1", exchange="NSE", token="3045",
                  tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", created_ms=DAY_START, updated_ms=DAY_START)
    values.update(overrides)
    return TradeRecord(**values)


# Rupees ------------------------------------------------------------------------------------------
@given(st.integers(min_value=-10**15, max_value=10**15))
def test_rupees_is_paise_over_100_with_two_decimals(paise):
    assert rupees(paise) == f"{Decimal(paise) / 100:.2f}"
    assert Decimal(rupees(paise)) * 100 == paise


def test_rupees_of_small_and_missing_values():
    assert [rupees(p) for p in (0, 5, -40, -4000, 81235, None)] == ["0.00", "0.05", "-0.40", "-40.00", "812.35", None]


# Open P&L ----------------------------------------------------------------------------------------
fills = st.lists(st.tuples(st.integers(1, 50), st.integers(100, 200_000)), min_size=1, max_size=4)


@given(entries=fills, exited=st.integers(0, 200), ltp=st.integers(100, 200_000), side=st.sampled_from(["LONG", "SHORT"]))
def test_open_pnl_is_the_open_quantity_at_ltp_against_the_exact_entry(entries, exited, ltp, side):
    filled = sum(q for q, _ in entries)
    value = sum(q * p for q, p in entries)
    exited = min(exited, filled)
    trade = new_trade(side=side, filled=filled, entry_value=value, entry_price=round(value / filled), exited=exited,
                      exit_value=exited * 1000, state=TradeState.OPEN)
    open_quantity = filled - exited
    reference = Decimal(open_quantity) * ltp - Decimal(value) * open_quantity / filled
    expected = None if not open_quantity else int((reference if side == "LONG" else -reference).to_integral_value())
    got = open_pnl(trade, ltp)
    assert got == expected or abs(got - expected) <= 1  # half-paisa ties may round either way
    if open_quantity:  # with what is realised, it is the trade's whole P&L (each rounded once)
        move = Decimal(exited * 1000) - Decimal(value) * exited / filled
        realised_reference = move if side == "LONG" else -move
        assert abs(pnl(trade, ltp) - got - realised_reference) <= 1
    view = trade_view(trade, None, ltp)
    assert view["open_pnl"] == got and view["open_pnl_rupees"] == rupees(got) and view["ltp_rupees"] == rupees(ltp)
    assert open_pnl(trade, None) is None


def test_exit_reason_only_of_an_exiting_or_closed_trade():
    assert trade_view(new_trade(state=TradeState.CLOSED, reason="TARGET"))["exit_reason"] == "TARGET"
    assert trade_view(new_trade(state=TradeState.EXITING, reason="MANUAL"))["exit_reason"] == "MANUAL"
    assert trade_view(new_trade(state=TradeState.REJECTED, reason="funds"))["exit_reason"] is None


# Days ----------------------------------------------------------------------------------------------
@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_day_bounds_hold_exactly_the_instants_of_their_ist_day(epoch_ms):
    start, end = day_bounds(ist_date(epoch_ms))
    assert start <= epoch_ms < end and end - start == 86_400_000
    assert ist_date(start) == ist_date(end - 1) != ist_date(end)


def test_an_ist_day_starts_at_midnight_ist():
    midnight = dt.datetime(2026, 12, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert day_bounds("2026-12-01")[0] == int(midnight.timestamp() * 1000)


# Pages -----------------------------------------------------------------------------------------
rows = st.lists(st.tuples(st.sampled_from(["s1", "s2"]), st.sampled_from([TradeState.OPEN, TradeState.CLOSED]),
                          st.integers(-1, 1)), max_size=30)


async def _insert(store: Store, row: tuple[str, TradeState, int]) -> int:
    strategy, state, day = row
    at = DAY_START + day * 86_400_000 + 1000
    trade = await store.db.write(lambda db: Store.insert_trade(db, new_trade(strategy=strategy, created_ms=at)))
    await store.record(trade.id, TradeEvent(kind="entry_fill", at_ms=at + 1, data={"quantity": 1, "price": 100}))
    if state is TradeState.CLOSED:
        await store.record(trade.id, TradeEvent(kind="exit_fired", at_ms=at + 2, data={"reason": "STOP"}),
                           TradeEvent(kind="closed", at_ms=at + 3))
    return trade.id


async def _page_through(store: Store, limit: int, between: list, **filters) -> list[int]:
    seen, before = [], None
    while True:
        page = await store.trade_page(limit=limit + 1, before=before, **filters)
        assert len(page) <= limit + 1
        seen += [t.id for t in page[:limit]]
        if len(page) <= limit:
            return seen
        before = page[limit - 1].id
        if between:  # a trade arriving meanwhile is newer than every page still to come
            await _insert(store, between.pop())


async def _check_pages(store: Store, model: list[tuple], limit: int, between: list, filters: dict) -> None:
    ids = [await _insert(store, row) for row in model]
    expected = [i for i, (strategy, state, day) in zip(ids, model)
                if filters.get("strategy", strategy) == strategy and state in filters.get("states", [state])
                and (day == 0 or "day" not in filters)]
    assert await _page_through(store, limit, list(between), **filters) == sorted(expected, reverse=True)


filter_sets = st.sampled_from([{}, {"strategy": "s2"}, {"states": [TradeState.CLOSED]}, {"day": DAY},
                               {"strategy": "s1", "day": DAY, "states": [TradeState.OPEN]}])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=rows, limit=st.integers(1, 7), between=rows, filters=filter_sets)
def test_pages_are_the_filtered_list_newest_first_without_repeats_or_gaps(model, limit, between, filters):
    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            store = Store(Path(folder) / "t.db", synchronous="OFF")
            store.open()
            try:
                await _check_pages(store, model, limit, between, filters)
            finally:
                await store.close()
    asyncio.run(run())


@pytest.fixture
def store(any_store):
    return any_store


async def test_pages_and_the_days_figures_on_both_back_ends(store):
    model = [("s1", TradeState.CLOSED, 0), ("s2", TradeState.OPEN, 0), ("s1", TradeState.OPEN, -1),
             ("s2", TradeState.CLOSED, 0), ("s1", TradeState.OPEN, 1)]
    await _check_pages(store, model, 2, [("s1", TradeState.OPEN, 0)], {"day": DAY})
    assert [t.id for t in await store.trade_page(strategy="s2", states=[TradeState.CLOSED], limit=5)] == [4]
    closed = await store.closed_on(DAY)
    assert [t.reason for t in closed] == ["STOP", "STOP"] and all(t.state is TradeState.CLOSED for t in closed)
    assert await store.realised_on(DAY) == 0
    await store.db.write(lambda db: Store.add_realised(db, DAY, "A1", "s1", -4000, DAY_START))
    assert await store.realised_on(DAY) == -4000  # once per account, not again for the strategy


async def test_alert_pages_filter_by_status_source_and_day(store):
    def insert(status: str, source: str, at: int) -> int:
        return store.db.write(lambda db: Store.insert_alert(db, now_ms=at, source=source, dedup_key=f"k{at}",
                                                            dedup_until_ms=at, body={"n": at}, status=status))
    ids = [await insert(status, source, DAY_START + offset) for status, source, offset in (
        ("accepted", "opentrade", 1), ("refused", "chartink", 2), ("duplicate", "opentrade", 3),
        ("accepted", "opentrade", -5))]
    assert [a["id"] for a in await store.alert_page(limit=10)] == ids[::-1]
    assert [a["id"] for a in await store.alert_page(day=DAY, limit=10)] == ids[2::-1]
    assert [a["id"] for a in await store.alert_page(status="accepted", limit=10)] == [ids[3], ids[0]]
    assert [a["id"] for a in await store.alert_page(source="chartink", limit=10)] == [ids[1]]
    assert [a["id"] for a in await store.alert_page(before=ids[2], limit=1)] == [ids[1]]
    assert (await store.alert_page(limit=1))[0]["body"] == {"n": DAY_START - 5}


# The price history ---------------------------------------------------------------------------------
def test_the_price_history_keeps_moves_at_most_every_gap_and_a_bounded_number():
    history = PriceHistory(points=5, min_gap_ms=250, instruments=2)
    for at, price in ((0, 100), (100, 101), (200, 101), (260, 101), (300, 102), (600, 102), (900, 103)):
        history.sample("NSE", "1", at, price)
    assert history.points("NSE", "1") == [[0, 100], [260, 101], [600, 102], [900, 103]]
    assert history.points("NSE", "1", since_ms=600) == [[900, 103]]
    for k in range(10):
        history.sample("NSE", "1", 1000 + 300 * k, 200 + k)
    assert [p for _, p in history.points("NSE", "1")] == [205, 206, 207, 208, 209]  # the last 5
    history.sample("NSE", "2", 0, 1)
    history.sample("NSE", "3", 0, 1)  # a third instrument: the least recently sampled goes
    assert history.points("NSE", "1") == [] and history.points("NSE", "3") == [[0, 1]]


# The stream's state ------------------------------------------------------------------------------
def test_the_stream_is_down_until_it_connects_stale_without_ticks_and_live_with_them():
    from types import SimpleNamespace

    from service.web.desk import stream_state

    health = SimpleNamespace(ticks=None, tick_sockets={})
    runtime = SimpleNamespace(health=health, guard=SimpleNamespace(latest_tick_ms=None),
                              settings=SimpleNamespace(stream_stall_s=5.0), now_ms=lambda: 100_000)
    assert stream_state(runtime) == {"state": "down", "last_tick_ms": None, "reason": "not connected yet", "sockets": []}
    health.ticks, health.tick_sockets = (True, "connected"), {1: (True, "connected")}
    assert stream_state(runtime)["state"] == "stale" and stream_state(runtime)["reason"] == "no tick yet"
    runtime.guard.latest_tick_ms = 94_000
    assert stream_state(runtime) == {"state": "stale", "last_tick_ms": 94_000, "reason": "no tick for 6 s",
                                     "sockets": [{"socket": 1, "up": True, "said": "connected"}]}
    runtime.guard.latest_tick_ms = 96_000
    assert stream_state(runtime)["state"] == "live" and stream_state(runtime)["reason"] is None
    health.ticks = (False, "disconnected: socket 2: reset by peer")
    health.tick_sockets[2] = (False, "disconnected: socket 2: reset by peer")
    assert stream_state(runtime) == {"state": "down", "last_tick_ms": 96_000, "reason": "disconnected: socket 2: reset by peer",
                                     "sockets": [{"socket": 1, "up": True, "said": "connected"},
                                                 {"socket": 2, "up": False, "said": "disconnected: socket 2: reset by peer"}]}
    assert stream_state(SimpleNamespace(guard=SimpleNamespace()))["state"] == "down"  # no stream in this process


def test_an_instrument_that_did_not_move_costs_no_ring_and_keeps_its_place():
    history = PriceHistory(points=3, min_gap_ms=0, instruments=2)
    history.sample("NSE", "1", 0, 100)
    history.sample("NSE", "2", 0, 100)
    for at in range(1, 50):  # "1" sampled again and again at the same price: nothing kept, nothing moved
        history.sample("NSE", "1", at, 100)
    history.sample("NSE", "2", 60, 101)
    history.sample("NSE", "3", 70, 5)  # the least recently *moved* goes: "1"
    assert history.points("NSE", "1") == [] and history.points("NSE", "2") == [[0, 100], [60, 101]]
    for at, price in ((80, 6), (90, 7), (100, 8)):
        history.sample("NSE", "3", at, price)
    assert history.points("NSE", "3") == [[80, 6], [90, 7], [100, 8]]  # the ring wrapped: the last 3
    assert history.points("NSE", "3", since_ms=85) == [[90, 7], [100, 8]]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5)), max_size=60))
def test_the_price_line_keeps_what_a_plain_list_keeps(size, steps):
    history, kept, at = PriceHistory(points=size, min_gap_ms=100, instruments=5), [], 0
    for gap, price in steps:
        at += gap
        history.sample("NSE", "1", at, price)
        if not kept or (kept[-1][1] != price and at - kept[-1][0] >= 100):
            kept.append([at, price])
    assert history.points("NSE", "1") == kept[-size:]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.sampled_from(["OPEN", "EXITING", "CLOSED", "REJECTED"])), max_size=40))
def test_the_feed_samples_each_watched_instrument_once_however_many_trades_watch_it(changes):
    from collections import Counter
    from types import SimpleNamespace

    from service.trades import TradeState
    from types import SimpleNamespace

    from service.web.feed import FeedHub

    hub = FeedHub(SimpleNamespace())
    for trade_id, state in changes:
        hub.on_trade(new_trade(id=trade_id, token=str(trade_id % 3), state=TradeState(state)))
    assert hub._watched == Counter(t.basis_key for t in hub._open.values())
    assert all(count > 0 for count in hub._watched.values())


async def test_the_history_takes_a_held_back_price_later_and_skips_instruments_with_no_new_tick():
    from types import SimpleNamespace

    from service.web.feed import FeedHub
    from streams import Tick

    ticks: dict[tuple[str, str], Tick] = {}
    clock = [1_000_000]
    runtime = SimpleNamespace(guard=SimpleNamespace(last_tick=lambda e, t: ticks.get((e, t))), now_ms=lambda: clock[0])
    hub = FeedHub(runtime)  # type: ignore[arg-type]
    offered: list[tuple[str, int]] = []
    real_sample = hub.history.sample
    hub.history.sample = lambda e, t, at, price: offered.append((t, price)) or real_sample(e, t, at, price)
    for token in ("1", "2"):
        hub._watched[("NSE", token)] += 1
    ticks[("NSE", "1")] = Tick("1", "NSE", 10_000, 0)
    await hub._keep_history()  # "2" has no tick yet
    ticks[("NSE", "1")] = Tick("1", "NSE", 10_500, 1)
    clock[0] += 100
    await hub._keep_history()  # moved, held back by the 250 ms gap
    clock[0] += 200
    await hub._keep_history()  # no new tick, but the held-back price is taken now
    await hub._keep_history()  # nothing new: not even offered
    assert hub.history.points("NSE", "1") == [[1_000_000, 10_000], [1_000_300, 10_500]]
    assert offered == [("1", 10_000), ("1", 10_500), ("1", 10_500)]
