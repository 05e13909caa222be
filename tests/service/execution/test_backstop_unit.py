"""The broker-side backup stop on the model broker: placed when the trade arms, amended, trailed within
its throttle, withdrawn (cancel-first) before every exit of tickguard's own, and never filling beside it.

A long SBIN trade at ₹800 with its stop at ₹790: the broker's trigger sits 0.2 % behind (₹788.40) and
its limit 0.5 % of the trigger below that (₹784.45)."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from service.broker import OrderKind, OrderSide, OrderStatus
from service.broker.model import Fault
from service.execution.backstop_levels import BackupConfig, Buffer
from service.execution.config import ExecConfig
from service.trades import Basis, TradeRecord, TradeState, tag_for
from tests.service.execution.conftest import FAST, PRICE, SBIN, Parts

BACKUP = dataclasses.replace(FAST, backup=BackupConfig(mode="backup", buffer=Buffer(pct=Decimal("0.2")),
                                                       step_pct=Decimal("0.25"), min_s=0.3,
                                                       protection_pct=Decimal("0.5")))
STOP, TRIGGER, LIMIT = 79_000, 78_840, 78_445


@pytest.fixture
def config() -> ExecConfig:
    return BACKUP


def prefix(trade_id: int, role: str) -> str:
    return tag_for(trade_id, role, 1)[:-1]


def stops(parts: Parts, trade_id: int) -> list:
    return parts.broker.orders(prefix(trade_id, "broker_stop"))


def working(parts: Parts, trade_id: int) -> list:
    return [o for o in stops(parts, trade_id) if not o.terminal]


async def armed(parts: Parts, quantity: int, stop: int = STOP, **spec) -> TradeRecord:
    """An open trade armed with `stop`, as the engine's `armed` event records it."""
    trade = await parts.opened(quantity, **spec)
    return await parts.orders.journal.record(trade.id, "armed", stop=stop, target=None)


async def placed(parts: Parts, trade_id: int, count: int = 1) -> list:
    return await parts.until(lambda: len(working(parts, trade_id)) == count
                             and all(o.status is OrderStatus.TRIGGER_PENDING for o in working(parts, trade_id))
                             and working(parts, trade_id), "the broker stop placed")


def async_filled(parts: Parts, trade_id: int, units: int):
    async def check() -> bool:
        return (await parts.trade(trade_id)).exited == units
    return check


def sold(parts: Parts, trade_id: int) -> int:
    """Units the broker filled for the trade's broker stops and exits together."""
    orders = stops(parts, trade_id) + parts.broker.orders(prefix(trade_id, "exit"))
    return sum(o.filled for o in orders)


async def test_arming_places_a_stop_limit_behind_the_stop(parts: Parts):
    trade = await armed(parts, 5)
    (order,) = await placed(parts, trade.id)
    assert (order.side, order.kind, order.variety, order.quantity) == (OrderSide.SELL, OrderKind.STOPLOSS_LIMIT, "STOPLOSS", 5)
    assert (order.trigger_price, order.price) == (TRIGGER, LIMIT)
    assert parts.stops.view(await parts.trade(trade.id))["trigger"] == TRIGGER
    # the ledger learns of the order from placeOrder's reply, which may come after the broker shows it
    await parts.until(lambda: parts.stops.protected(trade.id), "the broker stop counted as working")


async def test_a_short_trade_gets_a_buy_stop_above(parts: Parts):
    trade = await armed(parts, 3, stop=81_000, side="SHORT")
    (order,) = await placed(parts, trade.id)
    assert (order.side, order.trigger_price, order.price) == (OrderSide.BUY, 81_165, 81_575)


async def test_a_close_cancels_the_broker_stop_before_its_exit_goes(parts: Parts):
    trade = await armed(parts, 5)
    (stop,) = await placed(parts, trade.id)
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    assert closed.exited == 5 and sold(parts, trade.id) == 5 and parts.broker.net("NSE", SBIN) == 0
    changes = [(o.tag, o.status) for _, o in parts.broker.journal]
    cancelled = changes.index((stop.tag, OrderStatus.CANCELLED))
    first_exit = next(i for i, (tag, _) in enumerate(changes) if tag.startswith(prefix(trade.id, "exit")))
    assert cancelled < first_exit  # cancel-first: the exit waited for the cancel to be final
    await parts.until(lambda: not parts.exits.exiting, "the exit task to end")
    assert working(parts, trade.id) == []


async def test_a_cancel_that_loses_to_the_fill_counts_the_fill_as_the_exit(parts: Parts):
    """The broker stop filled just before the cancel arrived (its update even comes after the reply):
    its fill is the exit, and nothing more is sent."""
    trade = await parts.opened(5)
    parts.broker.arm(Fault(cancel="loses", race_delay_s=0.05))
    await parts.orders.journal.record(trade.id, "armed", stop=STOP, target=None)
    await placed(parts, trade.id)
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    await parts.until(lambda: not parts.exits.exiting, "the exit task to end")
    assert parts.broker.orders(prefix(trade.id, "exit")) == []
    assert closed.exited == 5 and sold(parts, trade.id) == 5 and parts.broker.net("NSE", SBIN) == 0
    assert closed.reason == "BROKER_STOP" and closed.exit_price == LIMIT


