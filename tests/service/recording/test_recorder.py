"""The recorder: never blocks the tick path (a full queue drops and counts), files ticks by IST hour,
compacts finished days, goes on from the highest seq after a restart, and survives a file cut short."""
from __future__ import annotations

import datetime as dt
import logging
import threading

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from service.metrics import Metrics
from service.recording import (
    SCHEMA, RecordedTick, Recorder, day_file, days, hour_file, hour_files, read_ticks, tick_table,
)
from service.recording.recorder import tick_batch
from streams import Tick
from tests.support.waiting import wait_for

HOUR_NS = 3_600 * 10**9
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
BEFORE_TEN = int(dt.datetime(2026, 12, 4, 9, 59, 59, tzinfo=IST).timestamp()) * 10**9
DAY = "2026-12-04"


class Clock:
    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


def tick(i: int, token: str = "3045") -> Tick:
    return Tick(token, "NSE", 80_000 + i, 1_796_356_000_000 + i, bid=80_000 + i - 5 if i % 3 else None, volume=i)


def hold_writer(recorder: Recorder) -> tuple[threading.Event, threading.Event]:
    """The writer stops in its next write until `gate` is set; `entered` says it got there."""
    entered, gate = threading.Event(), threading.Event()
    write = recorder._write

    def held(entries):
        entered.set()
        gate.wait(30)
        write(entries)

    recorder._write = held
    return entered, gate


@pytest.fixture
def recorders():
    started: list[Recorder] = []

    def start(root, clock, **options) -> Recorder:
        recorder = Recorder(root, clock_ns=clock, **options)
        recorder.start()
        started.append(recorder)
        return recorder

    yield start
    for recorder in started:
        recorder.stop()


def test_a_full_queue_drops_and_counts_without_waiting_for_the_writer(tmp_path, recorders, caplog):
    recorder = recorders(tmp_path, Clock(BEFORE_TEN), queue_limit=1_000)
    entered, gate = hold_writer(recorder)
    recorder.offer(tick(0))
    assert entered.wait(10), "the writer took the first tick"
    for i in range(1, 1_006):  # the writer is held: 1 000 wait, 5 are dropped, and offer returns every time
        recorder.offer(tick(i))
    counts = recorder.counts()
    assert (counts.queued, counts.dropped, counts.recorded) == (1_000, 5, 0)
    with caplog.at_level(logging.WARNING, logger="tickguard.recording"):
        gate.set()
        recorder.stop()
    counts = recorder.counts()
    assert (counts.queued, counts.dropped, counts.recorded) == (0, 5, 1_001)
    got = list(read_ticks(tmp_path))
    assert [r.seq for r in got] == list(range(1, 1_002))  # the dropped ticks' seqs (1 002-1 006) are a gap
    assert [r.tick for r in got] == [tick(i) for i in range(1_001)]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "dropped" in r.getMessage()]
    assert len(warned) == 1 and warned[0].dropped == 5


def test_ticks_are_filed_by_ist_hour_and_a_finished_day_becomes_parquet(tmp_path, recorders):
    clock = Clock(BEFORE_TEN)
    recorder = recorders(tmp_path, clock)
    for i in range(3):
        recorder.offer(tick(i))
    clock.ns += 10**9  # 10:00:00.000 IST: the next hour's file
    for i in range(3, 5):
        recorder.offer(tick(i))
    wait_for(lambda: recorder.counts().recorded == 5, "five ticks written")
    assert [p.name for p in hour_files(tmp_path, DAY)] == ["ticks-09.arrows", "ticks-10.arrows"]
    clock.ns += 14 * HOUR_NS  # 2026-12-05 00:00 IST: the day is over
    recorder.offer(tick(5, token="2885"))
    wait_for(lambda: day_file(tmp_path, DAY).exists() and not (tmp_path / DAY).exists(), "the day compacted")
    assert [p.name for p in hour_files(tmp_path, "2026-12-05")] == ["ticks-00.arrows"]
    recorder.stop()
    got = list(read_ticks(tmp_path))
    assert [r.seq for r in got] == [1, 2, 3, 4, 5, 6]
    assert [r.tick for r in got] == [tick(i) for i in range(5)] + [tick(5, token="2885")]
    assert [r.arrival_ns for r in got][2:4] == [BEFORE_TEN, BEFORE_TEN + 10**9]
    assert days(tmp_path) == [DAY, "2026-12-05"]
    counts = recorder.counts()
    assert (counts.recorded, counts.hour_files, counts.day_files, counts.dropped) == (6, 3, 1, 0)


