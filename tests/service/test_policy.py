from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.alerts.parse import parse_alert
from service.alerts.policy import Policy, decide, decide_contract, forbid_short
from service.trades import TradeRecord


def trade(id: int, side: str, qty: int = 10) -> TradeRecord:
    return TradeRecord(id=id, alert_id=None, account="A", strategy="s", exchange="NSE", token="3045",
                 tradingsymbol="SBIN-EQ", side=side, product="INTRADAY", quantity=qty, filled=qty)


def alert(signal: str, **extra):
    return parse_alert({"symbolname": "SBIN", "signal": signal, "price": 800, "type": "equity", "strategyname": "s", **extra})


@pytest.mark.parametrize("signal, trades, policy, close, opens", [
    ("buy", [], Policy.CLOSE_ONLY, [], "LONG"),
    ("buy", [trade(1, "LONG")], Policy.CLOSE_ONLY, [], "LONG"),  # adds
    ("sell", [trade(1, "LONG")], Policy.CLOSE_ONLY, [1], None),
    ("sell", [], Policy.CLOSE_ONLY, [], None),  # never opens a short
    ("sell", [trade(1, "LONG")], Policy.REVERSE, [1], "SHORT"),
    ("sell", [trade(1, "LONG")], Policy.OPEN_NEW, [], "SHORT"),
    ("buy", [trade(2, "SHORT")], Policy.CLOSE_ONLY, [2], None),
    ("exit", [trade(1, "LONG"), trade(2, "LONG")], Policy.REVERSE, [1, 2], None),
    ("exit", [], Policy.CLOSE_ONLY, [], None),
    ("short", [], Policy.CLOSE_ONLY, [], "SHORT"),
    ("cover", [trade(3, "SHORT")], Policy.CLOSE_ONLY, [3], None),
    ("cover", [], Policy.REVERSE, [], None),
])
def test_signal_policies(signal, trades, policy, close, opens):
    decision = decide(alert(signal), trades, policy)
    assert decision.close == close and decision.open_side == opens
    assert decision.empty == (not close and opens is None)
    if decision.empty:
        assert decision.note


@pytest.mark.parametrize("target, trades, close, opens, qty", [
    (0, [trade(1, "LONG"), trade(2, "SHORT")], [1, 2], None, None),
    (30, [trade(1, "LONG")], [], "LONG", 20),
    (-10, [trade(1, "LONG")], [1], "SHORT", 10),
    (10, [trade(1, "LONG"), trade(2, "LONG")], [1], None, None),  # the oldest goes first
])
def test_position_size_targets(target, trades, close, opens, qty):
    decision = decide(alert("buy", position_size=target), trades, Policy.CLOSE_ONLY)
    assert (decision.close, decision.open_side, decision.open_quantity) == (close, opens, qty)
    assert decision.reduce == []


@pytest.mark.parametrize("target, trades, close, reduce, opens, qty", [
    (2, [trade(1, "LONG", 5)], [], [(1, 3)], None, None),  # 5 → 2: exit 3, keep the trade
    (-1, [trade(1, "SHORT", 2)], [], [(1, 1)], None, None),
    (12, [trade(1, "LONG", 10), trade(2, "LONG", 10)], [], [(1, 8)], None, None),  # oldest first
    (4, [trade(1, "LONG", 3), trade(2, "LONG", 10)], [1], [(2, 6)], None, None),
    (-2, [trade(1, "LONG", 5)], [1], [], "SHORT", 2),  # reduce-then-flip: all of the long, then the short
])
def test_position_size_reduces_from_the_oldest_trade_first(target, trades, close, reduce, opens, qty):
    decision = decide(alert("buy", position_size=target), trades, Policy.CLOSE_ONLY)
    assert (decision.close, decision.reduce, decision.open_side, decision.open_quantity) == (close, reduce, opens, qty)


