"""Recorded ticks: every tick tickguard receives, on disk as Arrow per hour and Parquet per day."""
from __future__ import annotations

from service.recording.files import (
    SCHEMA, RecordedTick, day_file, day_of, days, hour_file, read_day, read_ticks, tick_table, write_day,
)

__all__ = [
    "SCHEMA", "RecordedTick", "day_file", "day_of", "days", "hour_file", "read_day", "read_ticks",
    "tick_table", "write_day",
]
