"""Recorded ticks on disk: the one schema, where each hour and day lives, and reading them back in order.

    RECORD_DIR/
        2026-12-04/ticks-09.arrows   Arrow IPC *stream* files, one per IST hour of arrival, written
        2026-12-04/ticks-10.arrows   batch by batch (a file still being written reads up to its last
        2026-12-04/ticks-10-1.arrows whole batch); a stream cannot be appended to, so a recorder that
                                     starts again within an hour writes the hour's next part
        2026-12-03.parquet           a finished day compacted to Parquet (zstd); its hour files removed
                                     only once it is in place

Every row is one tick as tickguard received it: the instrument, prices in paise, the exchange's own
time stamp, the wall-clock arrival time (ns) and `seq`, the recorder's receipt order, which is the
order the engine saw the ticks in. `seq` increases strictly across restarts (a recorder continues from
the highest one on disk); a gap in it is ticks the recorder had to drop. Readers get ticks back in `seq`
order within a day, days in order.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from streams import Tick

__all__ = [
    "SCHEMA", "RecordedTick", "compact_day", "day_of", "hour_file", "hour_files", "hour_part", "day_file", "days",
    "last_seq", "read_day", "read_ticks", "write_day", "tick_table",
]

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

SCHEMA = pa.schema([
    pa.field("seq", pa.uint64(), nullable=False),
    pa.field("arrival_ns", pa.int64(), nullable=False),
    pa.field("exchange", pa.dictionary(pa.int8(), pa.string()), nullable=False),
    pa.field("token", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("ltp", pa.int64(), nullable=False),
    pa.field("exchange_ts_ms", pa.int64(), nullable=False),
    pa.field("bid", pa.int64()),
    pa.field("ask", pa.int64()),
    pa.field("volume", pa.int64()),
], metadata={b"tickguard.ticks": b"1", b"prices": b"paise"})

# Parquet: the rising columns delta-encoded, the instruments dictionary-encoded, then zstd (about 40 %
# smaller than the defaults on a realistic day, and smaller than the hour files it is made from).
_PARQUET = {"compression": "zstd", "use_dictionary": ["exchange", "token"],
           "column_encoding": {name: "DELTA_BINARY_PACKED" for name in ("seq", "arrival_ns", "exchange_ts_ms", "volume")}}
_HOUR = re.compile(r"ticks-(\d\d)(?:-(\d+))?\.arrows")
_DAY = re.compile(r"(\d{4}-\d\d-\d\d)(\.parquet)?")


@dataclass(frozen=True, slots=True)
class RecordedTick:
    seq: int
    arrival_ns: int
    tick: Tick


def day_of(arrival_ns: int) -> tuple[str, int]:
    """The IST day (YYYY-MM-DD) and hour a tick that arrived at `arrival_ns` is filed under."""
    at = dt.datetime.fromtimestamp(arrival_ns // 1_000_000_000, IST)  # whole seconds: exact at the hour
    return at.date().isoformat(), at.hour


def hour_file(root: Path, day: str, hour: int, part: int = 0) -> Path:
    """The hour's file; part n > 0 is what a recorder started again within the hour writes."""
    return root / day / (f"ticks-{hour:02d}.arrows" if part == 0 else f"ticks-{hour:02d}-{part}.arrows")


def hour_part(path: Path) -> tuple[int, int] | None:
    """(hour, part) of an hour file's name; None for any other name."""
    match = _HOUR.fullmatch(path.name)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def hour_files(root: Path, day: str) -> list[Path]:
    """A day's hour files in the order they were written: by hour, then part."""
    folder = root / day
    if not folder.is_dir():
        return []
    named = [(key, path) for path in folder.iterdir() if (key := hour_part(path)) is not None]
    return [path for _, path in sorted(named)]


def day_file(root: Path, day: str) -> Path:
    return root / f"{day}.parquet"


