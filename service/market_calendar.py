"""Market calendars: the days each exchange trades, as data — shipped lists plus `HOLIDAYS_FILE`.

The exchanges publish a year's holidays once (NSE usually in December) and announce special sessions,
like Muhurat trading on Diwali, by circular, often late. tickguard ships what has been published in
`service/calendars/*.json` (NSE's 2026 list, for NSE, NFO, BSE and BFO; nothing for MCX or CDS), and
`HOLIDAYS_FILE` adds to it, in the same format:

    {"shipped": true,                  optional; false: ignore the shipped lists, use this file alone
     "source": "...",                  optional, free text
     "calendars": [
       {"exchanges": ["NSE", "NFO", "BSE", "BFO"],
        "years": [2026],               the years this list is complete for
        "holidays": ["2026-01-26", {"date": "2026-03-03", "name": "Holi"}],
        "sessions": [{"date": "2026-11-08", "name": "Muhurat trading", "opens": "18:00",
                      "closes": "19:00", "square_off": "18:45", "entry_cutoff": "18:30"}],
        "source": "..."}]}

Per exchange, the holidays and years of every calendar naming it are added up, shipped and yours; a
special session of yours replaces the one on that date in the shipped list. A session without times
(no `opens`, `closes`, `square_off`) is one whose times are to be announced: the day stays closed
and, in the week before it, the session shows as a warning. A session takes entries until its
`entry_cutoff`, by default its square-off. A year is covered only when a calendar lists it in
`years`: without one, every weekday of that year is a trading day, and `CalendarWatch` says so at
start, in the log and on `/healthz`.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from service.errors import SettingsError
from streams import Calendar, SegmentHours, default_calendar

__all__ = ["CalendarWatch", "MarketCalendar", "SHIPPED_DIR", "holidays_problems", "load_market_calendar"]

log = logging.getLogger("tickguard.calendar")

SHIPPED_DIR = Path(__file__).with_name("calendars")
EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "MCX", "CDS")
SOON_DAYS = 7  # a special session whose times are still unknown this close is a warning
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
_FILE_KEYS = {"shipped", "source", "calendars"}
_ENTRY_KEYS = {"exchanges", "years", "holidays", "sessions", "source"}
_SESSION_KEYS = {"date", "name", "opens", "closes", "square_off", "entry_cutoff"}
_IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@dataclass
class _Days:
    """One exchange's days as a file gives them."""

    holidays: set[dt.date] = field(default_factory=set)
    sessions: dict[dt.date, tuple[str, SegmentHours | None]] = field(default_factory=dict)  # None: times unknown
    years: set[int] = field(default_factory=set)


@dataclass
class _File:
    days: dict[str, _Days] = field(default_factory=lambda: defaultdict(_Days))
    shipped: bool = True
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MarketCalendar:
    calendar: Calendar
    named: frozenset[str]  # the exchanges some calendar names: in use, so their missing years are told
    to_announce: dict[str, dict[dt.date, str]]  # exchange -> date -> name of a session whose times are unknown
    sources: tuple[str, ...]

    def warnings(self, exchanges: Iterable[str], now_ms: int) -> list[dict[str, Any]]:
        """What a trader should know about the calendar of these exchanges today."""
        today = dt.datetime.fromtimestamp(now_ms / 1000, _IST).date()
        wanted = sorted(set(exchanges) & set(self.calendar.hours))
        found: list[dict[str, Any]] = []
        missing = [code for code in wanted if today.year not in self.calendar.years.get(code, ())]
        if missing:
            found.append({"kind": "calendar_year", "year": today.year, "exchanges": missing,
                          "reason": f"no holiday calendar for {today.year}: every weekday counts as a trading day; "
                                    f"list {today.year} in HOLIDAYS_FILE (with its holidays, or none) to silence this"})
        soon: dict[tuple[dt.date, str], list[str]] = defaultdict(list)
        for code in wanted:
            for day, name in self.to_announce.get(code, {}).items():
                if today <= day <= today + dt.timedelta(days=SOON_DAYS):
                    soon[(day, name)].append(code)
        for (day, name), codes in sorted(soon.items()):
            found.append({"kind": "session_times", "date": day.isoformat(), "name": name, "exchanges": codes,
                          "reason": "special session times to be announced: add its opens, closes and square_off "
                                    "to HOLIDAYS_FILE"})
        return found


