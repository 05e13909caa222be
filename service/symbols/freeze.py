"""Freeze quantities: the exchanges' per-order quantity limit per underlying, from a settings file.

NSE and BSE revise these (by circular, usually with lot-size revisions), so they are data, never code:
`FREEZE_QTY_FILE` names a JSON object mapping the underlying's master name to units per order
(`{"NIFTY": 1800}`); keys starting with `_` are notes. Empty means the table shipped beside this
module, `freeze_qty.json`.
"""
from __future__ import annotations

from pathlib import Path

import msgspec

from service.errors import SettingsError

__all__ = ["DEFAULT_FREEZE_QTY_FILE", "load_freeze_qty"]

DEFAULT_FREEZE_QTY_FILE = Path(__file__).with_name("freeze_qty.json")


def load_freeze_qty(path: str | Path | None = None) -> dict[str, int]:
    """Underlying name (upper case) -> freeze quantity in units."""
    source = Path(path) if path else DEFAULT_FREEZE_QTY_FILE
    try:
        table = msgspec.json.decode(source.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise SettingsError([("FREEZE_QTY_FILE", f"{source}: {exc}")]) from None
    if not isinstance(table, dict):
        raise SettingsError([("FREEZE_QTY_FILE", f"{source}: expected a JSON object of name -> units")])
    limits: dict[str, int] = {}
    problems = []
    for name, units in table.items():
        if name.startswith("_"):
            continue
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            problems.append(("FREEZE_QTY_FILE", f"{source}: {name}: expected a positive whole number of units, got {units!r}"))
            continue
        limits[name.strip().upper()] = units
    if problems:
        raise SettingsError(problems)
    return limits
