"""`tickguard symbols refresh | find QUERY`.

    refresh   download the instrument master (progress on stderr), build the index, print counts
    find      print what QUERY resolves to and the master's symbols containing it (at most --limit
              rows on stdout; how many matched and how many are shown on stderr)

Piped into a reader that stops early (`| head`), `find` stops quietly, as a pipe's writer should.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import TextIO

from .book import SymbolBook
from .errors import SymbolError
from .model import Symbol

__all__ = ["add_commands", "run", "ProgressDisplay"]


class ProgressDisplay:
    """The download's progress on a terminal line (redrawn at most 10 times a second), or, when the
    stream is not a terminal (logs, CI), one line per quarter."""

    def __init__(self, stream: TextIO | None = None, label: str = "instrument master") -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.tty = self.stream.isatty()
        self._drawn_at = 0.0
        self._quarter = -1
        self._last = ""

    def __call__(self, received: int, expected: int | None) -> None:
        done = expected is not None and expected > 0 and received >= expected
        if expected:
            percent = min(100, received * 100 // expected)
            line = f"{self.label}  {received / 1e6:6.1f} / {expected / 1e6:.1f} MB  {percent:3d}%"
        else:
            percent = -1
            line = f"{self.label}  {received / 1e6:6.1f} MB"
        self._last = line
        if self.tty:
            now = time.monotonic()
            if done or now - self._drawn_at >= 0.1:
                self._drawn_at = now
                self.stream.write("\r" + line)
                self.stream.flush()
        elif percent // 25 > self._quarter:
            self._quarter = percent // 25
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._last:
            self.stream.write("\r" + self._last + "\n")
        elif not self.tty and self._last and self._quarter < 4:
            self.stream.write(self._last + "\n")
        self.stream.flush()


def add_commands(subparsers) -> None:
    symbols = subparsers.add_parser("symbols", help="the instrument master and symbol resolution")
    commands = symbols.add_subparsers(dest="symbols_command", required=True)
    commands.add_parser("refresh", help="download the instrument master and rebuild the index")
    find = commands.add_parser("find", help="show the instruments a query resolves to or contains")
    find.add_argument("query", help="a ticker (NSE:SBIN, M_M, NIFTY1!), a contract symbol or part of one")
    find.add_argument("--limit", type=_positive, default=20, help="most matches to print (default 20)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def run(args: argparse.Namespace, settings) -> int:
    try:
        if args.symbols_command == "refresh":
            return asyncio.run(_refresh(settings))
        return asyncio.run(_find(settings, args.query, args.limit))
    except SymbolError as exc:
        print(f"tickguard symbols: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader has gone (`| head`): the rest is not wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail again
        return 0


async def _refresh(settings) -> int:
    book = SymbolBook(settings, isolated=False)  # a short-lived process: no need to parse in a child
    display = ProgressDisplay()
    try:
        index = await book.refresh(progress=display)
    finally:
        display.finish()
    counts = index.counts()
    print(f"instrument master for {index.date}: {len(index)} instruments from {index.source}")
    for exchange, count in counts.items():
        print(f"  {exchange:<6} {count:>8}")
    if index.skipped:
        print(f"  skipped {index.skipped} unreadable rows")
    print(f"index      {book.symbols_dir}")
    print(f"cache      {book.cache_path} ({len(book.cache)} symbols{_rebuilt(book)})")
    return 0


async def _find(settings, query: str, limit: int) -> int:
    book = SymbolBook(settings, isolated=False)
    display = ProgressDisplay()
    try:
        await book.open(progress=display)
    finally:
        display.finish()
    matches = book.find(query, len(book.index) + 1)  # every match, to count them
    if not matches:
        print(f"no instrument matches {query!r} in the master of {book.index.date}", file=sys.stderr)
        return 1
    shown = matches[:limit]
    print(f"{'TRADINGSYMBOL':<26} {'TOKEN':>9} {'EXCH':<5} {'LOT':>5} {'TICK':>6} {'EXPIRY':<10} {'STRIKE':>10}")
    for symbol in shown:
        print(_row(symbol))
    sys.stdout.flush()  # a closed pipe shows here, inside `run`, not in the interpreter's exit
    more = f" (--limit {limit}; raise it to see more)" if len(shown) < len(matches) else ""
    print(f"{len(matches)} matched {query!r}, {len(shown)} shown{more}", file=sys.stderr)
    return 0


def _row(symbol: Symbol) -> str:
    expiry = f"{symbol.expiry:%d%b%Y}".upper() if symbol.expiry else "-"
    strike = f"{symbol.strike / 100:g}" if symbol.strike is not None else "-"
    tick = f"{symbol.tick_size / 100:.2f}"
    return (f"{symbol.tradingsymbol:<26} {symbol.token:>9} {symbol.exchange:<5} {symbol.lotsize:>5} "
            f"{tick:>6} {expiry:<10} {strike:>10}")


def _rebuilt(book: SymbolBook) -> str:
    return f"; rebuilt: {book.cache.rebuilt}" if book.cache.rebuilt else ""