def tick_table(rows: Iterable[RecordedTick]) -> pa.Table:
    """Rows as a table of SCHEMA (the recorder builds its batches this way)."""
    rows = list(rows)
    columns = {
        "seq": [r.seq for r in rows],
        "arrival_ns": [r.arrival_ns for r in rows],
        "exchange": [r.tick.exchange for r in rows],
        "token": [r.tick.token for r in rows],
        "ltp": [r.tick.ltp for r in rows],
        "exchange_ts_ms": [r.tick.exchange_ts_ms for r in rows],
        "bid": [r.tick.bid for r in rows],
        "ask": [r.tick.ask for r in rows],
        "volume": [r.tick.volume for r in rows],
    }
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def write_day(root: Path, day: str, rows: Iterable[RecordedTick]) -> Path:
    """A whole day straight to Parquet (compaction and generated recordings use this)."""
    path = day_file(root, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = tick_table(rows).sort_by("seq")
    partial = path.with_suffix(".parquet.partial")
    pq.write_table(table, partial, **_PARQUET)
    partial.replace(path)  # a reader never sees half a day
    return path


def days(root: Path) -> list[str]:
    """The days a recording holds, compacted or not, in order."""
    found: set[str] = set()
    if not root.is_dir():
        return []
    for entry in root.iterdir():
        match = _DAY.fullmatch(entry.name)
        if match and (entry.is_dir() or match.group(2)):
            found.add(match.group(1))
    return sorted(found)


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    """An hour file's batches up to its last whole one: a file the recorder is still writing reads as
    far as it goes, and one cut short by a crash loses only the batch being written."""
    try:
        with pa.OSFile(str(path), "rb") as source, ipc.open_stream(source) as reader:
            while True:
                try:
                    yield reader.read_next_batch()
                except StopIteration:
                    return
    except (pa.ArrowInvalid, OSError):
        return


def _read_stream(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(_batches(path)), schema=SCHEMA)


def read_day(root: Path, day: str) -> pa.Table:
    """One day's ticks as a table in receipt order: its Parquet file and any hour files not yet
    compacted (a seq seen in both is kept once)."""
    tables = []
    parquet = day_file(root, day)
    if parquet.exists():
        tables.append(pq.read_table(parquet, schema=SCHEMA))
    tables.extend(_read_stream(path) for path in hour_files(root, day))
    if not tables:
        return SCHEMA.empty_table()
    table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    table = table.sort_by("seq")
    if len(tables) > 1 and table.num_rows:
        seqs = table.column("seq").to_pylist()
        keep = [0] + [i for i in range(1, len(seqs)) if seqs[i] != seqs[i - 1]]
        if len(keep) != table.num_rows:
            table = table.take(keep)
    return table


def compact_day(root: Path, day: str) -> Path | None:
    """A finished day's hour files into its Parquet file, then the hour files removed (None when the
    day has none). Hour by hour, so a day never has to fit in memory; should the hours not follow one
    another in `seq` (a clock set back), or a Parquet file be there already, the day is merged whole."""
    hours = hour_files(root, day)
    if not hours:
        _remove_folder(root / day)
        return None
    path = day_file(root, day)
    partial = path.with_suffix(".parquet.partial")
    if path.exists() or not _write_hours(hours, partial):
        pq.write_table(read_day(root, day), partial, **_PARQUET)
    _durable(partial)
    partial.replace(path)  # a reader never sees half a day
    _durable(path.parent)
    for hour in hours:  # only those read: one a recorder began meanwhile stays for the next compaction
        hour.unlink(missing_ok=True)
    _remove_folder(root / day)
    return path


def _write_hours(hours: list[Path], partial: Path) -> bool:
    """The hour files, in order, into one Parquet file; False if their `seq` does not increase."""
    last = -1
    with pq.ParquetWriter(partial, SCHEMA, **_PARQUET) as writer:
        for hour in hours:
            table = _read_stream(hour)
            if not table.num_rows:
                continue
            seqs = table.column("seq")
            if pc.min(seqs).as_py() <= last or not _increasing(seqs):
                return False
            writer.write_table(table)
            last = pc.max(seqs).as_py()
    return True


def _increasing(seqs: pa.ChunkedArray) -> bool:
    values = seqs.combine_chunks()
    return len(values) < 2 or pc.all(pc.greater(values[1:], values[:-1])).as_py()


def _durable(path: Path) -> None:
    """fsync a file or a folder: the Parquet file is on disk before the hour files go."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_folder(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not there, or not empty (something other than hour files, or a new hour)
        pass


def last_seq(root: Path) -> int | None:
    """The highest `seq` recorded under `root` (None for an empty recording): where a recorder that
    starts again goes on from. Parquet days from their statistics, hour files batch by batch."""
    found: list[int] = []
    for day in days(root):
        path = day_file(root, day)
        if path.exists():
            found.extend(_parquet_max_seq(path))
        for hour in hour_files(root, day):
            found.extend(pc.max(batch.column(0)).as_py() for batch in _batches(hour) if batch.num_rows)
    return max(found, default=None)


def _parquet_max_seq(path: Path) -> list[int]:
    meta = pq.read_metadata(path)
    column = SCHEMA.get_field_index("seq")
    stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
    if all(s is not None and s.has_min_max for s in stats):
        return [s.max for s in stats]
    seqs = pq.read_table(path, columns=["seq"]).column("seq")
    return [pc.max(seqs).as_py()] if len(seqs) else []


def read_ticks(root: Path | str, *, start_ms: int | None = None, end_ms: int | None = None,
               day_list: Iterable[str] | None = None) -> Iterator[RecordedTick]:
    """Every recorded tick in the order the engine received it, optionally only those whose exchange
    time stamp falls in [start_ms, end_ms)."""
    root = Path(root)
    for day in (day_list if day_list is not None else days(root)):
        table = read_day(root, day)
        for row in table.to_pylist():
            stamp = row["exchange_ts_ms"]
            if (start_ms is not None and stamp < start_ms) or (end_ms is not None and stamp >= end_ms):
                continue
            yield RecordedTick(row["seq"], row["arrival_ns"], Tick(
                token=row["token"], exchange=row["exchange"], ltp=row["ltp"], exchange_ts_ms=stamp,
                bid=row["bid"], ask=row["ask"], volume=row["volume"]))
