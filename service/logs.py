"""Structured logs that cannot carry a secret: JSON lines, or readable lines on a terminal.

`LOG_FORMAT` chooses: `json`, `text`, or `auto` (the default: text when stderr is a terminal, JSON
otherwise). A JSON line per record: ``ts`` (UTC, ms), ``level``, ``logger``, ``msg``, the caller's ``extra=`` fields,
and ``exc``/``stack`` when present. Everything the caller controls — the message after ``%`` formatting,
extra fields (keys and values, recursively), exception and stack text, even the logger name — passes
through one `Redactor` before it is encoded, because a leaked webhook secret, PIN, API key, TOTP secret
or session JWT is worse than a missing log line.

The redaction happens in the formatter, so it covers every logger that propagates to the root handler,
uvicorn's included (`configure_logging` strips uvicorn's own handlers and `UVICORN_LOG_CONFIG` keeps
uvicorn from installing them again). A handler that someone else adds to the root logger is theirs: it
sees unredacted records, which is why `logging.basicConfig` must not be called alongside this. What no
caller controls is not masked: field names, level names and the time stamp, so a secret spelled like
``"logger"`` would show there.

Formatting is paid only for records that pass the level check; the tick path does not log.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import pairwise
from typing import IO, Any

import msgspec

__all__ = ["MASK", "UVICORN_LOGGERS", "UVICORN_LOG_CONFIG", "JsonFormatter", "Redactor", "TextFormatter", "configure_logging"]

MASK = "***"

# Shorter secrets (a 4-digit MPIN) are matched only as a standalone token: matching them anywhere would
# erase prices, quantities and order ids that merely contain the same digits.
_SHORT_SECRET = 6
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Up to whitespace or the quote or bracket that closes the value it sits in.
_BEARER = re.compile(r"(?i:\bbearer)\s+[^\s'\"`,;)}\]]+")
# From a scheme or a slash up to `?`, then the query (and any fragment) up to whitespace.
_URL_QUERY = re.compile(r"((?:\b[A-Za-z][A-Za-z0-9+.\-]*://|/)[^\s?#]*)\?\S+")
# `password=...`, `'pin': '...'`, `Authorization: Basic ...` in free text: a dict or a header block
# formatted into a message. The name starts a word (or a camelCase hump), so `symboltoken=3045` stays.
_NAMED_VALUE = re.compile(
    r"""((?:(?<![A-Za-z0-9])|(?<=[a-z])(?=[A-Z]))"""
    r"""(?i:password|passwd|mpin|pin|secret|totp|api[_-]?key|private[_-]?key|jwt|token|authorization)"""
    r"""["']?\s*[:=]\s*)("[^"]*"|'[^']*'|(?i:(?:basic|bearer|digest)\s+)?[^\s"',;&}\]]+)""")
_PASSES = 4
_FIXED = (_JWT, _BEARER, _NAMED_VALUE, _URL_QUERY)


def _any(secrets: re.Pattern[str] | None) -> re.Pattern[str]:
    """Whether any masking pattern (the secrets' too) would touch a text: one search instead of five."""
    parts = ([secrets] if secrets is not None else []) + list(_FIXED)
    return re.compile("|".join(f"(?:{p.pattern})" for p in parts))


_ANY_FIXED = _any(None)
_CACHED_LENGTH, _CACHED_TEXTS = 120, 4096  # texts up to this long are remembered masked, this many at most

_SECRET_WORDS = frozenset({
    "token", "password", "passwd", "pass", "pin", "mpin", "secret", "totp", "jwt", "authorization",
    "apikey", "privatekey",
})
_SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("smartapi", "key"), ("feed", "token")})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """A key names a secret when one of its words does: `webhook_secret`, `jwtToken`, `X-PrivateKey`.

    Words, not substrings, so `pinned` or `symboltoken` (an instrument id) stay visible.
    """
    words = [w for w in _WORDS.split(_CAMEL.sub("_", key).lower()) if w]
    return any(w in _SECRET_WORDS for w in words) or any(pair in _SECRET_PAIRS for pair in pairwise(words))


def _spellings(secret: str) -> tuple[str, ...]:
    """`secret` raw and as repr() writes it inside a string quoted with ' or with "."""
    quoted = repr(secret)
    inner = quoted[1:-1]
    other = inner.replace("\\'", "'") if quoted[0] == "'" else inner.replace("'", "\\'")
    return secret, inner, other