async def test_a_part_filled_stop_leaves_only_the_rest_to_exit(parts: Parts):
    trade = await parts.opened(6)
    parts.broker.arm(Fault(fill="partial", fraction=0.5))
    await parts.orders.journal.record(trade.id, "armed", stop=STOP, target=None)
    await placed(parts, trade.id)
    parts.broker.set_price("NSE", SBIN, 78_500)  # through the trigger, above its limit: 3 of 6 fill
    await parts.until(lambda: sold(parts, trade.id) == 3, "the stop's part fill")
    # no exit of ours was running: the exit path is asked to take over (once it triggered, and at its fill)
    await parts.until(lambda: parts.triggered, "the exit path asked to take over")
    assert set(parts.triggered) == {trade.id}
    await parts.until(async_filled(parts, trade.id, 3), "the part fill recorded")
    await parts.exits.close(trade.id, "BROKER_STOP")
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    assert closed.exited == 6 and sold(parts, trade.id) == 6 and parts.broker.net("NSE", SBIN) == 0
    (exit_order,) = parts.broker.orders(prefix(trade.id, "exit"))
    assert exit_order.quantity == 3


async def test_later_entry_fills_grow_the_stop_and_slices_keep_to_the_freeze_quantity(parts: Parts):
    trade = await armed(parts, 5, freeze_qty=4)
    orders = await placed(parts, trade.id, count=2)
    assert [o.quantity for o in orders] == [4, 1]
    await parts.send(trade, "entry", 2, 4)  # four more filled for the same trade
    await parts.until(lambda: sorted(o.quantity for o in working(parts, trade.id)) == [1, 4, 4]
                      or sorted(o.quantity for o in working(parts, trade.id)) == [4, 4, 1], "the stop grown")
    assert sum(o.quantity for o in working(parts, trade.id)) == 9
    assert all(o.quantity <= 4 for o in working(parts, trade.id))


async def test_a_trailed_stop_moves_the_broker_stop_at_most_once_per_min_s(parts: Parts):
    trade = await armed(parts, 5)
    (stop,) = await placed(parts, trade.id)

    def moves(count: int):
        async def check():
            moved = [m["trigger"] for m in await parts.event(trade.id, "broker_stop_moved")]
            return moved if len(moved) >= count else None
        return check

    await parts.orders.journal.record(trade.id, "stop_moved", stop=79_100)  # +0.13 %: under BROKER_STOP_STEP
    await parts.orders.journal.record(trade.id, "stop_moved", stop=79_600)  # +0.76 %: moved
    assert await parts.until(moves(1), "the trigger moved") == [79_440]
    assert working(parts, trade.id)[0].trigger_price == 79_440
    moved_at = parts.stops._moved_at[trade.id]
    await parts.orders.journal.record(trade.id, "stop_moved", stop=80_000)  # within min_s of the last move
    assert await parts.until(moves(2), "the next move, after min_s") == [79_440, 79_840]
    assert parts.stops._moved_at[trade.id] - moved_at >= BACKUP.backup.min_s  # waited out the throttle
    await parts.orders.journal.record(trade.id, "stop_moved", stop=79_800)  # looser: never followed
    assert working(parts, trade.id)[0].trigger_price == 79_840
    assert working(parts, trade.id)[0].tag == stop.tag  # modified in place, never replaced


async def test_a_partial_exit_withdraws_the_stop_and_covers_the_rest_again(parts: Parts):
    trade = await armed(parts, 6)
    (first,) = await placed(parts, trade.id)
    done = await parts.exits.reduce(trade.id, 2)
    assert done is not None and done.exited == 2 and done.state is TradeState.OPEN
    (again,) = await placed(parts, trade.id)
    assert again.tag != first.tag and again.quantity == 4
    assert parts.broker.orders(first.tag)[0].status is OrderStatus.CANCELLED and sold(parts, trade.id) == 2


async def test_trades_without_a_broker_stop_say_why(parts: Parts):
    basis = await armed(parts, 1, basis=Basis("NSE", "26000", 5))
    none = await parts.orders.journal.record((await parts.opened(1)).id, "armed", stop=None, target=None)
    off = await armed(parts, 1, broker_stop=False, broker_stop_from="account")
    views = [parts.stops.view(await parts.trade(t.id)) for t in (basis, none, off)]
    assert [v["why"] for v in views] == [
        "the stop is watched on the underlying: no broker order can follow it", "the trade has no stop",
        "off for this account (its brokerstop setting)"]
    assert not any(working(parts, t.id) for t in (basis, none, off))
    assert PRICE == 80_000


async def test_outside_the_session_the_stop_waits_for_the_open(parts: Parts, monkeypatch):
    """A CARRYFORWARD position overnight: its day order ended with the session, and the exchange takes
    none until the next open — then it is placed again."""
    monkeypatch.setattr("service.execution.backstop.CLOSED_MARKET_S", 0.05)
    market = {"open": False}
    parts.stops.session_open = lambda exchange: market["open"]
    trade = await armed(parts, 2, product="CARRYFORWARD")
    why = "the exchange takes no orders now: placed again at the next session's open"
    await parts.until(lambda: parts.stops.view(parts.published[-1]) == {"why": why}, "the view says why")
    assert stops(parts, trade.id) == []
    market["open"] = True
    (order,) = await placed(parts, trade.id)
    assert (order.product, order.quantity) == ("CARRYFORWARD", 2)


async def test_the_unprotected_count_asks_only_trades_that_had_a_broker_stop_and_agrees_with_asking_each(parts: Parts):
    trade = await armed(parts, 5)
    await placed(parts, trade.id)
    await parts.until(lambda: parts.stops.protected(trade.id), "the broker stop counted as working")
    armed_ids = {trade.id, 998, 999}  # two armed trades that never had a broker stop

    def each() -> int:
        return sum(1 for trade_id in armed_ids if not parts.stops.protected(trade_id))

    assert parts.stops.orders.stop_trades == {trade.id}
    assert parts.stops.unprotected(armed_ids) == each() == 2
    await parts.exits.close(trade.id)
    await parts.in_state(trade.id, TradeState.CLOSED)
    assert parts.stops.unprotected(armed_ids) == each() == 3
