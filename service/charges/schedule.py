"""The statutory and exchange charges as data: `schedule.json`, versioned by trade date.

A version holds every rate from its `from` date until the next version's. Rates are percentages of
order value (options: of premium × quantity), written as decimal strings so they stay exact:

    {"source": "...",
     "versions": [
       {"from": "2026-04-01",
        "sebi": RATE, "gst": RATE,                          GST: on brokerage + exchange charge + SEBI fee
        "segments": {
          "equity_intraday" | "equity_delivery" | "futures" | "options": {
            "stt": RATE + "side": "buy" | "sell" | "both",
            "stamp": RATE,                                  buy side only
            "exchange_txn": {"NSE": RATE, "BSE": RATE}}}}]}   on turnover, buy + sell

    RATE = {"percent": "0.025", "source": "who states it", "verified": true}

Every rate names its `source`; a rate no source states (BSE futures' transaction charge) is written
0 with `"verified": false`, and the charges computed from it say so.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from service.charges.errors import NoRates, ScheduleError

__all__ = ["EXCHANGES", "SEGMENTS", "SHIPPED", "Rate", "Rates", "Schedule", "load_schedule"]

SHIPPED = Path(__file__).with_name("schedule.json")
SEGMENTS = ("equity_intraday", "equity_delivery", "futures", "options")
EXCHANGES = ("NSE", "BSE")
SIDES = ("buy", "sell", "both")
Side = Literal["buy", "sell", "both"]

_FILE_KEYS = {"source", "versions"}
_VERSION_KEYS = {"from", "sebi", "gst", "segments"}
_SEGMENT_KEYS = {"stt", "stamp", "exchange_txn"}
_RATE_KEYS = {"percent", "source", "verified"}


@dataclass(frozen=True)
class Rate:
    percent: Decimal
    source: str
    verified: bool

    @functools.cached_property
    def fraction(self) -> Fraction:
        """The rate as an exact fraction of the value it applies to (0.025 % -> 1/4000)."""
        return Fraction(self.percent) / 100


@dataclass(frozen=True)
class Rates:
    """Every rate that applies to one segment on one exchange on one trade date."""

    segment: str
    exchange: str
    since: dt.date
    stt: Rate
    stt_side: Side
    exchange_txn: Rate
    sebi: Rate
    stamp: Rate
    gst: Rate

    @functools.cached_property
    def unverified(self) -> tuple[str, ...]:
        names = ("stt", "exchange_txn", "sebi", "stamp", "gst")
        return tuple(name for name in names if not getattr(self, name).verified)


@dataclass(frozen=True)
class Schedule:
    versions: tuple[tuple[dt.date, dict[tuple[str, str], Rates]], ...]  # ascending by date
    source: str

    def rates(self, segment: str, exchange: str, trade_date: dt.date) -> Rates:
        if segment not in SEGMENTS:
            raise NoRates(segment, exchange, trade_date, f"unknown segment; one of {', '.join(SEGMENTS)}")
        if exchange not in EXCHANGES:
            raise NoRates(segment, exchange, trade_date, f"unknown exchange; one of {', '.join(EXCHANGES)}")
        in_force = [table for since, table in self.versions if since <= trade_date]
        if not in_force:
            first = self.versions[0][0].isoformat()
            raise NoRates(segment, exchange, trade_date, f"the schedule starts on {first}")
        return in_force[-1][(segment, exchange)]


def load_schedule(path: Path | str = SHIPPED) -> Schedule:
    """The schedule in `path` (the shipped one by default); ScheduleError lists every problem."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ScheduleError(str(path), [f"unreadable: {exc}"]) from None
    problems: list[str] = []
    versions: list[tuple[dt.date, dict[tuple[str, str], Rates]]] = []
    if not isinstance(document, dict) or not isinstance(document.get("versions"), list) or not document["versions"]:
        raise ScheduleError(str(path), ['expected a JSON object {"versions": [...]} with at least one version'])
    problems += _unknown(document, _FILE_KEYS, "the file")
    for position, entry in enumerate(document["versions"]):
        version = _read_version(entry, f"versions[{position}]", problems)
        if version is not None:
            versions.append(version)
    dates = [since for since, _ in versions]
    if not problems and dates != sorted(set(dates)):
        problems.append("versions: their `from` dates must be distinct and ascending")
    if problems:
        raise ScheduleError(str(path), problems)
    return Schedule(tuple(versions), str(document.get("source", "")))