def test_a_restart_goes_on_from_the_highest_seq_in_a_new_part_and_compacts_earlier_days(tmp_path, recorders):
    clock = Clock(BEFORE_TEN - 60 * 10**9)
    first = recorders(tmp_path, clock)
    for i in range(3):
        first.offer(tick(i))
    first.stop()
    second = recorders(tmp_path, clock)  # the same hour: a stream cannot be appended to
    second.offer(tick(3))
    second.stop()
    assert [p.name for p in hour_files(tmp_path, DAY)] == ["ticks-09.arrows", "ticks-09-1.arrows"]
    clock.ns += 2 * 24 * HOUR_NS
    third = recorders(tmp_path, clock)  # two days on: the day left in hour files is compacted at start
    third.offer(tick(4))
    third.stop()
    assert day_file(tmp_path, DAY).exists() and not (tmp_path / DAY).exists()
    assert third.counts().day_files == 1
    fourth = recorders(tmp_path, clock)  # its seq from the Parquet day's statistics and today's hour file
    fourth.offer(tick(5))
    fourth.stop()
    got = list(read_ticks(tmp_path))
    assert [r.seq for r in got] == [1, 2, 3, 4, 5, 6]
    assert [r.tick for r in got] == [tick(i) for i in range(6)]


def test_an_hour_file_cut_by_a_crash_reads_back_and_recording_goes_on_after_it(tmp_path, recorders):
    clock = Clock(BEFORE_TEN - 60 * 10**9)
    recorder = recorders(tmp_path, clock)
    path = hour_file(tmp_path, DAY, 9)
    for i in range(5):
        recorder.offer(tick(i))
    wait_for(lambda: recorder.counts().recorded == 5, "the first batch written")
    first_batch_ends = path.stat().st_size
    for i in range(5, 10):
        recorder.offer(tick(i))
    wait_for(lambda: recorder.counts().recorded == 10, "the second batch written")
    assert [r.seq for r in read_ticks(tmp_path)] == list(range(1, 11))  # readable while still being written
    recorder.stop()
    data = path.read_bytes()
    path.write_bytes(data[:(first_batch_ends + len(data)) // 2])  # as a crash in the second batch leaves it
    assert [r.seq for r in read_ticks(tmp_path)] == [1, 2, 3, 4, 5]
    again = recorders(tmp_path, clock)
    again.offer(tick(10))
    again.stop()
    clock.ns += 24 * HOUR_NS
    recorders(tmp_path, clock).stop()  # the next day: the cut file is compacted with the rest
    assert not (tmp_path / DAY).exists()
    got = list(read_ticks(tmp_path))
    assert [r.seq for r in got] == [1, 2, 3, 4, 5, 6] and got[-1].tick == tick(10)


def test_a_batch_that_cannot_be_written_is_counted_and_recording_goes_on(tmp_path, recorders, caplog):
    clock = Clock(BEFORE_TEN)
    (tmp_path / DAY).write_text("a file where the day's folder should be")
    recorder = recorders(tmp_path, clock)
    with caplog.at_level(logging.ERROR, logger="tickguard.recording"):
        recorder.offer(tick(0))
        wait_for(lambda: any("could not be written" in r.getMessage() for r in caplog.records), "the error logged")
    assert recorder.counts().dropped == 1
    clock.ns += 24 * HOUR_NS
    recorder.offer(tick(1))
    recorder.stop()
    assert [(r.seq, r.tick) for r in read_ticks(tmp_path)] == [(2, tick(1))]
    assert recorder.counts().dropped == 1


def test_the_counts_are_metrics_read_when_scraped(tmp_path, recorders):
    recorder = recorders(tmp_path, Clock(BEFORE_TEN), queue_limit=1_000)
    metrics = Metrics()
    metrics.watch_recording(recorder.counts)
    entered, gate = hold_writer(recorder)
    recorder.offer(tick(0))
    assert entered.wait(10), "the writer took the first tick"
    for i in range(1, 1_003):
        recorder.offer(tick(i))
    assert "tickguard_recording_queue 1000.0" in metrics.render()[0].decode()
    gate.set()
    recorder.stop()
    text = metrics.render()[0].decode()
    assert "tickguard_recorded_ticks_total 1001.0" in text
    assert "tickguard_recording_dropped_ticks_total 2.0" in text
    assert 'tickguard_recording_files_total{kind="hour"} 1.0' in text
    assert "tickguard_recording_queue 0.0" in text


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 30 * HOUR_NS), st.integers(0, 20), st.booleans()), min_size=1, max_size=8))
def test_whatever_the_hours_and_restarts_the_ticks_read_back_in_the_order_offered(tmp_path_factory, steps):
    """Each step: the clock moves on, some ticks are offered, and the recorder may be started again."""
    root = tmp_path_factory.mktemp("rec")
    clock = Clock(BEFORE_TEN)
    offered: list[Tick] = []
    recorder = Recorder(root, clock_ns=clock, interval_s=0.01)
    recorder.start()
    for advance, count, restart in steps:
        clock.ns += advance
        if restart:
            recorder.stop()
            recorder = Recorder(root, clock_ns=clock, interval_s=0.01)
            recorder.start()
        for _ in range(count):
            offered.append(tick(len(offered)))
            recorder.offer(offered[-1])
    recorder.stop()
    got = list(read_ticks(root))
    assert [r.tick for r in got] == offered
    assert [r.seq for r in got] == list(range(1, len(offered) + 1))
    today = days(root)[-1] if got else None
    assert all(not hour_files(root, day) for day in days(root) if day != today)  # finished days compacted