def test_an_unfilled_trade_is_only_closed_whole():
    pending = TradeRecord(id=1, alert_id=None, account="A", strategy="s", exchange="NSE", token="3045",
                    tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", quantity=5)
    decision = decide(alert("buy", position_size=2), [pending])
    assert (decision.close, decision.reduce, decision.open_side, decision.open_quantity) == ([1], [], "LONG", 2)


@pytest.mark.parametrize("signal, extra, trades, close, reduce", [
    ("exit", {"quantity": 3}, [trade(1, "LONG", 5)], [], [(1, 3)]),
    ("exit", {"percent": 50}, [trade(1, "LONG", 5)], [], [(1, 2)]),  # 2.5 rounds down
    ("exit", {"percent": 10}, [trade(1, "LONG", 5)], [], [(1, 1)]),  # at least one
    ("exit", {"percent": 100}, [trade(1, "LONG", 5)], [1], []),
    ("exit", {"quantity": 50}, [trade(1, "LONG", 5)], [1], []),  # at most what is open
    ("exit", {"quantity": 7}, [trade(1, "LONG", 5), trade(2, "LONG", 5)], [1], [(2, 2)]),
    ("sell", {"quantity": 2}, [trade(1, "LONG", 5)], [], [(1, 2)]),
    ("cover", {"percent": 50}, [trade(1, "SHORT", 4)], [], [(1, 2)]),
])
def test_exit_sell_and_cover_close_the_part_they_name(signal, extra, trades, close, reduce):
    decision = decide(alert(signal, **extra), trades, Policy.CLOSE_ONLY)
    assert (decision.close, decision.reduce, decision.open_side) == (close, reduce, None)


def test_percent_counts_whole_lots():
    lots = [trade(1, "LONG", 75 * 5)]
    assert decide(alert("exit", percent=50), lots, lot_size=75).reduce == [(1, 150)]  # 2.5 lots → 2
    assert decide(alert("exit", percent=1), lots, lot_size=75).reduce == [(1, 75)]  # at least one lot
    assert decide(alert("exit", lots=2), lots, lot_size=75).reduce == [(1, 150)]


@pytest.mark.parametrize("policy", [Policy.REVERSE, Policy.OPEN_NEW])
def test_a_sells_quantity_under_reverse_and_open_new_sizes_the_new_position(policy):
    decision = decide(alert("sell", quantity=2), [trade(1, "LONG", 5)], policy)
    assert decision.reduce == [] and decision.open_side == "SHORT"


@given(
    st.lists(st.tuples(st.sampled_from(["LONG", "SHORT"]), st.integers(1, 50)), max_size=5),
    st.integers(-200, 200),
)
def test_position_size_always_lands_on_the_target(held, target):
    trades = [trade(n + 1, side, qty) for n, (side, qty) in enumerate(held)]
    decision = decide(alert("buy", position_size=target), trades)
    reduced = dict(decision.reduce)
    remaining = [t for t in trades if t.id not in decision.close]
    net = sum((t.quantity - reduced.get(t.id, 0)) * (1 if t.side == "LONG" else -1) for t in remaining)
    assert all(0 < units < t.quantity for t in trades for i, units in decision.reduce if i == t.id)
    if decision.open_side is not None:
        net += decision.open_quantity if decision.open_side == "LONG" else -decision.open_quantity
    assert net == target or (target == 0 and not remaining)
    if not decision.empty and target != 0:  # whatever it changes leaves only the target's side open
        assert all(t.side == ("LONG" if target > 0 else "SHORT") for t in remaining)


@given(
    st.lists(st.integers(1, 50), max_size=4),
    st.sampled_from(["buy", "sell", "exit", "short", "cover"]),
    st.sampled_from(list(Policy)),
    st.one_of(st.none(), st.integers(-5, 5)),
)
def test_a_named_contract_is_never_sold_to_open(held, signal, policy, target):
    """Whatever the alert and policy: no opening short, closes only of longs held, and a refusal exactly
    when a short would have been opened (or a sell found nothing to close)."""
    trades = [trade(n + 1, "LONG", qty) for n, qty in enumerate(held)]
    extra = {} if target is None else {"position_size": target}
    decision = decide_contract(alert(signal, **extra), trades, policy)
    assert decision.open_side != "SHORT"
    assert set(decision.close) <= {t.id for t in trades}
    plain = decide(alert(signal, **extra), trades, policy)
    if signal == "sell" and target is None:
        assert decision.close == [t.id for t in trades] and decision.open_side is None
        assert (decision.refused is not None) == (not trades)
    else:
        assert decision.close == plain.close
        assert (decision.refused is not None) == (plain.open_side == "SHORT")


@pytest.mark.parametrize("signal, policy", [("sell", Policy.REVERSE), ("sell", Policy.OPEN_NEW), ("short", Policy.CLOSE_ONLY)])
def test_forbid_short_keeps_the_closes_and_refuses_the_short_leg(signal, policy):
    decision = forbid_short(decide(alert(signal), [trade(1, "LONG")], policy), "cash shorts are INTRADAY only", "product")
    assert decision.open_side is None and decision.refused.leg == "open_short" and decision.refused.field == "product"
    assert decision.close == ([1] if policy is Policy.REVERSE else [])
