from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import service.metrics
from service.metrics import (
    ALERT_OUTCOMES,
    EXIT_REASONS,
    ORDER_OUTCOMES,
    ORDER_ROLES,
    TICK_TO_EXIT_BUCKETS,
    Metrics,
)
from streams import ExitReason
from tests.support.waiting import wait_for


def samples(metrics: Metrics) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition as (name, labels) -> value, `_created` series left out."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        assert family.name.startswith("tickguard_")
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                out[sample.name, frozenset(sample.labels.items())] = sample.value
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics)[name, frozenset(labels.items())]


def test_every_series_is_there_from_the_start_at_zero():
    metrics = Metrics()
    got = samples(metrics)
    assert {dict(labels)["outcome"] for name, labels in got if name == "tickguard_alerts_total"} == \
        {*ALERT_OUTCOMES, "other"}
    assert {tuple(sorted(labels)) for name, labels in got if name == "tickguard_orders_total"} == \
        {(("outcome", o), ("role", r)) for r in (*ORDER_ROLES, "other") for o in (*ORDER_OUTCOMES, "other")}
    assert {dict(labels)["reason"] for name, labels in got if name == "tickguard_exits_total"} == \
        {*EXIT_REASONS, "OTHER"}
    assert value(metrics, "tickguard_stream_connected", stream="ticks") == 0
    assert value(metrics, "tickguard_stream_connected", stream="orders") == 0
    assert math.isnan(value(metrics, "tickguard_stream_lag_seconds"))
    for gauge in ("tickguard_tick_rate", "tickguard_open_trades", "tickguard_unprotected_trades", "tickguard_halted",
                  "tickguard_ticks_total"):
        assert value(metrics, gauge) == 0
    assert all(v == 0 for (name, _), v in got.items() if name.endswith("_total"))


def test_counts_land_on_their_labels():
    metrics = Metrics()
    for outcome in ("accepted", "accepted", "duplicate", "UNAUTHORIZED"):
        metrics.count_alert(outcome)
    metrics.count_order("entry", "sent")
    metrics.count_order("exit", "filled")
    metrics.count_order("exit", "filled")
    metrics.count_exit(ExitReason.TRAIL, 0.0004)
    metrics.count_exit("stop")
    assert value(metrics, "tickguard_alerts_total", outcome="accepted") == 2
    assert value(metrics, "tickguard_alerts_total", outcome="duplicate") == 1
    assert value(metrics, "tickguard_alerts_total", outcome="unauthorized") == 1
    assert value(metrics, "tickguard_orders_total", role="entry", outcome="sent") == 1
    assert value(metrics, "tickguard_orders_total", role="exit", outcome="filled") == 2
    assert value(metrics, "tickguard_exits_total", reason="TRAIL") == 1
    assert value(metrics, "tickguard_exits_total", reason="STOP") == 1


def test_unknown_label_values_never_become_series():
    metrics = Metrics()
    before = set(samples(metrics))
    metrics.count_alert("token=tv-secret-value")
    metrics.count_order("hedge", "partially filled: broker said so")
    metrics.count_exit("trailing stop hit at 801.5")
    metrics.set_stream("candles", True)
    got = samples(metrics)
    assert set(got) - before == {("tickguard_stream_connected", frozenset({("stream", "other")}))}
    assert value(metrics, "tickguard_alerts_total", outcome="other") == 1
    assert value(metrics, "tickguard_orders_total", role="other", outcome="other") == 1
    assert value(metrics, "tickguard_exits_total", reason="OTHER") == 1
    assert b"secret" not in metrics.render()[0] and b"801.5" not in metrics.render()[0]  # process gauges may hold any digits


def test_tick_to_exit_histogram_buckets():
    metrics = Metrics()
    for seconds in (0.00005, 0.0003, 0.0003, 0.004, 0.2, 7.0):
        metrics.count_exit("STOP", seconds)
    buckets = {dict(labels)["le"]: v for (name, labels), v in samples(metrics).items()
               if name == "tickguard_tick_to_exit_seconds_bucket"}
    assert [float(le) for le in buckets] == [*TICK_TO_EXIT_BUCKETS, math.inf]
    assert buckets["0.0001"] == 1 and buckets["0.0005"] == 3 and buckets["0.005"] == 4
    assert buckets["0.25"] == 5 and buckets["5.0"] == 5 and buckets["+Inf"] == 6
    assert value(metrics, "tickguard_tick_to_exit_seconds_count") == 6
    assert value(metrics, "tickguard_tick_to_exit_seconds_sum") == pytest.approx(7.20465)


def test_ticks_rate_and_lag_from_a_once_a_second_sampler():
    metrics = Metrics(rate_window_s=5)
    metrics.count_ticks(500, 999_000, 1_000_000)
    assert value(metrics, "tickguard_tick_rate") == 0  # one sample is no interval yet
    assert value(metrics, "tickguard_stream_lag_seconds") == 1.0
    for second in range(1, 11):
        metrics.count_ticks(1_000 * second, 1_000_000 + second * 1_000 - 20, 1_000_000 + second * 1_000)
    assert value(metrics, "tickguard_ticks_total") == 500 + sum(1_000 * s for s in range(1, 11))
    # The last five intervals carried 6000..10000 ticks.
    assert value(metrics, "tickguard_tick_rate") == pytest.approx(sum(range(6_000, 11_000, 1_000)) / 5)
    assert value(metrics, "tickguard_stream_lag_seconds") == pytest.approx(0.02)