class Redactor:
    """Masks configured secret values, JWTs, ``Bearer`` credentials, values written after a secret's
    name (``password=``, ``'pin': ``) and URL query strings.

    Secrets may be added at any time from any thread (session tokens exist only after login); the
    compiled pattern is swapped in one assignment so a concurrent `text` call sees the old or the new
    set, never a half-built one. Replacement repeats until nothing changes, so masking one secret can
    never splice a second one together; if that does not settle, the whole text becomes the mask.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._long: re.Pattern[str] | None = None
        # Short texts already masked under the current secrets (field names, symbols, accounts repeat on
        # every line): swapped with the pattern, so an entry is always from the pattern in force with it.
        self._masked: tuple[re.Pattern[str] | None, re.Pattern[str], dict[str, str]] = (None, _ANY_FIXED, {})
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Mask `secret` from now on. Blank values and values made only of mask characters are ignored."""
        if not secret or not secret.strip() or not secret.strip("*…"):
            return
        with self._lock:
            if secret in self._secrets:
                return
            secrets = self._secrets | {secret}
            # Also as it appears inside the repr() of a container (`log.info("%s", headers)`), under
            # either quote Python may choose. Longest first, so a secret containing another is masked whole.
            spelled = {form for s in secrets for form in _spellings(s)}
            ordered = sorted(spelled, key=len, reverse=True)
            parts = [re.escape(s) if len(s) >= _SHORT_SECRET else rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])"
                     for s in ordered]
            long = [re.escape(s) for s in ordered if len(s) >= _SHORT_SECRET]
            self._long = re.compile("|".join(long)) if long else None
            self._pattern = re.compile("|".join(parts))
            self._masked = (self._pattern, _any(self._pattern), {})
            self._secrets = secrets

    def __contains__(self, secret: object) -> bool:
        return secret in self._secrets

    def text(self, text: str) -> str:
        """`text` with every secret, JWT, ``Bearer`` and ``password=``-style value masked, URL queries cut."""
        pattern, anything, masked_before = self._masked
        if len(text) > _CACHED_LENGTH:
            return self._mask(pattern, text) if anything.search(text) else text
        masked = masked_before.get(text)
        if masked is None:
            if len(masked_before) >= _CACHED_TEXTS:
                masked_before.clear()
            # One search first: a text none of the patterns touches (nearly every one) is itself
            masked = masked_before[text] = self._mask(pattern, text) if anything.search(text) else text
        return masked

    @staticmethod
    def _mask(pattern: re.Pattern[str] | None, text: str) -> str:
        for _ in range(_PASSES):
            masked = text if pattern is None else pattern.sub(MASK, text)
            masked = _JWT.sub(MASK, masked)
            masked = _BEARER.sub("Bearer " + MASK, masked)
            masked = _NAMED_VALUE.sub(r"\1" + MASK, masked)
            masked = _URL_QUERY.sub(r"\1?…", masked)
            if masked == text:
                return text
            text = masked
        return MASK

    def value(self, value: Any, _depth: int = 0) -> Any:
        """A JSON-ready copy of `value`: strings masked, values under secret-named keys replaced."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int | float):
            return value if self.text(repr(value)) == repr(value) else MASK
        if _depth >= 8:
            return "…"
        if isinstance(value, Mapping):
            return {self.text(str(k)): self._field(str(k), v, _depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v, _depth + 1) for v in value]
        if isinstance(value, bytes | bytearray):
            return self.text(bytes(value).decode("utf-8", "replace"))
        try:  # structs, dataclasses, enums, datetimes, Decimals; unknown types as their str()
            plain = msgspec.to_builtins(value, enc_hook=str)
        except Exception:  # noqa: BLE001 — a log line must not fail because of an odd value
            return f"<{type(value).__name__}>"
        return self.value(plain, _depth + 1)

    def _field(self, key: str, value: Any, depth: int) -> Any:
        if value is not None and not (isinstance(value, str) and not value) and _secret_key(key):
            return MASK
        return self.value(value, depth)

    def leaks(self, line: str) -> bool:
        """Whether an encoded line spells a secret that none of its masked values held.

        JSON escaping can: a newline before ``abcdef`` is written ``\\nabcdef``. Short secrets are not
        checked, as they would match the time stamp.
        """
        long = self._long
        return long is not None and long.search(line) is not None


# Attributes every LogRecord has; anything else on a record came from the caller's `extra=`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName",
    "color_message",  # uvicorn's ANSI copy of `msg`
}
_WITHHELD = MASK + " (line withheld: its encoding spelled a secret)"
_OWN_KEYS = frozenset({"ts", "level", "logger", "msg", "exc", "stack"})
_encode = msgspec.json.Encoder().encode
# JSON leaves these unescaped, but str.splitlines() and JavaScript treat them as line ends.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class JsonFormatter(logging.Formatter):
    """One redacted JSON object per record (see the module docstring for the fields)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = self.fields(record)
        text = _encode(line).decode().translate(_LINE_BREAKS)
        if self.redactor.leaks(text):
            text = _encode({k: line[k] for k in ("ts", "level", "logger")}
                           | {"msg": _WITHHELD}).decode()
        return text

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record's fields, every one the caller controls redacted."""
        redact = self.redactor
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 — keep the line, say why its arguments are missing
            message = f"{record.msg} (log arguments did not format: {type(exc).__name__})"
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": redact.text(record.name),
            "msg": redact.text(message),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                name = redact.text(key)
                line[name + "_" if name in _OWN_KEYS else name] = redact._field(key, value, 0)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            # Cached masked, so a standard formatter that runs after this one reuses the masked text.
            record.exc_text = line["exc"] = redact.text(record.exc_text)
        if record.stack_info:
            line["stack"] = redact.text(self.formatStack(record.stack_info))
        return line


