"""The alert price check: the decision (against a reference model) and where the live price comes from."""
from __future__ import annotations

import asyncio
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.alerts.parse import parse_alert
from service.alerts.prices import LivePrices, judge, off_by, opens_nothing
from service.broker.errors import BrokerUnavailable
from tests.support.waiting import until

NOW_MS = 1_767_000_000_000
STALE_MS = 5_000


def alert(price: object = 800, **extra):
    return parse_alert({"symbolname": "SBIN", "signal": "buy", "price": price, "type": "equity", "strategyname": "s",
                        **extra})


# The decision ------------------------------------------------------------------------------------------
def reference_refused(price: Decimal, live: int, pct: Decimal) -> bool:
    """Refused iff |price − live| / live > pct %, in exact fractions (pct 0: the check is off)."""
    if pct == 0:
        return False
    away = abs(Fraction(price) * 100 - live) / live
    return away > Fraction(pct) / 100


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
lives = st.integers(min_value=1, max_value=10_000_000)
percents = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2)


@given(prices, lives, percents)
def test_refused_exactly_when_further_than_the_percentage(price, live, pct):
    assert off_by(price, live, pct) == reference_refused(price, live, pct)


@given(lives, percents.filter(lambda p: p > 0))
def test_the_boundary_itself_is_accepted_and_one_paisa_beyond_is_not(live, pct):
    """At exactly pct % away (where that is a whole paisa) the price passes; a paisa further it is refused."""
    edge = Fraction(live) * (1 + Fraction(pct) / 100)
    if edge.denominator == 1:
        at = Decimal(int(edge)) / 100
        assert not off_by(at, live, pct)
        assert off_by(at + Decimal("0.01"), live, pct)
    beyond = Decimal(int(edge) + 1) / 100  # the first whole paisa strictly past the edge
    assert off_by(beyond, live, pct)
    below = Fraction(live) * (1 - Fraction(pct) / 100)
    if below > 1:
        inside = Decimal(-(-below.numerator // below.denominator)) / 100  # the first paisa at or above the lower edge
        assert not off_by(inside, live, pct)


def test_the_refusal_names_the_live_price_and_the_percentage():
    check = judge(alert(900), 80_000, Decimal(5), "alert", "NSE:SBIN-EQ")
    assert check.checked and check.refusal
    assert "800.00" in check.refusal and "12.50%" in check.refusal and "5%" in check.refusal
    assert check.stored() == {"price_checked": True, "live_price": 800.0, "price_used": "alert"}
    within = judge(alert(840), 80_000, Decimal(5), "alert", "NSE:SBIN-EQ")
    assert within.checked and not within.refusal


def test_price_source_live_plans_at_the_live_price_and_refuses_nothing():
    check = judge(alert(900), 80_000, Decimal(5), "live", "NSE:SBIN-EQ")
    assert check.checked and not check.refusal and check.used == "live" and check.live == 80_000


def test_no_live_price_is_recorded_as_unchecked():
    check = judge(alert(900), None, Decimal(5), "alert", "NSE:SBIN-EQ")
    assert not check.checked and not check.refusal and check.stored() == {"price_checked": False}


@pytest.mark.parametrize("extra, closes_only", [
    ({"signal": "exit"}, True), ({"signal": "cover"}, True), ({"position_size": 0}, True),
    ({"signal": "buy"}, False), ({"signal": "sell"}, False), ({"signal": "short"}, False), ({"position_size": 2}, False),
])
def test_only_alerts_that_may_open_are_checked(extra, closes_only):
    assert opens_nothing(alert(**extra)) is closes_only


# The live price ----------------------------------------------------------------------------------------
class Market:
    """A tick source and a getLtpData stand-in that counts its reads."""

    def __init__(self, price: int = 80_000, tick: tuple[int, int] | None = None) -> None:
        self.price = price
        self.tick = tick
        self.reads = 0
        self.gate: asyncio.Event | None = None  # set: the read waits for it
        self.fail = False
        self.now_ms = NOW_MS
        self.open = True

    def last_tick(self, exchange: str, token: str) -> tuple[int, int] | None:
        return self.tick

    async def read(self, exchange: str, tradingsymbol: str, token: str) -> int:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise BrokerUnavailable("the broker did not answer in time", route="getLtpData")
        return self.price

    def prices(self) -> LivePrices:
        return LivePrices(last_tick=self.last_tick, read=self.read, session_open=lambda exchange: self.open,
                          stale_ms=STALE_MS, clock=lambda: self.now_ms / 1000)


async def test_a_fresh_tick_is_the_live_price_without_a_read():
    market = Market(tick=(79_500, NOW_MS - STALE_MS))
    assert await market.prices().price("NSE", "SBIN-EQ", "3045") == 79_500
    assert market.reads == 0


async def test_a_stale_tick_falls_back_to_one_paced_read_kept_for_stale_tick_s():
    market = Market(tick=(79_500, NOW_MS - STALE_MS - 1))
    prices = market.prices()
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000
    assert market.reads == 1
    market.now_ms += STALE_MS  # still fresh: no second read
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000
    assert market.reads == 1
    market.now_ms += 1
    market.price = 81_000
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 81_000
    assert market.reads == 2


async def test_a_read_nearing_its_end_is_read_again_without_holding_the_alert():
    market = Market()
    prices = market.prices()
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000
    market.now_ms += STALE_MS * 3 // 4  # not yet past REFRESH_AFTER
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000 and market.reads == 1
    market.gate = asyncio.Event()  # the next read hangs: the alert must not wait on it
    market.price = 80_200
    market.now_ms += 1
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000
    await until(lambda: market.reads == 2, "the background read to start")
    market.gate.set()
    await until(lambda: prices.kept[("NSE", "3045")][0] == 80_200, "the background read to be kept")
    market.now_ms += STALE_MS  # the first read would be stale now; the background one is fresh
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_200 and market.reads == 2


async def test_alerts_asking_together_share_one_read():
    market = Market()
    market.gate = asyncio.Event()
    prices = market.prices()
    asking = [asyncio.create_task(prices.price("NSE", "SBIN-EQ", "3045")) for _ in range(20)]
    await until(lambda: market.reads, "the read to start")
    market.gate.set()
    assert await asyncio.gather(*asking) == [80_000] * 20
    assert market.reads == 1


async def test_a_slow_read_is_not_waited_for_and_its_late_answer_serves_the_next_alert():
    market = Market()
    market.gate = asyncio.Event()  # never set while the alert waits: the read takes longer than 300 ms
    prices = market.prices()
    assert await prices.price("NSE", "SBIN-EQ", "3045") is None
    market.gate.set()
    await until(lambda: prices.kept, "the late answer to be kept")
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000
    assert market.reads == 1


async def test_a_failed_read_is_no_live_price():
    market = Market()
    market.fail = True
    prices = market.prices()
    assert await prices.price("NSE", "SBIN-EQ", "3045") is None
    market.fail = False
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_000  # a failure is not kept
    assert market.reads == 2


async def test_outside_the_session_there_is_no_live_price_and_no_read():
    market = Market(tick=(79_500, NOW_MS))
    market.open = False
    assert await market.prices().price("NSE", "SBIN-EQ", "3045") is None
    assert market.reads == 0


async def test_a_cluster_intake_ages_a_leaders_price_from_its_arrival():
    """An intake hears prices only when they move: one heard longer than STALE_TICK_S ago is read again."""
    from types import SimpleNamespace

    from service.cluster.intake import Prices
    from service.runtime import always_open_calendar
    from streams import SessionClock

    market = Market(price=80_500)
    heard = Prices(SessionClock(always_open_calendar()), lambda: market.now_ms)
    heard.heard(SimpleNamespace(subject="tickguard.px.NSE.3045", data=b"79900"))
    prices = LivePrices(last_tick=heard.last_seen, read=market.read, session_open=lambda exchange: True,
                        stale_ms=STALE_MS, clock=lambda: market.now_ms / 1000)
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 79_900 and market.reads == 0
    market.now_ms += STALE_MS + 1
    assert await prices.price("NSE", "SBIN-EQ", "3045") == 80_500 and market.reads == 1
