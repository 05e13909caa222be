"""The golden test: a paper session recorded by `tickguard serve` (RECORD_TICKS=true) with a stop, a
target, a trail with activation, a signal exit and a gap through two stops, replayed from its store
and its recording with the variant `live`: the same trades leave for the same reasons on the same
trigger ticks at the same levels."""
from __future__ import annotations

from service.cli import main
from service.replay.table import read_csv
from tests.support.service import RunningService
from tests.support.waiting import wait_for

STOP_5 = {"type": "points", "value": 5}
STOP_10 = {"type": "points", "value": 10}


def opened(service: RunningService, **alert) -> int:
    reply = service.alert(price=800, quantity=3, **alert)
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="entry and arming")
    return trade_id


def moved(service: RunningService, price: float) -> None:
    runtime = service.app.state.runtime
    service.price(price)
    wait_for(lambda: runtime.guard.last_price("NSE", "3045") == round(price * 100), f"the engine at {price}")


def closed(service: RunningService, trade_id: int) -> dict:
    return service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what=f"trade {trade_id} closed")["trade"]


def test_a_recorded_paper_session_replays_to_the_same_exits(service_factory, tmp_path):
    recording = tmp_path / "recording"
    service = service_factory(RECORD_TICKS="true", RECORD_DIR=str(recording))
    service.price(800)
    stop = opened(service, stoploss=STOP_5)
    target = opened(service, stoploss=STOP_10, target={"type": "points", "value": 4})
    trail = opened(service, stoploss=STOP_10, trail={"type": "points", "value": 2,
                                                     "activation": {"type": "points", "value": 3}})
    signal = opened(service, strategyname="s2", stoploss=STOP_10)
    for price in (801, 802, 803.5, 804.2):  # trail active at 803 (stop 801.50, then 802.20); target at 804
        moved(service, price)
    assert closed(service, target)["reason"] == "TARGET"
    moved(service, 803)
    reply = service.alert(price=803, signal="exit", strategyname="s2")
    assert reply.status_code == 202, reply.text
    assert closed(service, signal)["reason"] == "SIGNAL"
    service.price(780)  # a gap through the trail's stop and the plain stop (not `moved`: once both close, the
    # engine forgets the instrument's last tick with its last trade, so there is no price to wait for)
    assert closed(service, trail)["reason"] == "TRAIL"
    assert closed(service, stop)["reason"] == "STOP"
    stored = {t: service.trade(t) for t in (stop, target, trail, signal)}
    service.stop()  # the recorder writes what is queued

    out = tmp_path / "out"
    assert main(["replay", "--ticks", str(recording), "--trades", service.settings.tickguard_db,
                 "--market-hours", "always", "--out", str(out)]) == 0
    rows = {row.trade_id: row for row in read_csv(out / "replay.csv") if row.variant == "live"}
    assert sorted(rows) == sorted(stored)
    for trade_id, view in stored.items():
        fired = next(e["data"] for e in view["events"] if e["kind"] == "exit_fired")
        row = rows[trade_id]
        assert (row.reason, row.level) == (view["trade"]["reason"], fired.get("level")), (row, fired)
        assert (row.trigger_ltp, row.trigger_ts_ms) == (fired["tick_ltp"], fired["tick_ts_ms"]), (row, fired)
        assert row.quantity == 3 and row.entry_price == view["trade"]["entry_price"]
    assert rows[stop].trigger_ltp == rows[trail].trigger_ltp == 78_000  # the gap, not the levels
    assert (rows[stop].level, rows[trail].level) == (79_500, 80_220)
