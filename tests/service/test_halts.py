"""The day's realised P&L and every halt, as the store keeps them across a restart."""
from __future__ import annotations

import datetime as dt

import pytest

from service.halts import Halts, day_number
from service.store import Store, ist_date
from service.trades import TradeEvent, TradeRecord
from streams import Halted, RestoreDay, Resumed


@pytest.fixture
def store(any_store):
    """These tests run on SQLite and on PostgreSQL alike."""
    return any_store

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
MONDAY_10 = int(dt.datetime(2026, 3, 2, 10, 0, tzinfo=IST).timestamp() * 1000)
MONDAY_LATE = int(dt.datetime(2026, 3, 2, 23, 59, tzinfo=IST).timestamp() * 1000)
TUESDAY_9 = int(dt.datetime(2026, 3, 3, 9, 0, tzinfo=IST).timestamp() * 1000)


def new_trade(**overrides) -> TradeRecord:
    values = dict(id=0, alert_id=None, account="A1", strategy="orb", exchange="NSE", token="3045",
                  tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", created_ms=MONDAY_10, updated_ms=MONDAY_10)
    values.update(overrides)
    return TradeRecord(**values)


async def close(store: Store, trade: TradeRecord, entry: int, exit_: int, at_ms: int, **closed) -> TradeRecord:
    return await store.record(trade.id,
                              TradeEvent(kind="entry_fill", at_ms=at_ms, data={"quantity": 10, "price": entry}),
                              TradeEvent(kind="exit_fired", at_ms=at_ms, data={"reason": "STOP"}),
                              # P&L is realised with the fill: a fill found later for an earlier day names it
                              TradeEvent(kind="exit_fill", at_ms=at_ms, data={"quantity": 10, "price": exit_, **closed}),
                              TradeEvent(kind="closed", at_ms=at_ms, data=closed))


async def rows(store: Store, sql: str) -> list[tuple]:
    return await store.db.read(lambda db: [tuple(r) for r in db.execute(sql)])


async def day_pnl(store: Store) -> dict:
    sql = "SELECT day, scope, key, realised FROM day_pnl"
    return await store.db.read(lambda db: {(r[0], r[1], r[2]): r[3] for r in db.execute(sql)})


async def test_a_close_adds_its_realised_pnl_to_the_day_of_its_account_and_strategy(store):
    a = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    b = await store.db.write(lambda db: Store.insert_trade(db, new_trade(account="A2")))
    c = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    await close(store, a, 80_000, 79_400, MONDAY_10)  # -60.00
    await close(store, b, 80_000, 80_500, MONDAY_10)  # +50.00
    await close(store, c, 80_000, 79_900, TUESDAY_9, pnl_day="2026-03-02")  # -10.00, counted for Monday
    monday = "2026-03-02"
    assert ist_date(MONDAY_LATE) == monday and ist_date(TUESDAY_9) == "2026-03-03"
    assert await day_pnl(store) == {(monday, "account", "A1"): -7_000, (monday, "account", "A2"): 5_000,
                                    (monday, "strategy", "orb"): -2_000}


async def test_a_loss_halt_is_restored_on_its_day_and_lifted_on_the_next(store):
    now = [MONDAY_10]
    announced: list = []
    halts = Halts(store, lambda: now[0], lambda kind, data: announced.append((kind, data)))
    trade = await store.db.write(lambda db: Store.insert_trade(db, new_trade()))
    await close(store, trade, 80_000, 79_400, MONDAY_10)
    halts.halted(Halted("account", "A1", -6_000, 5_000, MONDAY_10))
    assert ("account", "A1") in halts.loss and announced[0][0] == "loss_limit"
    await store.db.write(lambda db: None)  # the halt's write went out before this one

    now[0] = MONDAY_LATE  # restarted the same IST day
    again = Halts(store, lambda: now[0], lambda *_: None)
    await again.restore()
    assert list(again.loss) == [("account", "A1")]
    assert again.loss[("account", "A1")].reason == "daily loss limit of account A1 reached: P&L -60.00 at or below -50.00"
    day = day_number("2026-03-02")
    assert await again.day_so_far() == [RestoreDay("account", "A1", day, -6_000, True),
                                        RestoreDay("strategy", "orb", day, -6_000, False)]
    view = await again.view()
    assert view["accounts"]["A1"] == {"halted": True, "realised": -6_000, "reason": again.loss[("account", "A1")].reason,
                                      "at_ms": MONDAY_10, "pnl": -6_000, "max_loss": 5_000}
    assert view["strategies"]["orb"] == {"halted": False, "realised": -6_000}
    assert view["global"] == {"halted": False, "reason": None, "at_ms": None, "operator": None}
    assert [h["scope"] for h in view["halts"]] == ["account"]

    now[0] = TUESDAY_9  # the next day: nothing of Monday holds
    tuesday = Halts(store, lambda: now[0], lambda *_: None)
    await tuesday.restore()
    assert tuesday.loss == {} and await tuesday.day_so_far() == []
    assert await rows(store, "SELECT lifted_ms FROM halts") == [(TUESDAY_9,)]


async def test_the_day_roll_lifts_a_halt_in_the_store(store):
    halts = Halts(store, lambda: MONDAY_10, lambda *_: None)
    halts.halted(Halted("strategy", "orb", -6_000, 5_000, MONDAY_10))
    halts.resumed(Resumed("strategy", "orb", TUESDAY_9))
    await store.db.write(lambda db: None)
    assert halts.loss == {}
    assert await rows(store, "SELECT scope, key, lifted_ms FROM halts") == [("strategy", "orb", TUESDAY_9)]


async def test_the_operators_halt_keeps_its_reason_and_time(store):
    halts = Halts(store, lambda: MONDAY_10, lambda *_: None)
    await halts.set_operator(True, "broker outage")
    assert (await store.flags())["halted"] is True
    again = Halts(store, lambda: TUESDAY_9, lambda *_: None)  # an operator's halt outlives the day
    await again.restore()  # the switch comes back from the store
    assert again.global_halt is True
    assert (await again.view())["global"] == {"halted": True, "reason": "broker outage", "at_ms": MONDAY_10, "operator": ""}
    await again.set_operator(False, "")
    assert (await store.flags())["halted"] is False
    assert (await again.view())["global"]["reason"] is None
