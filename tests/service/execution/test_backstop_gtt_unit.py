"""A DELIVERY position's broker stop is a GTT rule, on the model broker: created when the trade arms,
moved with the trail, cancelled first before tickguard's own exit, and its fill closing the trade when
it triggers first — never both."""
from __future__ import annotations

import pytest

from service.broker import GttStatus, OrderSide
from service.broker.model import GttFault
from service.execution.config import ExecConfig
from service.trades import TradeRecord, TradeState, tag_for
from tests.service.execution.conftest import SBIN, Parts
from tests.service.execution.test_backstop_unit import BACKUP, LIMIT, STOP, TRIGGER

DELIVERY = "DELIVERY"


@pytest.fixture
def config() -> ExecConfig:
    return BACKUP


async def armed(parts: Parts, quantity: int, stop: int = STOP) -> TradeRecord:
    trade = await parts.opened(quantity, product=DELIVERY)
    return await parts.orders.journal.record(trade.id, "armed", stop=stop, target=None)


def waiting(parts: Parts) -> list:
    return [r for r in parts.broker.rules() if r.status.waiting]


async def created(parts: Parts):
    (rule,) = await parts.until(lambda: waiting(parts), "the GTT rule created")
    return rule


def net(parts: Parts) -> int:
    return parts.broker.net("NSE", SBIN, DELIVERY)


async def test_arming_a_delivery_trade_creates_a_gtt_rule(parts: Parts):
    trade = await armed(parts, 5)
    rule = await created(parts)
    assert (rule.side, rule.quantity, rule.trigger_price, rule.price, rule.product) == \
        (OrderSide.SELL, 5, TRIGGER, LIMIT, DELIVERY)
    assert parts.broker.orders(tag_for(trade.id, "broker_stop", 1)) == []  # a rule, not a session order
    view = await parts.until(lambda: parts.stops.view(parts.published[-1]), "the view")
    assert view["kind"] == "GTT rule" and view["trigger"] == TRIGGER
    # protected once the create's reply is stored (the rule is at the broker a moment before that)
    assert await parts.until(lambda: parts.stops.protected(trade.id), "the rule's record working")


async def test_the_rule_follows_the_trail(parts: Parts):
    trade = await armed(parts, 5)
    rule = await created(parts)
    await parts.orders.journal.record(trade.id, "stop_moved", stop=79_600)
    await parts.until(lambda: parts.broker.rules()[0].trigger_price == 79_440, "the rule moved")
    assert parts.broker.rules()[0].rule_id == rule.rule_id and parts.broker.rules()[0].price == 79_040


async def test_a_close_cancels_the_rule_before_its_exit(parts: Parts):
    trade = await armed(parts, 5)
    rule = await created(parts)
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    assert parts.broker.rules()[0].status is GttStatus.CANCELLED and closed.exited == 5 and net(parts) == 0
    assert [(route, rule_id) for _, route, rule_id, _ in parts.broker.gtt.calls if route == "cancelRule"] == \
        [("cancelRule", rule.rule_id)]
    assert closed.reason == "MANUAL"


async def test_a_rule_that_triggers_first_closes_the_trade_at_the_brokers_fill(parts: Parts):
    trade = await armed(parts, 5)
    await created(parts)
    # the rule recorded as working (not only at the broker): its order is then known as the trade's
    await parts.until(lambda: parts.stops.protected(trade.id), "the rule recorded")
    parts.broker.set_price("NSE", SBIN, 78_600)  # through the trigger, above the limit: its LIMIT fills
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    assert (closed.reason, closed.exited, closed.exit_price) == ("BROKER_STOP", 5, 78_600)
    assert net(parts) == 0 and parts.broker.orders(tag_for(trade.id, "exit", 1)[:-1]) == []


async def test_a_cancel_that_loses_to_the_trigger_counts_the_rules_fill(parts: Parts):
    trade = await armed(parts, 5)
    await created(parts)
    parts.broker.gtt.arm(GttFault(call="loses", delay_s=0.05))
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    await parts.until(lambda: not parts.exits.exiting, "the exit task to end")
    assert closed.exited == 5 and net(parts) == 0  # one exit: the rule's order, nothing more
    assert parts.broker.orders(tag_for(trade.id, "exit", 1)[:-1]) == []