_BARE = re.compile(r"[^\s\"'=\\]+")


class TextFormatter(JsonFormatter):
    """The same fields, redacted the same way, as one readable line for a terminal:

        2026-12-05 14:02:03.123 INFO  tickguard.trades: trade 7 entry filled: BUY 10 SBIN-EQ at 800.05  trade_id=7 ...

    local time; the caller's fields as key=value (values with spaces quoted, empty ones left out); a
    traceback follows on indented lines."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        head = f"{stamp} {fields.pop('level'):<5} {fields.pop('logger')}: {_one_line(fields.pop('msg'))}"
        fields.pop("ts")
        trace = [fields.pop(key) for key in ("exc", "stack") if key in fields]
        pairs = " ".join(f"{key}={_shown(value)}" for key, value in fields.items() if value is not None and value != "")
        text = f"{head}  {pairs}" if pairs else head
        for block in trace:
            text += "\n" + "\n".join("    " + row for row in str(block).splitlines())
        if self.redactor.leaks(text):
            text = f"{head.split(': ', 1)[0]}: {_WITHHELD}"
        return text


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").translate(_LINE_BREAKS)


def _shown(value: Any) -> str:
    if isinstance(value, str) and _BARE.fullmatch(value):
        return _one_line(value)
    return _encode(value).decode().translate(_LINE_BREAKS)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def handleError(self, record: logging.LogRecord) -> None:
        # The stock handleError prints the record's raw msg and args to stderr: a leak.
        if logging.raiseExceptions:
            sys.stderr.write(f"tickguard.logs: a log line from {record.name} could not be written "
                             f"({type(sys.exc_info()[1]).__name__})\n")


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

# For `uvicorn.Config(log_config=UVICORN_LOG_CONFIG)`. Incremental, so uvicorn's dictConfig neither
# closes the root handler nor disables tickguard's loggers; it only keeps uvicorn's loggers propagating
# to the root JSON handler. The empty formatter entries absorb uvicorn writing `use_colors` into them.
UVICORN_LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "incremental": True,
    "formatters": {"default": {}, "access": {}},
    "loggers": {name: {"propagate": True} for name in UVICORN_LOGGERS},
}


def configure_logging(level: str | int, *, secrets: Iterable[str] = (), stream: IO[str] | None = None,
                      log_format: str = "json") -> Redactor:
    """Install the handler on the root logger and return its `Redactor`. `log_format` (LOG_FORMAT):
    json, text, or auto — text when the stream is a terminal, JSON otherwise.

    Calling again replaces the handler (new level and stream) but keeps the same `Redactor`, so secrets
    added at run time are never forgotten and a caller holding the redactor keeps feeding the live one.
    `stream` defaults to `sys.stderr` as it is at call time.
    """
    if isinstance(level, str):
        levels = logging.getLevelNamesMapping()
        if level.upper() not in levels:
            raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(sorted(levels))}")
        level = levels[level.upper()]
    root = logging.getLogger()
    redactor: Redactor | None = None
    for handler in list(root.handlers):
        if isinstance(handler, _JsonHandler):
            redactor = redactor or handler.formatter.redactor  # type: ignore[union-attr]
            root.removeHandler(handler)
    redactor = redactor or Redactor()
    for secret in secrets:
        redactor.add(secret)
    handler = _JsonHandler(stream if stream is not None else sys.stderr)
    if log_format == "auto":
        log_format = "text" if _is_terminal(handler.stream) else "json"
    if log_format not in ("json", "text"):
        raise ValueError(f"unknown log format {log_format!r}; expected json, text or auto")
    handler.setFormatter(TextFormatter(redactor) if log_format == "text" else JsonFormatter(redactor))
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for own in list(logger.handlers):
            logger.removeHandler(own)
        logger.propagate = True
    return redactor


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False
