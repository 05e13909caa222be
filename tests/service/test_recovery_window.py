"""Which minutes a restart checks for stops crossed while tickguard was down (service/recovery.py, step 3).

An entry that filled while tickguard was down was never watched: its window opens at its fill as the
broker stamps it, whatever the restart's own time (a restart in the next minute still sees the dip
after the fill), and the prices before its fill are not its risk. A trade watched before the stop is
checked from the last tick seen.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from service.broker import Candle
from service.recovery import _crossed_while_down, _stamped_ms
from service.trades import TradeRecord, TradeState

IST = ZoneInfo("Asia/Kolkata")


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 12, 4, hh, mm, ss, tzinfo=IST)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def candle(moment: datetime, low: int, high: int = 80_000) -> Candle:
    return Candle(moment.isoformat(), 80_000, high, low, 80_000, 10)


class Market:
    """One instrument's one-minute candles, served for the asked window as the broker does."""

    def __init__(self, candles: list[Candle]) -> None:
        self.candles_ = candles
        self.asked: list[tuple[datetime, datetime]] = []

    async def candles(self, exchange, token, interval, start, end):
        self.asked.append((start, end))
        return [c for c in self.candles_ if start <= datetime.fromisoformat(c.start) <= end]


def parts_for(trades: list[TradeRecord], market: Market, now: datetime, stops: dict[int, int]):
    fired: list = []
    guard = SimpleNamespace(stop_state=lambda tid: SimpleNamespace(stop=stops[tid], target=None) if tid in stops else None,
                            disarm=lambda tid: None)

    async def open_trades(states):
        assert states == [TradeState.OPEN]
        return trades

    parts = SimpleNamespace(store=SimpleNamespace(trades=open_trades), brokers=[], market_data=market, guard=guard,
                            trader=SimpleNamespace(on_exit_intent=fired.append), clock=lambda: now.timestamp())
    return parts, fired


def trade(trade_id: int, created: datetime, updated: datetime | None = None) -> TradeRecord:
    return TradeRecord(id=trade_id, alert_id=None, account="A", strategy="s", exchange="NSE", token="3045",
                       tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", state=TradeState.OPEN,
                       quantity=5, filled=5, entry_price=80_000, created_ms=ms(created), updated_ms=ms(updated or created))


def run(parts, since_ms, entered) -> int:
    return asyncio.run(_crossed_while_down(parts, since_ms, entered))


def test_an_entry_filled_while_down_is_checked_from_its_fill_not_from_the_restart():
    # Killed at 10:00:20 before any tick was stored; filled 10:00:40; dipped through the stop at
    # 10:00:50 and came back; restarted at 10:01:05, the next minute.
    market = Market([candle(at(10, 0), low=78_900)])
    # Applying the fill at restart stamped the trade's row with the restart's time.
    parts, fired = parts_for([trade(1, at(10, 0, 10), updated=at(10, 1, 5))], market, at(10, 1, 5), {1: 79_000})
    assert run(parts, None, {1: ms(at(10, 0, 40))}) == 1
    assert [(i.trade_id, str(i.reason), i.level) for i in fired] == [(1, "STOP", 79_000)]
    assert market.asked[0][0] == at(10, 0)


def test_prices_before_an_entry_filled_while_down_are_not_its_risk():
    # The dip came at 09:58, the entry filled at 10:00:40 (last tick seen at 09:57).
    market = Market([candle(at(9, 58), low=78_900), candle(at(10, 0), low=79_500)])
    parts, fired = parts_for([trade(1, at(9, 57, 30))], market, at(10, 1, 5), {1: 79_000})
    assert run(parts, ms(at(9, 57, 45)), {1: ms(at(10, 0, 40))}) == 0
    assert fired == []


def test_a_watched_trade_is_checked_from_the_last_tick_and_one_request_serves_its_instrument():
    # Trade 1 was armed and watched until 10:02:30; trade 2 filled while down at 10:05.
    market = Market([candle(at(10, 3), low=78_900), candle(at(10, 6), low=79_900)])
    parts, fired = parts_for([trade(1, at(10, 0)), trade(2, at(10, 2))], market, at(10, 8), {1: 79_000, 2: 79_000})
    assert run(parts, ms(at(10, 2, 30)), {2: ms(at(10, 5))}) == 1
    assert [i.trade_id for i in fired] == [1]
    assert len(market.asked) == 1 and market.asked[0][0] == at(10, 2)


def test_with_no_tick_ever_stored_a_watched_trade_is_checked_from_its_creation():
    market = Market([candle(at(10, 0), low=78_900)])
    parts, fired = parts_for([trade(1, at(10, 0, 5))], market, at(10, 3), {1: 79_000})
    assert run(parts, None, {}) == 1


@pytest.mark.parametrize("text, expected", [
    ("04-Dec-2026 10:00:40", ms(at(10, 0, 40))),
    ("", None),
    ("2026-12-04 10:00:40", None),
])
def test_the_brokers_order_time_is_read_in_ist(text, expected):
    assert _stamped_ms(text) == expected
