from __future__ import annotations

from service.replay.plans import plan_from_events
from tests.service.replay.synth import OPEN_MS, created, event, plan, rules


def test_a_trade_whose_entry_never_filled_has_no_plan():
    assert plan_from_events([created(), event("rejected", OPEN_MS + 5, reason="no margin")]) is None
    assert plan_from_events([]) is None


def test_every_entry_fill_arms_with_the_trade_as_folded_so_far():
    trade = plan(quantity=6, more=[event("entry_fill", OPEN_MS + 900, quantity=4, price=80_100, tag="tg1E1")])
    assert [(at, record.filled, record.entry_price) for at, record in trade.arms] == [
        (OPEN_MS + 500, 6, 80_000), (OPEN_MS + 900, 10, 80_040)]
    assert [f.order for f in trade.entries] == ["tg1E1", "tg1E1"]


def test_only_exits_outside_the_rules_are_injected_and_the_recorded_exit_is_kept():
    for reason, injected in (("SIGNAL", True), ("MANUAL", True), ("RISK", True), ("STOP", False),
                             ("TRAIL", False), ("TARGET", False), ("SQUARE_OFF", False), ("CUSTOM", False)):
        trade = plan(rules_=rules(stop=("points", 5)), more=[
            event("exit_fired", OPEN_MS + 2_000, reason=reason, level=79_500, tick_ltp=79_450, tick_ts_ms=OPEN_MS + 1_990),
            event("exit_fill", OPEN_MS + 2_050, quantity=10, price=79_400, tag="tg1X1"), event("closed", OPEN_MS + 2_051)])
        assert bool(trade.closes) is injected, reason
        recorded = trade.recorded
        assert (recorded.reason, recorded.level, recorded.tick_ltp, recorded.tick_ts_ms, recorded.price, recorded.quantity) == (
            reason, 79_500, 79_450, OPEN_MS + 1_990, 79_400, 10)


def test_a_broker_stop_close_is_injected_as_broker_stop():
    trade = plan(more=[event("exit_fill", OPEN_MS + 3_000, quantity=10, price=79_000, tag="tg1B1"),
                       event("closed", OPEN_MS + 3_001, exit_reason="BROKER_STOP")])
    assert [(c.at_ms, c.reason) for c in trade.closes] == [(OPEN_MS + 3_001, "BROKER_STOP")]
    assert trade.reductions == ()


def test_partial_exits_are_kept_as_fills_the_full_exit_is_not():
    trade = plan(more=[
        event("partial_exit_fired", OPEN_MS + 1_000, reason="SIGNAL", quantity=3),
        event("exit_fill", OPEN_MS + 1_010, quantity=3, price=80_500, tag="tg1X1"),
        event("partial_exit_done", OPEN_MS + 1_020, asked=3, quantity=3),
        event("exit_fired", OPEN_MS + 2_000, reason="STOP", level=79_500, tick_ltp=79_500, tick_ts_ms=OPEN_MS + 1_999),
        event("exit_fill", OPEN_MS + 2_010, quantity=7, price=79_450, tag="tg1X2")])
    assert [(f.quantity, f.price) for f in trade.reductions] == [(3, 80_500)]
    assert trade.recorded.quantity == 7
