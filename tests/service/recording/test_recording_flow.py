"""`tickguard serve` with RECORD_TICKS=true against the paper exchange: the recording holds exactly the
ticks the stop engine saw, in its order (a pass-through tick plug-in keeps what the engine saw)."""
from __future__ import annotations

import re

from service.recording import read_ticks
from tests.support import taps
from tests.support.service import RunningService
from tests.support.waiting import wait_for

PRICES = [801, 802.5, 799.05, 803, 804]  # inside the stop (700) and short of anything else


def open_trade(service: RunningService) -> int:
    service.price(800)
    reply = service.alert(price=800, quantity=2, stoploss={"type": "points", "value": 100})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None, what="entry fill and arming")
    return trade_id


def recorded_metric(service: RunningService) -> float:
    with service.client() as client:
        text = client.get("/metrics").text
    found = re.search(r"^tickguard_recorded_ticks_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def test_serve_records_the_ticks_the_engine_saw_in_its_order(service_factory, tmp_path):
    root = tmp_path / "recording"
    service = service_factory(RECORD_TICKS="true", RECORD_DIR=str(root), PLUGINS=taps.PLUGINS)
    runtime = service.app.state.runtime
    open_trade(service)
    for price in PRICES:
        service.price(price)
    wait_for(lambda: runtime.guard.last_price("NSE", "3045") == round(PRICES[-1] * 100), "the engine's last price")
    wait_for(lambda: recorded_metric(service) >= len(PRICES), "the recorded ticks in /metrics")
    service.stop()  # as SIGTERM: the guard stops, then the recorder writes what is queued
    got = list(read_ticks(root))
    assert got and [r.tick for r in got] == taps.SEEN
    assert len(got) == runtime.guard.ticks_seen == runtime.recorder.counts().recorded
    assert all(a.seq < b.seq for a, b in zip(got, got[1:]))
    prices = iter(r.tick.ltp for r in got)
    assert all(round(price * 100) in prices for price in PRICES)  # every price set, in the order set
    assert runtime.recorder.counts().dropped == 0


def test_serve_without_recording_has_no_recorder_and_writes_nothing(service_factory, tmp_path):
    root = tmp_path / "recording"
    service = service_factory(RECORD_DIR=str(root))
    runtime = service.app.state.runtime
    open_trade(service)
    service.price(801)
    wait_for(lambda: runtime.guard.last_price("NSE", "3045") == 80_100, "the engine's last price")
    assert runtime.recorder is None and recorded_metric(service) == -1.0
    service.stop()
    assert not root.exists()
