"""Prometheus metrics for one tickguard app, on its own `CollectorRegistry`.

A registry per `Metrics` instance, never the process-global one, so two apps (or two tests) in one
process each count their own trades. Every label value comes from a closed set below; anything else is
counted under ``other`` (``OTHER`` for exit reasons), so neither free text nor a secret can become a
time series and the number of series stays fixed.

The tick path does not touch this module. It bumps a plain int (`Guard.ticks_seen`); a sampler task
calls `Metrics.count_ticks` about once a second with the difference — a Prometheus counter takes a
lock per `inc`, which tens of thousands of ticks a second should not pay.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = [
    "ALERT_OUTCOMES",
    "EXIT_REASONS",
    "ORDER_OUTCOMES",
    "ORDER_ROLES",
    "STREAMS",
    "TICK_TO_EXIT_BUCKETS",
    "Metrics",
]

ALERT_OUTCOMES = ("accepted", "refused", "duplicate", "invalid", "unauthorized")
ORDER_ROLES = ("entry", "exit")
ORDER_OUTCOMES = ("sent", "filled", "rejected", "failed", "expired", "in_doubt")
EXIT_REASONS = ("STOP", "TRAIL", "TARGET", "SQUARE_OFF", "RISK", "MANUAL", "SIGNAL", "CUSTOM")
STREAMS = ("ticks", "orders")
# From a tenth of a millisecond (the engine deciding on a tick) to seconds (a broker round trip).
TICK_TO_EXIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                        1.0, 2.5, 5.0)
_OTHER = "other"
_OTHER_REASON = "OTHER"


def _bounded(value: object, allowed: tuple[str, ...], other: str) -> str:
    # str() of a StrEnum is its value, so engine enums pass straight through.
    text = str(value).lower() if other == _OTHER else str(value).upper()
    return text if text in allowed else other


class Metrics:
    """The service's metrics; `render` serves them.

    The metric objects are public for the rare caller that needs one directly; the methods below are
    the intended way in, because they bound the label values.
    """

    def __init__(self, *, rate_window_s: float = 5.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._rate_window_ms = rate_window_s * 1000
        self._samples: deque[tuple[int, int]] = deque()  # (now_ms, ticks in the interval ending then)
        r = self.registry
        self.alerts_total = Counter("tickguard_alerts", "Alerts received, by outcome.", ["outcome"], registry=r)
        self.orders_total = Counter("tickguard_orders", "Order events, by role and outcome.", ["role", "outcome"],
                                    registry=r)
        self.exits_total = Counter("tickguard_exits", "Exits fired, by reason.", ["reason"], registry=r)
        self.ticks_total = Counter("tickguard_ticks", "Ticks received from the market-data stream.", registry=r)
        self.older_ticks_total = Counter(
            "tickguard_ticks_older",
            "Ticks older (exchange time stamp) than an earlier tick of their instrument: delivered out of order.",
            registry=r)
        self.tick_rate = Gauge("tickguard_tick_rate", "Ticks per second over the last few seconds.", registry=r)
        self.stream_lag_seconds = Gauge(
            "tickguard_stream_lag_seconds",
            "Local time minus the exchange time stamp of the last tick (NaN before the first tick; "
            "negative means the local clock is behind the exchange).", registry=r)
        self.stream_connected = Gauge("tickguard_stream_connected", "1 while the broker stream is connected.",
                                      ["stream"], registry=r)
        self.tick_to_exit_seconds = Histogram(
            "tickguard_tick_to_exit_seconds", "From the tick that crossed a level to the exit order sent.",
            buckets=TICK_TO_EXIT_BUCKETS, registry=r)
        self.unprotected_trades = Gauge("tickguard_unprotected_trades",
                                        "Open trades with no armed stop (the guard cannot exit them).", registry=r)
        self.open_trades = Gauge("tickguard_open_trades", "Open trades.", registry=r)
        self.unprotected_at_broker = Gauge(  # read when scraped: Runtime sets its function
            "tickguard_unprotected_at_broker",
            "Armed trades with no broker-side backup stop working (BROKER_STOP off, refused, or between exits).",
            registry=r)
        self.halted = Gauge("tickguard_halted", "1 while new entries are halted.", registry=r)
        # Plug-ins (PLUGINS): their names are fixed at start, so they are the closed set of label values.
        self.plugin_info = Gauge("tickguard_plugin_info", "The operator plug-ins loaded at start (always 1).",
                                 ["name", "stage", "factory"], registry=r)
        self.plugin_unplugged_gauge = Gauge(
            "tickguard_plugin_unplugged", "1 once the engine unplugged the plug-in (it failed; not retried).",
            ["name"], registry=r)
        self.plugin_withheld_total = Counter(
            "tickguard_plugin_withheld", "Crossing ticks a tick stage held back that the rules then ran on.",
            ["name"], registry=r)
        self._plugins: frozenset[str] = frozenset()
        # Every series exists from the start at zero, so rate() and absence alerts work from the first scrape.
        for outcome in (*ALERT_OUTCOMES, _OTHER):
            self.alerts_total.labels(outcome)
        for role in (*ORDER_ROLES, _OTHER):
            for outcome in (*ORDER_OUTCOMES, _OTHER):
                self.orders_total.labels(role, outcome)
        for reason in (*EXIT_REASONS, _OTHER_REASON):
            self.exits_total.labels(reason)
        for stream in STREAMS:
            self.stream_connected.labels(stream)
        self.stream_lag_seconds.set(float("nan"))

    def count_alert(self, outcome: str) -> None:
        self.alerts_total.labels(_bounded(outcome, ALERT_OUTCOMES, _OTHER)).inc()

    def count_order(self, role: str, outcome: str) -> None:
        self.orders_total.labels(_bounded(role, ORDER_ROLES, _OTHER),
                                 _bounded(outcome, ORDER_OUTCOMES, _OTHER)).inc()

    def count_exit(self, reason: str, tick_to_exit_s: float | None = None) -> None:
        """One exit fired. `tick_to_exit_s` is absent for exits no tick caused (square-off, manual)."""
        self.exits_total.labels(_bounded(reason, EXIT_REASONS, _OTHER_REASON)).inc()
        if tick_to_exit_s is not None:
            self.tick_to_exit_seconds.observe(max(tick_to_exit_s, 0.0))

    def count_older_ticks(self, n: int) -> None:
        if n > 0:
            self.older_ticks_total.inc(n)

    def count_ticks(self, n: int, last_exchange_ts_ms: int | None, now_ms: int) -> None:
        """Feed one sample: `n` ticks arrived since the previous call; call about once a second.

        `last_exchange_ts_ms` is the exchange time stamp of the latest tick seen so far (None before the
        first), passed again when no tick came, so the lag keeps growing while the stream is stalled.
        The rate covers the samples of the last `rate_window_s` (at least the last two samples): the
        ticks counted after the oldest kept sample over the time since it. A sampler like::

            seen = guard.ticks_seen
            metrics.count_ticks(seen - counted, last_tick_ts_ms, now_ms())
            counted = seen
        """
        if n > 0:
            self.ticks_total.inc(n)
        if last_exchange_ts_ms is not None:
            self.stream_lag_seconds.set((now_ms - last_exchange_ts_ms) / 1000)
        samples = self._samples
        if samples and now_ms <= samples[-1][0]:
            # A clock that did not advance gives no interval; fold the ticks into the latest sample.
            samples[-1] = (samples[-1][0], samples[-1][1] + max(n, 0))
            return
        samples.append((now_ms, max(n, 0)))
        while len(samples) > 2 and now_ms - samples[1][0] >= self._rate_window_ms:
            samples.popleft()
        if len(samples) >= 2:
            span_s = (now_ms - samples[0][0]) / 1000
            self.tick_rate.set(sum(count for _, count in list(samples)[1:]) / span_s)

    def set_stream(self, stream: str, connected: bool) -> None:
        self.stream_connected.labels(_bounded(stream, STREAMS, _OTHER)).set(1 if connected else 0)

    def set_trades(self, open_trades: int, unprotected: int) -> None:
        self.open_trades.set(open_trades)
        self.unprotected_trades.set(unprotected)

    def set_halted(self, halted: bool) -> None:
        self.halted.set(1 if halted else 0)

    def set_plugins(self, plugins: list[tuple[str, str, str]]) -> None:
        """The loaded plug-ins as (name, stage, factory); call once, at start."""
        self._plugins = frozenset(name for name, _, _ in plugins)
        for name, stage, factory in plugins:
            self.plugin_info.labels(name, stage, factory).set(1)
            self.plugin_unplugged_gauge.labels(name).set(0)
            self.plugin_withheld_total.labels(name)

    def plugin_unplugged(self, name: str) -> None:
        if name in self._plugins:
            self.plugin_unplugged_gauge.labels(name).set(1)

    def count_plugin_withheld(self, name: str) -> None:
        if name in self._plugins:
            self.plugin_withheld_total.labels(name).inc()

    def watch_recording(self, counts: Callable[[], Any]) -> None:
        """The tick recorder's counts (RECORD_TICKS), read when scraped: `counts()` returns an object with
        `recorded`, `dropped`, `queued`, `hour_files` and `day_files` (service.recording.RecorderCounts)."""
        self.registry.register(_RecordingCollector(counts))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for a `/metrics` response."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _RecordingCollector(Collector):
    """The recorder keeps plain ints (its tick path takes no lock); they become metrics at scrape time."""

    def __init__(self, counts: Callable[[], Any]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        yield CounterMetricFamily("tickguard_recorded_ticks", "Ticks written to the recording (RECORD_TICKS).",
                                  value=counts.recorded)
        yield CounterMetricFamily("tickguard_recording_dropped_ticks",
                                  "Ticks not recorded: the recorder's queue was full, or a write failed.",
                                  value=counts.dropped)
        files = CounterMetricFamily("tickguard_recording_files",
                                    "Recording files written: hour (Arrow streams begun), day (Parquet).",
                                    labels=["kind"])
        files.add_metric(["hour"], counts.hour_files)
        files.add_metric(["day"], counts.day_files)
        yield files
        yield GaugeMetricFamily("tickguard_recording_queue", "Ticks waiting for the recorder's writer.",
                                value=counts.queued)
