"""The model broker's stop orders, the cancel/fill race and GTT rules do what a broker does — a
stop a broker holds behind tickguard's own is only worth testing against if the model gets them right.

The property at the end plays random price paths, stop placements, modifications and cancels (some
losing the race to a fill) against a short reference model of stop semantics."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.broker import (
    GttRequest,
    GttStatus,
    OrderKind,
    OrderRefused,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderUpdate,
)
from service.broker.model import Fault, GttFault, ModelBroker
from tests.support.waiting import until

NSE, SBIN = "NSE", "3045"
BUY, SELL = OrderSide.BUY, OrderSide.SELL
SL, SLM, LIMIT, MARKET = OrderKind.STOPLOSS_LIMIT, OrderKind.STOPLOSS_MARKET, OrderKind.LIMIT, OrderKind.MARKET


def order(side: OrderSide, kind: OrderKind, quantity: int = 5, *, price: int = 0, trigger: int = 0,
          product: str = "INTRADAY", tag: str = "tg1S1") -> OrderRequest:
    return OrderRequest(exchange=NSE, tradingsymbol="SBIN-EQ", token=SBIN, side=side, quantity=quantity, kind=kind,
                        price=price, trigger_price=trigger, product=product, variety="STOPLOSS" if kind in (SL, SLM) else "NORMAL",
                        tag=tag)


def rule(side: OrderSide = SELL, quantity: int = 5, *, price: int = 78_800, trigger: int = 79_000) -> GttRequest:
    return GttRequest(exchange=NSE, tradingsymbol="SBIN-EQ", token=SBIN, side=side, quantity=quantity, price=price,
                      trigger_price=trigger)


async def long_position(quantity: int = 5, price: int = 80_000, product: str = "INTRADAY") -> tuple[ModelBroker, list[OrderUpdate]]:
    """A broker holding `quantity` bought at `price`, and the order updates it sends from then on."""
    broker = ModelBroker({(NSE, SBIN): price})
    await broker.place_order(order(BUY, MARKET, quantity, product=product, tag="tg1E1"))
    updates: list[OrderUpdate] = []
    await asyncio.sleep(0)  # the entry's own updates go by first
    broker.order_update_stream().updates.subscribe(updates.append)
    return broker, updates


def states(broker: ModelBroker, order_id: str) -> list[OrderStatus]:
    return [state.status for _, state in broker.journal if state.order_id == order_id]


async def test_a_sell_stop_waits_for_its_trigger_then_fills_as_a_limit():
    broker, updates = await long_position()
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    broker.set_price(NSE, SBIN, 79_050)
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.TRIGGER_PENDING and stop.kind is SL and stop.trigger_price == 79_000
    broker.set_price(NSE, SBIN, 79_000)
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 79_000 and stop.kind is SL
    assert broker.net(NSE, SBIN) == 0
    await until(lambda: len(updates) == 3, "the stop's three updates")
    assert [(u.code, u.order.status) for u in updates] == [
        ("AB10", OrderStatus.TRIGGER_PENDING), ("AB01", OrderStatus.OPEN), ("AB05", OrderStatus.COMPLETE)]
    assert all(u.order.order_id == ack.order_id for u in updates)


async def test_a_stop_the_price_runs_past_rests_at_its_limit_until_the_price_comes_back():
    broker, _ = await long_position()
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    broker.set_price(NSE, SBIN, 78_500)  # a gap through trigger and limit alike
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.OPEN and stop.filled == 0 and broker.net(NSE, SBIN) == 5
    broker.set_price(NSE, SBIN, 78_790)
    assert broker.orders("tg1S")[0].filled == 0
    broker.set_price(NSE, SBIN, 78_850)
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 78_850 and broker.net(NSE, SBIN) == 0
    assert states(broker, ack.order_id) == [OrderStatus.TRIGGER_PENDING, OrderStatus.OPEN, OrderStatus.COMPLETE]


async def test_a_stop_market_fills_at_whatever_price_triggers_it():
    broker, _ = await long_position()
    await broker.place_order(order(SELL, SLM, trigger=79_000))
    broker.set_price(NSE, SBIN, 78_000)
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 78_000 and broker.net(NSE, SBIN) == 0


async def test_a_buy_stop_triggers_as_the_price_rises_to_it():
    broker = ModelBroker({(NSE, SBIN): 80_000})
    await broker.place_order(order(SELL, MARKET, tag="tg1E1"))  # a short position
    await broker.place_order(order(BUY, SL, price=81_200, trigger=81_000))
    broker.set_price(NSE, SBIN, 79_000)
    assert broker.orders("tg1S")[0].status is OrderStatus.TRIGGER_PENDING
    broker.set_price(NSE, SBIN, 81_100)
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 81_100 and broker.net(NSE, SBIN) == 0


async def test_a_stop_whose_trigger_the_price_already_passed_triggers_when_placed():
    broker, _ = await long_position(price=78_900)
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 78_900
    assert states(broker, ack.order_id) == [OrderStatus.TRIGGER_PENDING, OrderStatus.OPEN, OrderStatus.COMPLETE]


async def test_a_held_stop_triggers_but_does_not_fill_until_modified():
    broker, _ = await long_position()
    broker.arm(Fault(fill="rest"))
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    broker.set_price(NSE, SBIN, 78_950)
    assert broker.orders("tg1S")[0].status is OrderStatus.OPEN and broker.net(NSE, SBIN) == 5
    await broker.modify_order(ack.order_id, order(SELL, SL, price=78_900, trigger=79_000))
    assert broker.orders("tg1S")[0].status is OrderStatus.COMPLETE and broker.net(NSE, SBIN) == 0


async def test_modifying_a_pending_stop_moves_its_trigger_and_checks_it_again():
    broker, updates = await long_position()
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    broker.set_price(NSE, SBIN, 79_400)
    await broker.modify_order(ack.order_id, order(SELL, SL, 3, price=79_100, trigger=79_300))  # trailed up, cut to 3
    (stop,) = broker.orders("tg1S")
    assert (stop.status, stop.quantity, stop.price, stop.trigger_price) == (OrderStatus.TRIGGER_PENDING, 3, 79_100, 79_300)
    await broker.modify_order(ack.order_id, order(SELL, SL, 3, price=79_200, trigger=79_500))  # above the price now
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 79_400 and broker.net(NSE, SBIN) == 2
    await until(lambda: len(updates) == 7, "every update of the stop")
    assert [u.code for u in updates] == ["AB10", "AB04", "AB10", "AB04", "AB10", "AB01", "AB05"]


async def test_a_triggered_stop_stays_triggered_when_modified():
    broker, _ = await long_position()
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    broker.set_price(NSE, SBIN, 78_500)  # triggered, resting past its limit
    # a pending stop with this trigger would wait (78_500 is above 78_000); a triggered one is a limit at 78_400
    await broker.modify_order(ack.order_id, order(SELL, SL, price=78_400, trigger=78_000))
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 78_500


async def test_stops_without_a_trigger_and_limits_made_stops_are_refused():
    broker, _ = await long_position()
    with pytest.raises(OrderRefused) as refused:
        await broker.place_order(order(SELL, SL, price=78_800))
    assert refused.value.field == "triggerprice" and broker.orders("tg1S") == []
    broker.arm(Fault(fill="rest"))
    ack = await broker.place_order(order(SELL, LIMIT, price=81_000, tag="tg1X1"))
    with pytest.raises(OrderRefused):
        await broker.modify_order(ack.order_id, order(SELL, SL, price=78_800, trigger=79_000, tag="tg1X1"))
    assert broker.orders("tg1X")[0].kind is LIMIT


async def test_a_cancelled_stop_never_fills():
    broker, updates = await long_position()
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    await broker.cancel_order(ack.order_id, "STOPLOSS")
    broker.set_price(NSE, SBIN, 78_900)
    (stop,) = broker.orders("tg1S")
    assert stop.status is OrderStatus.CANCELLED and stop.cancelled == 5 and broker.net(NSE, SBIN) == 5
    await until(lambda: len(updates) == 2, "the stop's updates")
    assert [u.code for u in updates] == ["AB10", "AB02"]


async def test_a_cancel_that_loses_the_race_is_refused_before_the_fill_is_reported():
    broker, updates = await long_position()
    broker.arm(Fault(cancel="loses"))
    ack = await broker.place_order(order(SELL, SL, price=78_800, trigger=79_000))
    await until(lambda: len(updates) == 1, "the stop's trigger-pending update")
    with pytest.raises(OrderRefused) as refused:
        await broker.cancel_order(ack.order_id, "STOPLOSS")
    assert refused.value.errorcode == "AB4008" and refused.value.route == "cancelOrder"
    assert [u.code for u in updates] == ["AB10"]  # the refusal came first; the fill is still on its way
    (stop,) = await broker.find_orders("tg1S1")  # but the broker knows the order filled, at its limit
    assert stop.status is OrderStatus.COMPLETE and stop.average_price == 78_800 and broker.net(NSE, SBIN) == 0
    await until(lambda: len(updates) == 3, "the fill's updates, after the refusal")
    assert [u.code for u in updates] == ["AB10", "AB01", "AB05"]
    assert states(broker, ack.order_id) == [OrderStatus.TRIGGER_PENDING, OrderStatus.OPEN, OrderStatus.COMPLETE]


async def test_a_modify_that_loses_the_race_finds_the_order_filled():
    broker, updates = await long_position()
    broker.arm(Fault(fill="rest", modify="loses"))
    ack = await broker.place_order(order(SELL, LIMIT, price=81_000, tag="tg1X1"))
    with pytest.raises(OrderRefused):
        await broker.modify_order(ack.order_id, order(SELL, MARKET, tag="tg1X1"))
    (sold,) = broker.orders("tg1X")
    assert sold.status is OrderStatus.COMPLETE and sold.kind is LIMIT and sold.average_price == 81_000
    assert broker.net(NSE, SBIN) == 0
    await until(lambda: [u.code for u in updates] == ["AB01", "AB05"], "the order's updates")


async def test_a_gtt_rule_places_its_limit_order_when_the_price_reaches_its_trigger():
    broker, updates = await long_position(product="DELIVERY")
    rule_id = await broker.create_gtt(rule())
    assert [(r.rule_id, r.status) for r in await broker.gtt_rules()] == [(rule_id, GttStatus.NEW)]
    broker.set_price(NSE, SBIN, 79_100)
    assert broker.orders() == broker.orders("tg1E")  # nothing placed yet
    broker.set_price(NSE, SBIN, 78_950)
    fired = await broker.gtt_rule(rule_id)
    assert fired is not None and fired.status is GttStatus.SENT_TO_EXCHANGE and await broker.gtt_rules() == []
    assert await broker.gtt_rules([GttStatus.SENT_TO_EXCHANGE]) == [fired] == broker.rules()
    (placed,) = [o for o in broker.orders() if o.parent_order_id == rule_id]
    assert placed.order_id == fired.order_id and placed.tag == "" and placed.kind is LIMIT
    assert (placed.product, placed.price, placed.status, placed.average_price) == ("DELIVERY", 78_800, OrderStatus.COMPLETE, 78_950)
    assert broker.net(NSE, SBIN, "DELIVERY") == 0
    await until(lambda: [u.code for u in updates] == ["AB01", "AB05"], "the rule's order updates")
    assert updates[0].order.parent_order_id == rule_id


async def test_a_gtt_order_the_price_gapped_past_rests_at_its_limit():
    broker, _ = await long_position(product="DELIVERY")
    rule_id = await broker.create_gtt(rule())
    broker.set_price(NSE, SBIN, 78_000)
    (placed,) = [o for o in broker.orders() if o.parent_order_id == rule_id]
    assert placed.status is OrderStatus.OPEN and broker.net(NSE, SBIN, "DELIVERY") == 5


async def test_a_gtt_rule_above_the_price_is_a_target():
    broker, _ = await long_position(product="DELIVERY")
    rule_id = await broker.create_gtt(rule(price=82_000, trigger=82_000))
    broker.set_price(NSE, SBIN, 70_000)
    assert broker.rules()[0].status is GttStatus.NEW
    broker.set_price(NSE, SBIN, 82_100)
    fired = await broker.gtt_rule(rule_id)
    assert fired is not None and fired.status is GttStatus.SENT_TO_EXCHANGE
    assert broker.net(NSE, SBIN, "DELIVERY") == 0


async def test_gtt_rules_are_modified_and_cancelled_only_while_they_wait():
    broker, _ = await long_position(product="DELIVERY")
    rule_id = await broker.create_gtt(rule())
    assert await broker.modify_gtt(rule_id, rule(price=79_300, trigger=79_500)) == rule_id
    modified = await broker.gtt_rule(rule_id)
    assert modified is not None and (modified.status, modified.trigger_price, modified.price) == (GttStatus.ACTIVE, 79_500, 79_300)
    with pytest.raises(OrderRefused):
        await broker.cancel_gtt(rule_id, NSE, "99999")  # another instrument's rule
    await broker.cancel_gtt(rule_id, NSE, SBIN)
    broker.set_price(NSE, SBIN, 79_000)
    assert broker.rules()[0].status is GttStatus.CANCELLED and broker.net(NSE, SBIN, "DELIVERY") == 5
    for attempt in (broker.cancel_gtt(rule_id, NSE, SBIN), broker.modify_gtt(rule_id, rule())):
        with pytest.raises(OrderRefused):
            await attempt
    assert [r.status for _, r in broker.gtt.journal] == [GttStatus.NEW, GttStatus.ACTIVE, GttStatus.CANCELLED]
    with pytest.raises(OrderRefused):
        await broker.create_gtt(rule(trigger=0))


async def test_gtt_faults_refuse_and_lose_the_race():
    broker, updates = await long_position(product="DELIVERY")
    broker.gtt.arm(GttFault(call="refused"), GttFault(), GttFault(call="loses"))
    with pytest.raises(OrderRefused):
        await broker.create_gtt(rule())
    assert broker.rules() == []
    rule_id = await broker.create_gtt(rule())
    with pytest.raises(OrderRefused):
        await broker.cancel_gtt(rule_id, NSE, SBIN)
    fired = await broker.gtt_rule(rule_id)
    assert fired is not None and fired.status is GttStatus.SENT_TO_EXCHANGE
    assert broker.net(NSE, SBIN, "DELIVERY") == 0 and updates == []  # filled, not yet reported
    await until(lambda: [u.code for u in updates] == ["AB01", "AB05"], "the fired order's updates")
    assert [route for _, route, _, _ in broker.gtt.calls] == ["createRule", "createRule", "cancelRule"]


# The property ------------------------------------------------------------------------------------------
START, QUANTITY = 80_000, 50
prices = st.integers(760, 840).map(lambda rupees: rupees * 100)
place = st.tuples(st.just("place"), st.sampled_from([SELL, BUY]), st.sampled_from([SL, SLM]), prices,
                  st.integers(0, 10).map(lambda rupees: rupees * 100), st.integers(1, 10), st.booleans())
# which order a cancel or modify picks: mostly a live one (a finished one is refused, also worth a try)
pick = st.tuples(st.integers(0, 30), st.sampled_from([True, True, True, False]))
cancel = st.tuples(st.just("cancel"), pick)
modify = st.tuples(st.just("modify"), pick, prices, st.integers(0, 10).map(lambda rupees: rupees * 100))
steps = st.lists(st.one_of(st.tuples(st.just("price"), prices), place, cancel, modify), max_size=40)


@dataclass
class RefStop:
    """A stop as the obvious reading of the rules has it."""

    side: OrderSide
    kind: OrderKind
    quantity: int
    trigger: int
    limit: int  # 0 for a stop-market
    races: bool  # its cancel or modify loses the race to a fill
    triggered: bool = False
    state: str = "live"  # live, complete, cancelled
    fill_price: int = 0

    def meet(self, ltp: int) -> None:
        if self.state != "live":
            return
        if not self.triggered:
            if not (ltp <= self.trigger if self.side is SELL else ltp >= self.trigger):
                return
            self.triggered = True
        if self.kind is SLM or (ltp >= self.limit if self.side is SELL else ltp <= self.limit):
            self.state, self.fill_price = "complete", ltp

    def lose(self) -> None:
        self.state, self.fill_price = "complete", self.limit if self.kind is SL else self.trigger


def _request(stop: RefStop) -> OrderRequest:
    return order(stop.side, stop.kind, stop.quantity, price=stop.limit, trigger=stop.trigger)


async def _walk(path: list[tuple]) -> None:
    broker = ModelBroker({(NSE, SBIN): START})
    await broker.place_order(order(BUY, MARKET, QUANTITY, tag="tg1E1"))
    ltp, ids, ref = START, [], {}
    for step in path:
        if step[0] == "price":
            ltp = step[1]
            broker.set_price(NSE, SBIN, ltp)
            for stop in ref.values():
                stop.meet(ltp)
        elif step[0] == "place":
            _, side, kind, trigger, gap, quantity, races = step
            limit = 0 if kind is SLM else trigger - gap if side is SELL else trigger + gap
            stop = RefStop(side, kind, quantity, trigger, limit, races)
            races_fault = "loses" if races else "ok"
            broker.arm(Fault(cancel=races_fault, modify=races_fault, race_delay_s=0))
            ack = await broker.place_order(_request(stop))
            ids.append(ack.order_id)
            ref[ack.order_id] = stop
            stop.meet(ltp)
        elif ids:
            index, live_one = step[1]
            choice = [i for i in ids if ref[i].state == "live"] if live_one else []
            order_id = (choice or ids)[index % len(choice or ids)]
            stop = ref[order_id]
            if step[0] == "modify":
                trigger, gap = step[2], step[3]
                limit = 0 if stop.kind is SLM else trigger - gap if stop.side is SELL else trigger + gap
                call = broker.modify_order(order_id, order(stop.side, stop.kind, stop.quantity, price=limit, trigger=trigger))
            else:
                call = broker.cancel_order(order_id, "STOPLOSS")
            if stop.state != "live" or stop.races:  # finished, or finishing while the request travels
                if stop.state == "live":
                    stop.lose()
                with pytest.raises(OrderRefused):
                    await call
            else:
                await call
                if step[0] == "cancel":
                    stop.state = "cancelled"
                else:
                    stop.trigger, stop.limit = trigger, limit
                    stop.meet(ltp)
        await _agree(broker, ref)
    await asyncio.sleep(0)  # the last updates go out before the loop closes


async def _agree(broker: ModelBroker, ref: dict[str, RefStop]) -> None:
    book = {o.order_id: o for o in broker.orders("tg1S")}
    for order_id, stop in ref.items():
        seen = book[order_id]
        if stop.state == "complete":
            assert (seen.status, seen.filled, seen.average_price) == (OrderStatus.COMPLETE, stop.quantity, stop.fill_price), seen
        elif stop.state == "cancelled":
            assert (seen.status, seen.filled, seen.cancelled) == (OrderStatus.CANCELLED, 0, stop.quantity), seen
        else:
            pending = OrderStatus.OPEN if stop.triggered else OrderStatus.TRIGGER_PENDING
            assert (seen.status, seen.filled, seen.trigger_price, seen.price) == (pending, 0, stop.trigger, stop.limit), seen
    fills = await broker.trade_book()
    (position,) = await broker.positions()
    assert position.net_quantity == broker.net(NSE, SBIN) == sum(f.quantity if f.side is BUY else -f.quantity for f in fills)
    orders = {o.order_id: o for o in broker.orders()}
    for fill in fills:
        placed = orders[fill.order_id]
        if placed.kind is SL:  # a stop-limit never fills beyond its limit
            assert fill.price >= placed.price if placed.side is SELL else fill.price <= placed.price


@settings(max_examples=300)
@given(steps)
def test_stops_fill_as_a_reference_model_says_and_the_position_is_their_sum(path):
    asyncio.run(_walk(path))
