from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from hypothesis import given, settings, strategies as st

from service.recording import (
    SCHEMA, RecordedTick, compact_day, day_file, day_of, days, hour_file, hour_files, last_seq, read_day, read_ticks,
    tick_table, write_day,
)
from streams import Tick

BASE_NS = 1_796_000_000_000_000_000  # 2026-11-29 IST, a time stamp in the recording's range


def _tick(seq: int, ltp: int = 80_000, token: str = "3045") -> RecordedTick:
    return RecordedTick(seq, BASE_NS + seq * 1_000_000, Tick(token, "NSE", ltp, BASE_NS // 1_000_000 + seq,
                                                             bid=ltp - 5, ask=None, volume=seq))


def _write_hour(root, day, hour, rows, *, cut_bytes: int = 0, part: int = 0):
    path = hour_file(root, day, hour, part)
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


def test_an_hour_started_again_is_its_next_part_and_parts_read_in_the_order_written(tmp_path):
    assert hour_file(tmp_path, "2026-11-29", 9).name == "ticks-09.arrows"
    assert hour_file(tmp_path, "2026-11-29", 9, 2).name == "ticks-09-2.arrows"
    rows = [_tick(i) for i in range(14)]
    for part in (0, 1, 2, 10):  # 10 sorts after 2: by number, not by name
        _write_hour(tmp_path, "2026-11-29", 9, rows[part:part + 1], part=part)
    _write_hour(tmp_path, "2026-11-29", 10, rows[11:])
    (tmp_path / "2026-11-29" / "notes.txt").write_text("not an hour")
    names = [p.name for p in hour_files(tmp_path, "2026-11-29")]
    assert names == ["ticks-09.arrows", "ticks-09-1.arrows", "ticks-09-2.arrows", "ticks-09-10.arrows",
                     "ticks-10.arrows"]
    assert [r.seq for r in read_ticks(tmp_path)] == [0, 1, 2, 10, 11, 12, 13]


def test_a_day_compacts_to_parquet_hour_by_hour_and_its_hour_files_go(tmp_path):
    rows = [_tick(i, 80_000 + i, token=("3045", "2885")[i % 2]) for i in range(30)]
    _write_hour(tmp_path, "2026-11-29", 9, rows[:10])
    _write_hour(tmp_path, "2026-11-29", 10, rows[10:25])
    _write_hour(tmp_path, "2026-11-29", 10, rows[25:], part=1)
    path = compact_day(tmp_path, "2026-11-29")
    assert path == day_file(tmp_path, "2026-11-29") and path.exists()
    assert not (tmp_path / "2026-11-29").exists()
    assert pq.read_metadata(path).num_row_groups == 3  # one per hour file: never the whole day in memory
    assert list(read_ticks(tmp_path)) == rows
    assert compact_day(tmp_path, "2026-11-29") is None  # nothing left to compact


def test_compaction_keeps_a_cut_hour_file_up_to_its_last_whole_batch(tmp_path):
    rows = [_tick(i) for i in range(8)]
    _write_hour(tmp_path, "2026-11-29", 9, rows[:3])
    _write_hour(tmp_path, "2026-11-29", 10, rows[3:], cut_bytes=20)
    kept = [r.seq for r in read_ticks(tmp_path)]
    compact_day(tmp_path, "2026-11-29")
    assert [r.seq for r in read_ticks(tmp_path)] == kept and 3 < len(kept) < 8


def test_compaction_merges_whole_when_the_hours_are_out_of_order_or_a_parquet_file_is_there(tmp_path):
    rows = [_tick(i) for i in range(12)]
    _write_hour(tmp_path, "2026-11-29", 9, rows[6:])  # a clock set back: the later hour holds earlier ticks
    _write_hour(tmp_path, "2026-11-29", 10, rows[:6])
    compact_day(tmp_path, "2026-11-29")
    assert [r.seq for r in read_ticks(tmp_path)] == list(range(12))
    _write_hour(tmp_path, "2026-11-29", 11, rows[10:] + [_tick(12)])  # overlaps the Parquet day
    compact_day(tmp_path, "2026-11-29")
    assert [r.seq for r in read_ticks(tmp_path)] == list(range(13))
    assert not (tmp_path / "2026-11-29").exists()


def test_last_seq_is_the_highest_on_disk_parquet_or_hour_files(tmp_path):
    assert last_seq(tmp_path) is None
    write_day(tmp_path, "2026-11-28", [_tick(i) for i in range(5)])
    assert last_seq(tmp_path) == 4
    _write_hour(tmp_path, "2026-11-29", 9, [_tick(i) for i in range(5, 9)], cut_bytes=20)
    assert last_seq(tmp_path) == max(r.seq for r in read_ticks(tmp_path))
    write_day(tmp_path, "2026-11-27", [_tick(100)])  # the highest, whatever its day
    assert last_seq(tmp_path) == 100
