from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc
from hypothesis import given, settings, strategies as st

from service.recording import (
    SCHEMA, RecordedTick, day_of, days, hour_file, read_day, read_ticks, tick_table, write_day,
)
from streams import Tick

BASE_NS = 1_796_000_000_000_000_000  # 2026-11-29 IST, a time stamp in the recording's range


def _tick(seq: int, ltp: int = 80_000, token: str = "3045") -> RecordedTick:
    return RecordedTick(seq, BASE_NS + seq * 1_000_000, Tick(token, "NSE", ltp, BASE_NS // 1_000_000 + seq,
                                                             bid=ltp - 5, ask=None, volume=seq))


def _write_hour(root, day, hour, rows, *, cut_bytes: int = 0):
    path = hour_file(root, day, hour)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, ipc.new_stream(sink, SCHEMA) as writer:
        for row in rows:
            writer.write_table(tick_table([row]))
    if cut_bytes:
        data = path.read_bytes()
        path.write_bytes(data[:-cut_bytes])
    return path


def test_day_of_files_by_ist_hour():
    # 2026-12-04 03:45 UTC is 09:15 IST
    ns = 1_796_356_000 * 10**9 + 15 * 60 * 10**9 - 30 * 60 * 10**9  # 03:30 UTC + 15 min → 09:15 IST
    day, hour = day_of(ns)
    assert (day, hour) == ("2026-12-04", 9)


def test_a_day_reads_back_in_receipt_order_from_parquet_and_hours(tmp_path):
    rows = [_tick(i, 80_000 + i) for i in range(10)]
    write_day(tmp_path, "2026-11-29", rows[:6])
    _write_hour(tmp_path, "2026-11-29", 10, rows[4:])  # overlap: seq 4 and 5 in both, kept once
    got = list(read_ticks(tmp_path))
    assert [r.seq for r in got] == list(range(10))
    assert [r.tick for r in got] == [r.tick for r in rows]
    assert got[3].tick.ask is None and got[3].tick.bid == rows[3].tick.ltp - 5
    assert days(tmp_path) == ["2026-11-29"]


def test_an_hour_file_cut_short_reads_up_to_its_last_whole_batch(tmp_path):
    rows = [_tick(i) for i in range(5)]
    _write_hour(tmp_path, "2026-11-29", 9, rows, cut_bytes=20)
    got = [r.seq for r in read_ticks(tmp_path)]
    assert got and got == list(range(len(got))) and len(got) < 5


def test_an_empty_or_missing_recording_reads_nothing(tmp_path):
    assert list(read_ticks(tmp_path / "nowhere")) == []
    assert read_day(tmp_path, "2026-01-01").num_rows == 0


def test_exchange_time_window(tmp_path):
    rows = [_tick(i) for i in range(10)]
    write_day(tmp_path, "2026-11-29", rows)
    start = rows[3].tick.exchange_ts_ms
    got = [r.seq for r in read_ticks(tmp_path, start_ms=start, end_ms=start + 4)]
    assert got == [3, 4, 5, 6]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["3045", "2885", "99926000"]), st.integers(1, 10**9),
                          st.one_of(st.none(), st.integers(0, 10**12))), max_size=50),
       st.integers(0, 50))
def test_what_is_written_is_read(tmp_path_factory, ticks, split):
    root = tmp_path_factory.mktemp("rec")
    rows = [RecordedTick(i, BASE_NS + i, Tick(token, "NSE", ltp, 1_796_000_000_000 + i, volume=volume))
            for i, (token, ltp, volume) in enumerate(ticks)]
    write_day(root, "2026-11-29", rows[:split])
    if rows[split:]:
        _write_hour(root, "2026-11-29", 11, rows[split:])
    assert list(read_ticks(root)) == rows
