"""The executor's stand-in for the engine (`RemoteGuard`) and the commands' wire form."""
from __future__ import annotations

import msgspec
import pytest

from service.cluster.commands import Close, Enter, Exit, Reduce, decode_command, encode, read_trade, shard_of, trade_shard
from service.cluster.remote import FRESH_S, RemoteGuard
from service.trades import TradeRecord, TradeState
from streams import ExitIntent, ExitReason, Phase, Tick


def record(trade_id: int = 7, **fields) -> TradeRecord:
    values = dict(id=trade_id, alert_id=1, account="A", strategy="s", exchange="NSE", token="3045",
                  tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", state=TradeState.OPEN, quantity=5,
                  filled=5, entry_price=80_000, stop=79_000, target=82_000, version=4)
    values.update(fields)
    return TradeRecord(**values)


def test_what_execution_asks_of_the_engine_is_answered_from_what_the_executor_saw():
    fired: list[ExitIntent] = []
    now = [100.0]
    guard = RemoteGuard(fired.append, clock=lambda: now[0])
    trade = record()
    assert not guard.armed(7) and guard.stop_state(7) is None
    guard.arm(trade)
    assert guard.armed(7) and guard.records[7] is trade
    state = guard.stop_state(7)
    assert (state.phase, state.stop, state.target) == (Phase.ARMED, 79_000, 82_000)
    guard.close(7, "MANUAL")
    assert fired == [ExitIntent(trade_id=7, reason=ExitReason.MANUAL, level=None, tick=None)]
    smaller = record(exited=2, version=6)
    guard.reduce(smaller, 2, 79_500)
    assert guard.records[7] is smaller
    guard.confirm(7, 79_000)
    assert not guard.armed(7)
    guard.reduce(record(), 1, 1)  # a trade no longer armed here is not armed again by a late fill
    assert not guard.armed(7)


def test_an_intents_tick_prices_the_first_exit_order_only_while_fresh():
    now = [100.0]
    guard = RemoteGuard(lambda intent: None, clock=lambda: now[0])
    assert guard.last_price("NSE", "3045") is None
    tick = Tick(token="3045", exchange="NSE", ltp=78_900, exchange_ts_ms=1)
    guard.heard(ExitIntent(trade_id=7, reason=ExitReason.STOP, level=79_000, tick=tick))
    assert guard.last_price("NSE", "3045") == 78_900 and guard.last_price("NSE", "1") is None
    now[0] += FRESH_S + 0.01
    assert guard.last_price("NSE", "3045") is None  # a chase re-prices from the broker's price


@pytest.mark.parametrize("command", [
    Enter(trade=1, fund=5_000_000, quantity=None, accepted_ms=10),
    Close(trade=2, reason="SIGNAL", cause="alert-9"),
    Reduce(trade=3, units=25, reason="MANUAL", cause="operator-5"),
    Exit(intent=ExitIntent(trade_id=4, reason=ExitReason.STOP, level=79_000,
                           tick=Tick(token="3045", exchange="NSE", ltp=78_900, exchange_ts_ms=5)),
         lease="guard-0-of-2", token=17, fired=1),
])
def test_commands_round_trip_with_distinct_message_ids(command):
    assert decode_command(encode(command)) == command
    assert command.msg_id() != Close(trade=2, reason="SIGNAL", cause="alert-10").msg_id()


def test_bad_commands_and_trade_versions_are_refused():
    with pytest.raises(msgspec.ValidationError):
        decode_command(b'{"type": "enter", "trade": "x"}')
    assert read_trade("tg.evt.trade.0.1", b"not json") is None
    assert read_trade("tg.evt.trade.0.7", encode(record())) == record()


def test_shards_are_stable_and_follow_the_basis():
    assert [shard_of("NSE", "3045", 4)] * 3 == [shard_of("NSE", "3045", 4) for _ in range(3)]
    assert {shard_of("NSE", str(token), 4) for token in range(200)} == {0, 1, 2, 3}
    assert trade_shard(record(), 4) == shard_of("NSE", "3045", 4)
