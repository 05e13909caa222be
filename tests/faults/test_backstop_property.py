"""Whatever the market, the broker and a crash do around a broker-side backup stop, no trade's
broker stop and exits could together sell more than its position, and no position flips
(`backstop_scenarios.py` says what is played and checked). `make test` plays a couple of dozen
derandomized scenarios; `BACKSTOP_SCENARIOS=2000` plays more, at random."""
from __future__ import annotations

import asyncio
import os

from hypothesis import HealthCheck, given, settings

from service.execution.orders import OrderLedger
from service.trades import TradeState
from tests.faults.backstop_scenarios import CONFIG, RULES, Scenario, check, run, scenarios
from tests.support.rig import SBIN, trading_rig

EXAMPLES = int(os.environ.get("BACKSTOP_SCENARIOS", "25"))


@settings(max_examples=EXAMPLES, derandomize=EXAMPLES <= 100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_broker_stop_and_exits_never_exceed_the_position_whatever_happens(scenario: Scenario):
    violations = run(scenario)
    assert not violations, repr(scenario) + "\n" + "\n".join(violations)


async def test_an_exit_never_overtakes_a_broker_stop_being_placed(tmp_path, monkeypatch):
    """The broker stop's row takes a while to commit (a busy disk) and the price gaps through both
    stops meanwhile: tickguard's exit must wait for that placement and cancel it, not go out beside it."""
    send = OrderLedger.send

    async def slow_send(self, trade, role, *args, **kwargs):
        if role == "broker_stop":
            await asyncio.sleep(0.2)
        return await send(self, trade, role, *args, **kwargs)

    monkeypatch.setattr(OrderLedger, "send", slow_send)
    async with trading_rig(tmp_path, config=CONFIG, record_changes=True) as rig:
        trade_id = await rig.open_trade(1, rules=RULES)
        await asyncio.sleep(0.05)  # the armed event recorded: the broker stop is on its way
        rig.broker.set_price("NSE", SBIN, 78_700)  # through tickguard's stop and the broker's trigger
        await rig.settled(trade_id)
        await rig.trader.drain()  # the broker stop's worker too: whatever it was placing has reached the broker
        trades = {trade_id: await rig.trade(trade_id)}
    assert trades[trade_id].state is TradeState.CLOSED
    assert check(rig.broker, trades, long=True) == []