def test_a_batch_across_midnight_whose_second_day_cannot_be_written_loses_only_that_part(tmp_path, recorders):
    clock = Clock(BEFORE_TEN + 14 * HOUR_NS)  # 23:59:59 IST
    (tmp_path / "2026-12-05").write_text("a file where the next day's folder should be")
    recorder = recorders(tmp_path, clock, interval_s=60)  # one batch: both ticks are drained by stop()
    recorder.offer(tick(0))
    clock.ns += 10**9
    recorder.offer(tick(1))
    recorder.stop()
    counts = recorder.counts()
    assert (counts.recorded, counts.dropped) == (1, 1)
    assert [(r.seq, r.tick) for r in read_ticks(tmp_path)] == [(1, tick(0))]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 20 * 60 * 10**9), st.booleans()), min_size=1, max_size=8),
       st.integers(1, 5))
def test_what_was_offered_and_not_dropped_reads_back_in_order_across_batches_and_hours(tmp_path_factory, steps,
                                                                                        batch_rows):
    """Each step offers some ticks, the clock moving on by a gap before each (batches cross hours and
    days); in a held step the writer cannot write, so its queue of six fills and ticks are dropped."""
    root = tmp_path_factory.mktemp("rec")
    clock = Clock(BEFORE_TEN)
    recorder = Recorder(root, clock_ns=clock, queue_limit=6, batch_rows=batch_rows, interval_s=0.005)
    gate, write = threading.Event(), recorder._write
    gate.set()

    def gated(entries):
        assert gate.wait(30)
        write(entries)

    recorder._write = gated
    recorder.start()
    offered: list[tuple[int, Tick]] = []  # (arrival_ns, tick): the tick offered with seq n is offered[n - 1]
    for count, gap, held in steps:
        if held:
            gate.clear()
        for _ in range(count):
            clock.ns += gap
            offered.append((clock.ns, tick(len(offered), token=("3045", "2885", "1594")[len(offered) % 3])))
            recorder.offer(offered[-1][1])
        gate.set()
    recorder.stop()
    got = list(read_ticks(root))
    seqs = [r.seq for r in got]
    assert seqs == sorted(set(seqs)) and all(1 <= seq <= len(offered) for seq in seqs)
    assert [(r.arrival_ns, r.tick) for r in got] == [offered[seq - 1] for seq in seqs]
    counts = recorder.counts()
    assert (counts.recorded, counts.dropped, counts.queued) == (len(got), len(offered) - len(got), 0)
    if len(offered) <= 6:  # never more than the queue holds: nothing could be dropped
        assert seqs == list(range(1, len(offered) + 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["NSE", "NFO"]), st.sampled_from(["3045", "2885", "35000"]),
                          st.integers(0, 10**12), st.integers(0, 2**62), st.one_of(st.none(), st.integers(0, 10**9)),
                          st.one_of(st.none(), st.integers(0, 10**9)), st.one_of(st.none(), st.integers(0, 10**12))),
                min_size=1, max_size=40),
       st.booleans())
def test_a_batch_holds_what_the_reference_table_holds(rows, one_exchange):
    """`tick_batch` (the writer's fast conversion) against `tick_table`, the plain one: every column,
    whether a column has no value, some or all, one exchange or several."""
    ticks = [Tick(token, "NSE" if one_exchange else exchange, ltp, ts, bid=bid, ask=ask, volume=volume)
             for exchange, token, ltp, ts, bid, ask, volume in rows]
    recorded = [RecordedTick(n + 1, BEFORE_TEN + n, t) for n, t in enumerate(ticks)]
    flat = [item for r in recorded for item in (r.seq, r.arrival_ns, r.tick)]
    batch = tick_batch(flat)
    expected = tick_table(recorded)
    assert batch.schema.equals(SCHEMA) and batch.num_rows == len(rows)
    assert pa.Table.from_batches([batch]).to_pylist() == expected.to_pylist()
