"""Recorded ticks: every tick tickguard receives, on disk as Arrow per hour and Parquet per day.

    files.py      the schema, where each hour and day lives, compaction, reading back in receipt order
    recorder.py   Recorder: offered each tick on the tick path, written by a thread of its own
    role.py       `tickguard record`: a market-data login, the instruments named, recorded until stopped
    cli.py        `tickguard record [--instruments ...] [--symbols ...]`, `tickguard record compact`

The names below are loaded on first use: pyarrow (about 40 MB resident) is imported only by a process
that records or reads recordings, not by every `tickguard` command that declares `record`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.recording.files import (
        SCHEMA, RecordedTick, compact_day, day_file, day_of, days, hour_file, hour_files, last_seq, read_day, read_ticks,
        tick_table, write_day,
    )
    from service.recording.recorder import Recorder, RecorderCounts

__all__ = [
    "SCHEMA", "RecordedTick", "Recorder", "RecorderCounts", "compact_day", "day_file", "day_of", "days", "hour_file",
    "hour_files", "last_seq", "read_day", "read_ticks", "tick_table", "write_day",
]


def __getattr__(name: str) -> Any:
    if name in ("Recorder", "RecorderCounts"):
        from service.recording import recorder

        return getattr(recorder, name)
    if name in __all__:
        from service.recording import files

        return getattr(files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
