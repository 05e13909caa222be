"""The exit loop on the model broker, without an engine (nothing armed: a close fires the exit here):
full and partial exits capped by the net position, chased, retried, UNPROTECTED when they keep failing."""
from __future__ import annotations

from service.broker import OrderRequest, OrderSide, OrderStatus
from service.broker.model import Fault
from service.execution.chase import protected_price
from service.trades import TradeState, tag_for
from tests.service.execution.conftest import FAST, KEY, PRICE, SBIN, Parts


def exits(parts: Parts, trade_id: int) -> list:
    """The trade's exit orders as the broker has them."""
    prefix = tag_for(trade_id, "exit", 1)[:-1]
    return [order for order in parts.broker.orders(prefix) if order.tag[len(prefix):].isdigit()]


async def test_a_close_sends_one_protected_exit_and_the_fill_closes_the_trade(parts: Parts):
    trade = await parts.opened(5)
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    [order] = exits(parts, trade.id)
    assert (order.side, order.quantity, order.price) == (OrderSide.SELL, 5, protected_price(OrderSide.SELL, PRICE, 5, FAST.protection_pct))
    assert order.price == PRICE - 400  # 0.5 % below the LTP, on the tick
    assert closed.exited == 5 and parts.broker.net("NSE", SBIN) == 0
    kinds = await parts.kinds(trade.id)
    assert kinds.count("exit_fired") == 1 and kinds[-1] == "closed"
    await parts.until(lambda: not parts.exits.exiting, "the exit task to end")


async def test_a_short_trade_exits_with_a_buy(parts: Parts):
    trade = await parts.opened(4, side="SHORT")
    assert parts.broker.net("NSE", SBIN) == -4
    await parts.exits.close(trade.id)
    await parts.in_state(trade.id, TradeState.CLOSED)
    [order] = exits(parts, trade.id)
    assert (order.side, order.quantity, order.price) == (OrderSide.BUY, 4, PRICE + 400)
    assert parts.broker.net("NSE", SBIN) == 0


async def test_an_exit_is_capped_by_the_net_position(parts: Parts):
    trade = await parts.opened(5)
    # two of the five were sold by hand at the broker: the exit may sell only what is left
    await parts.broker.place_order(OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token=SBIN,
                                                side=OrderSide.SELL, quantity=2, product="INTRADAY"))
    await parts.until(lambda: parts.book.held(KEY, True) is None, "the manual sale seen")
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    [order] = exits(parts, trade.id)
    assert order.quantity == 3
    assert closed.exited == 3
    assert await parts.event(trade.id, "closed") == [{"reason": "no position left at the broker"}]
    assert parts.broker.net("NSE", SBIN) == 0  # never flipped short
    assert ("confirm", trade.id, PRICE) in parts.guard.calls


