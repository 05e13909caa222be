"""`replay.csv`: one row per trade per variant, every figure in paise, times in epoch ms (and IST)."""
from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import msgspec

from service.replay.outcomes import Outcome
from service.replay.paths import ist_text

__all__ = ["COLUMNS", "read_csv", "write_csv"]

COLUMNS = tuple(Outcome.__struct_fields__)
_TIMES = ("entry_ms", "exit_ms")


def write_csv(path: Path, outcomes: Iterable[Outcome]) -> None:
    """The rows with an IST text column beside each time (`entry_ist`, `exit_ist`)."""
    header = []
    for column in COLUMNS:
        header.append(column)
        if column in _TIMES:
            header.append(column.replace("_ms", "_ist"))
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for outcome in outcomes:
            row = []
            for column in COLUMNS:
                value = getattr(outcome, column)
                row.append("" if value is None else value)
                if column in _TIMES:
                    row.append("" if value is None else ist_text(value))
            writer.writerow(row)


def read_csv(path: Path) -> list[Outcome]:
    """The rows back (for tests and tools): blanks are None."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = [{k: (None if v == "" else v) for k, v in row.items() if k in COLUMNS} for row in csv.DictReader(file)]
    for row in rows:
        for text_field in ("note", "recorded_reason"):
            row[text_field] = row.get(text_field) or ""
    return msgspec.convert(rows, list[Outcome], strict=False)
