"""Recorded ticks on disk: the one schema, where each hour and day lives, and reading them back in order.

    RECORD_DIR/
        2026-12-04/ticks-09.arrows   Arrow IPC *stream* files, one per IST hour of arrival, written
        2026-12-04/ticks-10.arrows   batch by batch (a file still being written reads up to its last
                                     whole batch)
        2026-12-03.parquet           a finished day compacted to Parquet (zstd); its hour files removed

Every row is one tick as tickguard received it: the instrument, prices in paise, the exchange's own
time stamp, the wall-clock arrival time (ns) and `seq`, the recorder's receipt order, which is the
order the engine saw the ticks in. Readers get ticks back in `seq` order within a day, days in order.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from streams import Tick

__all__ = [
    "SCHEMA", "RecordedTick", "day_of", "hour_file", "day_file", "days", "read_day", "read_ticks",
    "write_day", "tick_table",
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

_HOUR = re.compile(r"ticks-(\d\d)\.arrows")
_DAY = re.compile(r"(\d{4}-\d\d-\d\d)(\.parquet)?")


@dataclass(frozen=True, slots=True)
class RecordedTick:
    seq: int
    arrival_ns: int
    tick: Tick


def day_of(arrival_ns: int) -> tuple[str, int]:
    """The IST day (YYYY-MM-DD) and hour a tick that arrived at `arrival_ns` is filed under."""
    at = dt.datetime.fromtimestamp(arrival_ns / 1e9, IST)
    return at.date().isoformat(), at.hour


def hour_file(root: Path, day: str, hour: int) -> Path:
    return root / day / f"ticks-{hour:02d}.arrows"


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
    pq.write_table(table, partial, compression="zstd")
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


def _read_stream(path: Path) -> pa.Table:
    """An hour file up to its last whole batch: a file the recorder is still writing reads as far as
    it goes, and one cut short by a crash loses only the batch being written."""
    batches = []
    try:
        with pa.OSFile(str(path), "rb") as source, ipc.open_stream(source) as reader:
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError):
        pass
    return pa.Table.from_batches(batches, schema=SCHEMA)


def read_day(root: Path, day: str) -> pa.Table:
    """One day's ticks as a table in receipt order: its Parquet file and any hour files not yet
    compacted (a seq seen in both is kept once)."""
    tables = []
    parquet = day_file(root, day)
    if parquet.exists():
        tables.append(pq.read_table(parquet, schema=SCHEMA))
    folder = root / day
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if _HOUR.fullmatch(path.name):
                tables.append(_read_stream(path))
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