def _unknown(entry: dict[str, Any], known: set[str], where: str) -> list[str]:
    return [f"{where}: unknown field {key!r}" for key in sorted(set(entry) - known)]


def _read_version(entry: Any, where: str, problems: list[str]) -> tuple[dt.date, dict[tuple[str, str], Rates]] | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object")
        return None
    problems += _unknown(entry, _VERSION_KEYS, where)
    try:
        since = dt.date.fromisoformat(entry.get("from"))
    except (TypeError, ValueError):
        problems.append(f"{where}.from: expected an ISO date, like 2026-04-01")
        return None
    before = len(problems)
    sebi = _read_rate(entry.get("sebi"), f"{where}.sebi", problems)
    gst = _read_rate(entry.get("gst"), f"{where}.gst", problems)
    segments = entry.get("segments")
    if not isinstance(segments, dict):
        problems.append(f"{where}.segments: expected an object")
        return None
    problems += [f"{where}.segments: unknown segment {name!r}" for name in sorted(set(segments) - set(SEGMENTS))]
    table: dict[tuple[str, str], Rates] = {}
    for segment in SEGMENTS:
        table.update(_read_segment(segments.get(segment), segment, since, sebi, gst, f"{where}.segments.{segment}", problems))
    return (since, table) if len(problems) == before else None


def _read_segment(entry: Any, segment: str, since: dt.date, sebi: Rate | None, gst: Rate | None, where: str,
                  problems: list[str]) -> dict[tuple[str, str], Rates]:
    if not isinstance(entry, dict):
        problems.append(f"{where}: missing, or not an object")
        return {}
    problems += _unknown(entry, _SEGMENT_KEYS, where)
    stt_entry = entry.get("stt")
    side = stt_entry.get("side") if isinstance(stt_entry, dict) else None
    if side not in SIDES:
        problems.append(f"{where}.stt.side: expected one of {', '.join(SIDES)}")
    stt = _read_rate(stt_entry, f"{where}.stt", problems, extra={"side"})
    stamp = _read_rate(entry.get("stamp"), f"{where}.stamp", problems)
    by_exchange = entry.get("exchange_txn")
    if not isinstance(by_exchange, dict):
        problems.append(f"{where}.exchange_txn: expected an object with a rate for each of {', '.join(EXCHANGES)}")
        return {}
    problems += [f"{where}.exchange_txn: unknown exchange {name!r}" for name in sorted(set(by_exchange) - set(EXCHANGES))]
    table = {}
    for exchange in EXCHANGES:
        txn = _read_rate(by_exchange.get(exchange), f"{where}.exchange_txn.{exchange}", problems)
        if None not in (stt, stamp, txn, sebi, gst) and side in SIDES:
            table[(segment, exchange)] = Rates(segment, exchange, since, stt, side, txn, sebi, stamp, gst)
    return table


def _read_rate(entry: Any, where: str, problems: list[str], extra: frozenset[str] = frozenset()) -> Rate | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: missing, or not an object")
        return None
    found = len(problems)
    problems += _unknown(entry, _RATE_KEYS | extra, where)
    try:
        percent = Decimal(entry.get("percent")) if isinstance(entry.get("percent"), str) else None
    except InvalidOperation:
        percent = None
    if percent is None or not percent.is_finite() or percent < 0:
        problems.append(f"{where}.percent: expected a non-negative decimal string, like \"0.025\"")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{where}.source: every rate names its source (or says none does, with \"verified\": false)")
    if not isinstance(entry.get("verified"), bool):
        problems.append(f"{where}.verified: expected true or false")
    if len(problems) > found:
        return None
    return Rate(percent, source, entry["verified"])