def test_a_stalled_stream_shows_a_growing_lag_and_a_falling_rate():
    metrics = Metrics(rate_window_s=5)
    for second in range(6):
        metrics.count_ticks(100, 10_000 + second * 1_000, 10_000 + second * 1_000)
    assert value(metrics, "tickguard_tick_rate") == pytest.approx(100)
    for second in range(6, 12):  # nothing arrives; the sampler passes the last tick's stamp again
        metrics.count_ticks(0, 15_000, 10_000 + second * 1_000)
    assert value(metrics, "tickguard_tick_rate") == 0
    assert value(metrics, "tickguard_stream_lag_seconds") == pytest.approx(6.0)


def test_a_sampler_that_falls_behind_is_measured_over_its_real_interval():
    metrics = Metrics(rate_window_s=5)
    metrics.count_ticks(0, None, 0)
    metrics.count_ticks(3_000, None, 30_000)  # the loop was blocked for 30 s
    assert value(metrics, "tickguard_tick_rate") == pytest.approx(100)
    assert math.isnan(value(metrics, "tickguard_stream_lag_seconds"))
    metrics.count_ticks(50, None, 30_000)  # same millisecond: no interval, ticks kept for the next one
    metrics.count_ticks(50, None, 31_000)
    assert value(metrics, "tickguard_tick_rate") == pytest.approx(100)
    assert value(metrics, "tickguard_ticks_total") == 3_100


def test_state_gauges():
    metrics = Metrics()
    metrics.set_stream("ticks", True)
    metrics.set_trades(open_trades=4, unprotected=1)
    metrics.set_halted(True)
    assert value(metrics, "tickguard_stream_connected", stream="ticks") == 1
    assert value(metrics, "tickguard_stream_connected", stream="orders") == 0
    assert value(metrics, "tickguard_open_trades") == 4 and value(metrics, "tickguard_unprotected_trades") == 1
    assert value(metrics, "tickguard_halted") == 1
    metrics.set_halted(False)
    metrics.set_stream("ticks", False)
    assert value(metrics, "tickguard_halted") == 0
    assert value(metrics, "tickguard_stream_connected", stream="ticks") == 0


def test_plugins_are_listed_and_only_their_own_names_become_series():
    metrics = Metrics()

    def plugin(metric: str, **labels: str) -> float:  # `name` is a label here
        return samples(metrics)[metric, frozenset(labels.items())]

    assert not [name for name, _ in samples(metrics) if name.startswith("tickguard_plugin")]
    metrics.set_plugins([("spike", "tick", "streams.examples.spike_filter:spike_filter"),
                         ("late", "signal", "desk.exits:late")])
    assert plugin("tickguard_plugin_info", name="spike", stage="tick",
                  factory="streams.examples.spike_filter:spike_filter") == 1
    assert plugin("tickguard_plugin_unplugged", name="late") == 0
    assert plugin("tickguard_plugin_withheld_total", name="spike") == 0
    metrics.count_plugin_withheld("spike")
    metrics.plugin_unplugged("late")
    metrics.count_plugin_withheld("not a plug-in")
    metrics.plugin_unplugged("nor this")
    assert plugin("tickguard_plugin_withheld_total", name="spike") == 1
    assert plugin("tickguard_plugin_unplugged", name="late") == 1
    names = {dict(labels)["name"] for name, labels in samples(metrics) if name.startswith("tickguard_plugin")}
    assert names == {"spike", "late"}


def test_two_instances_count_separately_and_leave_the_global_registry_alone():
    first, second = Metrics(), Metrics()
    first.count_alert("accepted")
    first.count_ticks(10, None, 1)
    assert value(first, "tickguard_alerts_total", outcome="accepted") == 1
    assert value(second, "tickguard_alerts_total", outcome="accepted") == 0
    assert value(second, "tickguard_ticks_total") == 0
    assert REGISTRY.get_sample_value("tickguard_alerts_total", {"outcome": "accepted"}) is None


def test_exported_names():
    assert all(hasattr(service.metrics, name) for name in service.metrics.__all__)


def test_the_sockets_health_is_exported_and_a_drop_is_logged(service_factory, caplog):
    service = service_factory()
    service.price(800)
    reply = service.alert(price=800, quantity=1, stoploss={"type": "points", "value": 10})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["stop"] is not None, what="armed: the tick stream subscribed")

    def gauges() -> str:
        with service.client() as client:
            return client.get("/metrics").text

    wait_for(lambda: 'tickguard_stream_connected{stream="ticks"} 1.0' in gauges()
             and 'tickguard_stream_connected{stream="orders"} 1.0' in gauges(), "both sockets reported up", 15)
    with caplog.at_level("WARNING", logger="tickguard.health"):
        service.paper.control("POST", "/feed/drop", json={"socket": "market", "how": "abort"})
        wait_for(lambda: any("ticks stream disconnected" in r.getMessage() for r in caplog.records), "the drop logged", 15)
    wait_for(lambda: 'tickguard_stream_connected{stream="ticks"} 1.0' in gauges(), "the reconnection exported", 15)


def test_older_ticks_are_counted_as_the_sampler_hands_them_over():
    metrics = Metrics()
    assert value(metrics, "tickguard_ticks_older_total") == 0
    metrics.count_older_ticks(3)
    metrics.count_older_ticks(0)
    metrics.count_older_ticks(2)
    assert value(metrics, "tickguard_ticks_older_total") == 5
