"""The guard: ticks into the engine, subscriptions for the trades the engine guards — and the engine's
own last tick per (exchange, token) for pricing exits (tokens are unique only within an exchange)."""
from __future__ import annotations

from streams import Refused
from tests.support.rig import trading_rig

SHARED_TOKEN = "1"  # the same token number on two exchanges: two different instruments


async def test_an_exit_is_priced_on_its_own_exchanges_tick_not_another_with_the_same_token(tmp_path):
    prices = {("NSE", SHARED_TOKEN): 80_000, ("BSE", SHARED_TOKEN): 5_000}
    async with trading_rig(tmp_path, prices=prices) as rig:
        on_nse = await rig.open_trade(quantity=2, exchange="NSE", token=SHARED_TOKEN)
        await rig.open_trade(quantity=2, exchange="BSE", token=SHARED_TOKEN)
        rig.broker.set_price("NSE", SHARED_TOKEN, 79_500)  # above its stop (790.00)
        rig.broker.set_price("BSE", SHARED_TOKEN, 5_010)  # the latest tick carries the same token number
        await rig.trader.close(on_nse)
        await rig.until(lambda: rig.exits(on_nse), "the NSE trade's exit")
        (exit_order,) = rig.exits(on_nse)
        assert 78_500 <= exit_order.price < 79_500, exit_order  # 0.5 % under NSE's 795.00, not under BSE's 50.10
        await rig.settled(on_nse)  # its tick is forgotten with it; the BSE trade's stays
        assert rig.guard.last_price("NSE", SHARED_TOKEN) is None and rig.guard.last_price("BSE", SHARED_TOKEN) == 5_010


async def test_a_trade_the_engine_refuses_is_not_armed_subscribed_or_kept(tmp_path):
    async with trading_rig(tmp_path, prices={("NCDEX", "77"): 10_000}) as rig:  # no session hours for NCDEX
        trade_id = await rig.open_trade(quantity=1, exchange="NCDEX", token="77", armed=False)
        await rig.until(lambda: any(isinstance(c, Refused) and c.trade_id == trade_id for c in rig.changes),
                        "the engine's refusal")
        assert not rig.guard.armed(trade_id)
        assert ("NCDEX", "77") not in rig.broker.tick_stream().subscriptions
        assert trade_id not in rig.guard.records


async def test_a_manual_close_of_a_trade_the_engine_does_not_guard_sends_the_exit(tmp_path):
    """Until the refusal marks it UNPROTECTED the trade is OPEN; a close then must not go to an engine
    that does not know the trade (it would be dropped)."""
    async with trading_rig(tmp_path, prices={("NCDEX", "77"): 10_000}) as rig:
        trade_id = await rig.open_trade(quantity=1, exchange="NCDEX", token="77", armed=False)
        await rig.until(lambda: any(isinstance(c, Refused) and c.trade_id == trade_id for c in rig.changes),
                        "the engine's refusal")
        await rig.trader.close(trade_id)
        trade = await rig.settled(trade_id)
        assert trade.state == "CLOSED" and rig.broker.net("NCDEX", "77") == 0