class CalendarWatch:
    """The calendar warnings of the exchanges in use (named by a calendar, or with a guarded trade),
    each logged once per exchange; none under MARKET_HOURS=always (no calendar applies)."""

    def __init__(self, market: MarketCalendar | None, subscribed: Callable[[], Iterable[str]],
                 now_ms: Callable[[], int]) -> None:
        self.market = market
        self._subscribed = subscribed
        self._now_ms = now_ms
        self._logged: set[tuple[str, str, str]] = set()  # (kind, year or date, exchange)

    def warnings(self) -> list[dict[str, Any]]:
        if self.market is None:
            return []
        return self.market.warnings(self.market.named | set(self._subscribed()), self._now_ms())

    def start(self) -> None:
        if self.market is not None:
            covered = {code: sorted(years) for code, years in self.market.calendar.years.items() if years}
            log.info("market calendar", extra={"years": covered, "sources": list(self.market.sources)})
        self.check()

    def check(self) -> None:
        """Log each warning not yet logged, for the exchanges not yet told."""
        for warning in self.warnings():
            when = str(warning.get("year", warning.get("date")))
            new = [code for code in warning["exchanges"] if (warning["kind"], when, code) not in self._logged]
            if new:
                self._logged.update((warning["kind"], when, code) for code in new)
                log.warning(warning["reason"], extra={"exchanges": new, "calendar": warning["kind"], "when": when})


def load_market_calendar(holidays_file: str = "") -> MarketCalendar:
    """The shipped lists plus HOLIDAYS_FILE, merged; SettingsError naming every problem."""
    user = _File(shipped=True)
    if holidays_file:
        user, problems = _read(Path(holidays_file))
        if problems:
            raise SettingsError([("HOLIDAYS_FILE", p) for p in problems])
    files = [*(_shipped() if user.shipped else []), user]
    return _merge(files)


def holidays_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """HOLIDAYS_FILE as load_settings reports it."""
    path = values.get("holidays_file", "")
    return [("HOLIDAYS_FILE", p) for p in _read(Path(path))[1]] if path else []


def _shipped() -> list[_File]:
    files = []
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        parsed, problems = _read(path)
        if problems:  # a packaging fault, not the user's
            raise SettingsError([("shipped calendar", p) for p in problems])
        files.append(parsed)
    return files


def _merge(files: list[_File]) -> MarketCalendar:
    holidays: dict[str, set[dt.date]] = defaultdict(set)
    years: dict[str, set[int]] = defaultdict(set)
    sessions: dict[str, dict[dt.date, tuple[str, SegmentHours | None]]] = defaultdict(dict)
    for parsed in files:  # later files win a session's date
        for code, days in parsed.days.items():
            holidays[code] |= days.holidays
            years[code] |= days.years
            sessions[code].update(days.sessions)
    base = default_calendar()
    calendar = Calendar(
        base.hours,
        holidays={code: frozenset(days) for code, days in holidays.items()},
        sessions={code: {day: hours for day, (_, hours) in by_day.items() if hours is not None}
                  for code, by_day in sessions.items()},
        years={code: frozenset(found) for code, found in years.items()},
    )
    to_announce = {code: {day: name for day, (name, hours) in by_day.items() if hours is None}
                   for code, by_day in sessions.items()}
    named = frozenset(holidays) | frozenset(years) | frozenset(sessions)
    return MarketCalendar(calendar, named, to_announce, tuple(s for f in files for s in f.sources))


def _read(path: Path) -> tuple[_File, list[str]]:
    parsed = _File()
    try:
        document = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        return parsed, [f"{path}: {exc}"]
    if not isinstance(document, dict) or not isinstance(document.get("calendars"), list):
        return parsed, [f'{path}: expected a JSON object {{"calendars": [...]}}']
    problems = [f"{path}: unknown field {key!r}" for key in sorted(set(document) - _FILE_KEYS)]
    shipped, source = document.get("shipped", True), document.get("source", "")
    if not isinstance(shipped, bool):
        problems.append(f"{path}: shipped: expected true or false, got {shipped!r}")
    parsed.shipped = shipped is not False
    if source:
        parsed.sources.append(str(source))
    for position, entry in enumerate(document["calendars"]):
        problems.extend(f"{path}: {p}" for p in _read_entry(entry, f"calendars[{position}]", parsed))
    return parsed, problems