async def test_a_refused_exit_is_retried_with_backoff_then_the_trade_is_unprotected(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(*[Fault(placement="refused")] * FAST.exit_attempts)
    await parts.exits.close(trade.id)
    unprotected = await parts.in_state(trade.id, TradeState.UNPROTECTED)
    assert unprotected.reason == f"exit failed {FAST.exit_attempts} times"
    retries = await parts.event(trade.id, "exit_retry")
    assert retries == [{"attempt": n, "outcome": "refused"} for n in range(1, FAST.exit_attempts + 1)]
    assert parts.broker.net("NSE", SBIN) == 5  # still held: loudly UNPROTECTED, never silently closed
    assert parts.book.held(KEY, True) == 5  # the refused exits reserve nothing


async def test_an_unprotected_trade_is_exited_again_on_a_close(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(*[Fault(placement="refused")] * FAST.exit_attempts)
    await parts.exits.close(trade.id)
    await parts.in_state(trade.id, TradeState.UNPROTECTED)
    await parts.until(lambda: not parts.exits.exiting, "the failed exit to end")
    await parts.exits.close(trade.id)
    await parts.in_state(trade.id, TradeState.CLOSED)
    assert [o.tag for o in exits(parts, trade.id)] == [tag_for(trade.id, "exit", 4)]  # numbered after the refused ones


async def test_a_resting_exit_is_chased_until_it_fills(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(fill="rest"))  # rests whatever the price, until re-priced
    await parts.exits.close(trade.id)
    await parts.in_state(trade.id, TradeState.CLOSED)
    [order] = exits(parts, trade.id)
    assert order.status == OrderStatus.COMPLETE
    [chased] = await parts.event(trade.id, "exit_chased")
    assert chased["price"] == protected_price(OrderSide.SELL, PRICE, 5, FAST.protection_pct * 2) < PRICE - 400


async def test_an_exit_in_doubt_never_placed_is_followed_by_one_exit(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(placement="doubt_lost"))
    await parts.exits.close(trade.id)
    await parts.in_state(trade.id, TradeState.CLOSED)
    [order] = exits(parts, trade.id)  # the first never reached the broker
    assert order.tag == tag_for(trade.id, "exit", 2) and parts.broker.net("NSE", SBIN) == 0
    assert await parts.event(trade.id, "exit_retry") == [{"attempt": 1, "outcome": "never placed"}]


async def test_a_partial_exit_reduces_the_trade_and_leaves_the_rest_open(parts: Parts):
    trade = await parts.opened(5)
    reduced = await parts.exits.reduce(trade.id, 2, "SIGNAL")
    assert reduced is not None and reduced.state is TradeState.OPEN and reduced.exited == 2
    assert parts.broker.net("NSE", SBIN) == 3 and parts.book.held(KEY, True) == 3
    assert await parts.event(trade.id, "partial_exit_fired") == [{"reason": "SIGNAL", "quantity": 2}]
    assert await parts.event(trade.id, "partial_exit_done") == [{"asked": 2, "quantity": 2, "realised_pnl": 0}]
    # the next exit, full, is numbered after the part's and takes what is left
    await parts.exits.close(trade.id)
    closed = await parts.in_state(trade.id, TradeState.CLOSED)
    assert [(o.tag, o.quantity) for o in exits(parts, trade.id)] == [(tag_for(trade.id, "exit", 1), 2), (tag_for(trade.id, "exit", 2), 3)]
    assert closed.exited == 5


async def test_a_partial_exit_of_everything_open_is_a_close(parts: Parts):
    trade = await parts.opened(3)
    await parts.exits.reduce(trade.id, 3)
    await parts.in_state(trade.id, TradeState.CLOSED)
    assert "partial_exit_fired" not in await parts.kinds(trade.id)


async def test_a_partial_exit_capped_by_the_net_position_exits_what_is_there(parts: Parts):
    trade = await parts.opened(5)
    await parts.broker.place_order(OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token=SBIN,
                                                side=OrderSide.SELL, quantity=4, product="INTRADAY"))
    await parts.until(lambda: parts.book.held(KEY, True) is None, "the manual sale seen")
    reduced = await parts.exits.reduce(trade.id, 2)
    assert reduced is not None and reduced.exited == 1 and reduced.state is TradeState.OPEN
    assert await parts.event(trade.id, "partial_exit_done") == [{"asked": 2, "quantity": 1, "realised_pnl": 0}]
    assert parts.broker.net("NSE", SBIN) == 0


async def test_a_refused_partial_exit_fails_and_the_trade_stays_guarded(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(*[Fault(placement="refused")] * FAST.exit_attempts)
    failed = await parts.exits.reduce(trade.id, 2)
    assert failed is not None and failed.state is TradeState.OPEN and failed.exited == 0
    assert await parts.event(trade.id, "partial_exit_failed") == [
        {"asked": 2, "quantity": 0, "reason": f"exit failed {FAST.exit_attempts} times"}]
    assert len(await parts.event(trade.id, "partial_exit_retry")) == FAST.exit_attempts
    assert parts.broker.net("NSE", SBIN) == 5


async def test_a_second_intent_while_an_exit_works_sends_nothing_more(parts: Parts):
    trade = await parts.opened(5)
    parts.broker.arm(Fault(fill="rest"))
    await parts.exits.close(trade.id)
    await parts.exits.close(trade.id)  # the trade is EXITING (or its exit task running): no second exit
    await parts.in_state(trade.id, TradeState.CLOSED)
    assert len(exits(parts, trade.id)) == 1
    assert (await parts.kinds(trade.id)).count("exit_fired") == 1
