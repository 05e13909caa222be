"""`tickguard record [--instruments NSE:3045,...] [--symbols SBIN-EQ,...] [--dir D]` and
`tickguard record compact [--dir D]`.

    record     log in to the market-data login, subscribe the instruments, record every tick to D
               (default RECORD_DIR) until SIGTERM or SIGINT, then write what is queued and exit 0
    compact    compact the finished days of D (every IST day before today) to Parquet

Nothing here imports pyarrow until a command runs (`tickguard serve` declares these commands too).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from service.errors import SettingsError
from service.settings import Settings

__all__ = ["add_commands", "parse_instruments", "run"]

_PAIR = re.compile(r"^([A-Z]+):(\S+)$")


def add_commands(commands: argparse._SubParsersAction) -> None:
    record = commands.add_parser("record", help="record the ticks of instruments to RECORD_DIR until stopped")
    record.add_argument("--instruments", default="", help="EXCHANGE:TOKEN pairs, comma-separated (NSE:3045,NFO:35000)")
    record.add_argument("--symbols", default="",
                        help="symbols resolved through the instrument master, comma-separated (SBIN-EQ,NSE:INFY,NIFTY)")
    record.add_argument("--dir", default=None, help="where to record (default: RECORD_DIR)")
    actions = record.add_subparsers(dest="record_command")
    compact = actions.add_parser("compact", help="compact finished days (before today, IST) to Parquet")
    compact.add_argument("--dir", default=argparse.SUPPRESS, help="the recording (default: RECORD_DIR)")


def parse_instruments(text: str) -> list[tuple[str, str]]:
    """`NSE:3045,NFO:35000` as [("NSE", "3045"), ("NFO", "35000")]."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = _PAIR.match(part.upper())
        if match is None:
            raise SettingsError([("--instruments", f"expected EXCHANGE:TOKEN such as NSE:3045, not {part!r}")])
        pairs.append((match.group(1), match.group(2)))
    return pairs


def run(args: argparse.Namespace, settings: Settings, run_loop: Callable[[Coroutine[Any, Any, None], str], None]) -> int:
    root = Path(args.dir or settings.record_dir)
    if args.record_command == "compact":
        return _compact(root)
    instruments = parse_instruments(args.instruments)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not instruments and not symbols:
        raise SettingsError([("--instruments", "name what to record: --instruments NSE:3045 and/or --symbols SBIN-EQ")])
    from service.recording.role import RecordRole

    role = RecordRole(settings, root, instruments, symbols)
    run_loop(_until_signalled(role), settings.event_loop)
    return 0


async def _until_signalled(role) -> None:
    """Start `role` (a broker not up yet is waited for) and record until SIGTERM/SIGINT, which also ends
    a start still waiting; then stop it: every tick the socket delivered is written."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping.set)
    starting = asyncio.create_task(role.start())
    waiting = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a refused login, an unknown symbol: raised here
            shown = ",".join(f"{exchange}:{token}" for exchange, token in role.subscribed)
            print(f"recording {len(role.subscribed)} instruments ({shown}) to {role.recorder.root}", flush=True)
            await waiting
    finally:
        waiting.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        counts = await role.stop()
    print(f"recorded {counts.recorded} ticks ({counts.dropped} dropped) in {counts.hour_files} hour files",
          flush=True)


def _compact(root: Path) -> int:
    from service.recording.files import compact_day, day_of, days, hour_files

    today = day_of(time.time_ns())[0]
    finished = [day for day in days(root) if day < today and hour_files(root, day)]
    if not finished:
        print(f"nothing to compact in {root}", file=sys.stderr)
        return 0
    for day in finished:
        path = compact_day(root, day)
        if path is not None:
            print(f"{day}  {path}", flush=True)
    return 0