def _read_entry(entry: Any, where: str, parsed: _File) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: expected an object with exchanges, years, holidays, sessions"]
    codes = entry.get("exchanges")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        return [f"{where}: exchanges: expected a list of exchange codes ({', '.join(EXCHANGES)})"]
    where = f"{where} ({', '.join(codes)})"
    problems = [f"{where}: unknown field {key!r}" for key in sorted(set(entry) - _ENTRY_KEYS)]
    problems += [f"{where}: exchanges: unknown exchange {c!r}; expected some of {', '.join(EXCHANGES)}"
                 for c in codes if c not in EXCHANGES]
    years = entry.get("years", [])
    if not isinstance(years, list) or not all(type(y) is int and 1970 <= y <= 2200 for y in years):
        problems.append(f"{where}: years: expected a list of years like [2026], got {years!r}")
        years = []
    holidays = entry.get("holidays", [])
    if not isinstance(holidays, list):
        problems.append(f"{where}: holidays: expected a list of dates")
        holidays = []
    sessions = entry.get("sessions", [])
    if not isinstance(sessions, list):
        problems.append(f"{where}: sessions: expected a list of sessions")
        sessions = []
    closed = _holidays(holidays, where, problems)
    special: dict[dt.date, tuple[str, SegmentHours | None]] = {}
    for position, session in enumerate(sessions):
        date, named_hours, found = _session(session)
        label = f"{where}: sessions[{position}]" + (f" {date}" if date else "")
        problems.extend(f"{label}: {p}" for p in found)
        if date and not found:
            if date in special:
                problems.append(f"{label}: a second session on {date}")
            special[date] = named_hours
    for code in codes:
        if code in EXCHANGES:
            days = parsed.days[code]
            problems += [f"{where}: sessions: {code} has another session on {day} in this file"
                         for day in sorted(special.keys() & days.sessions.keys())]
            days.holidays |= closed
            days.years |= set(years)
            days.sessions.update(special)
    if entry.get("source"):
        parsed.sources.append(str(entry["source"]))
    return problems


def _holidays(holidays: list[Any], where: str, problems: list[str]) -> set[dt.date]:
    closed: set[dt.date] = set()
    for position, holiday in enumerate(holidays):
        day = holiday.get("date") if isinstance(holiday, dict) else holiday
        if isinstance(holiday, dict) and set(holiday) - {"date", "name"}:
            problems.append(f"{where}: holidays[{position}]: unknown field(s) {sorted(set(holiday) - {'date', 'name'})}")
        date, problem = _date(day)
        if problem:
            problems.append(f"{where}: holidays[{position}]: {problem}")
        else:
            closed.add(date)
    return closed


def _session(session: Any) -> tuple[dt.date | None, tuple[str, SegmentHours | None], list[str]]:
    if not isinstance(session, dict):
        return None, ("", None), ["expected an object with date, opens, closes, square_off, entry_cutoff"]
    date, problem = _date(session.get("date"))
    problems = [problem] if problem else []
    problems += [f"unknown field {key!r}" for key in sorted(set(session) - _SESSION_KEYS)]
    name = session.get("name", "special session")
    if not isinstance(name, str):
        problems.append(f"name: expected text, got {name!r}")
    times: dict[str, dt.time] = {}
    for key in ("opens", "closes", "square_off", "entry_cutoff"):
        if key in session:
            value, problem = _time(session[key])
            if problem:
                problems.append(f"{key}: {problem}")
            else:
                times[key] = value
    given = [key for key in ("opens", "closes", "square_off", "entry_cutoff") if key in session]
    if not given:  # times to be announced
        return date, (str(name), None), problems
    missing = [key for key in ("opens", "closes", "square_off") if key not in session]
    if missing:
        problems.append(f"{', '.join(missing)}: required with the other times (or give no times: to be announced)")
    if problems:
        return date, (str(name), None), problems
    opens, closes, square_off = times["opens"], times["closes"], times["square_off"]
    cutoff = times.get("entry_cutoff", square_off)
    shown = {key: _hhmm(value) for key, value in times.items()}
    if not opens < closes:
        problems.append(f"closes {shown['closes']} is not after opens {shown['opens']}")
    elif not opens < square_off <= closes:
        problems.append(f"square_off {shown['square_off']} is not inside the session {shown['opens']}-{shown['closes']}")
    elif not opens < cutoff <= square_off:
        problems.append(f"entry_cutoff {shown['entry_cutoff']} is not after opens {shown['opens']} and by "
                        f"square_off {shown['square_off']}")
    return date, (str(name), SegmentHours(opens, closes, square_off, cutoff)), problems


def _date(value: Any) -> tuple[dt.date | None, str]:
    if not isinstance(value, str) or not _DATE.match(value):
        return None, f"date: expected YYYY-MM-DD, got {value!r}"
    try:
        return dt.date.fromisoformat(value), ""
    except ValueError:
        return None, f"date: {value!r} is not a calendar date"


def _time(value: Any) -> tuple[dt.time | None, str]:
    if not isinstance(value, str) or not _TIME.match(value):
        return None, f"expected an IST time HH:MM, got {value!r}"
    try:
        return dt.time.fromisoformat(value), ""
    except ValueError:
        return None, f"{value!r} is not a time of day"


def _hhmm(value: dt.time) -> str:
    return value.isoformat("seconds" if value.second else "minutes")
