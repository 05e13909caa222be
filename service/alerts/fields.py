"""How a field of a request is read — one definition serving the validator and the OpenAPI schema.

A `Words` field is one of a few words, any case, with whitespace around it allowed; an `Amount` is a
JSON number in a range, or the same number written as plain decimal text (`"812.50"`, never `1e3`).
Each has a `read` (the value, or why not) and a `schema()` (the JSON Schema that admits exactly what
`read` accepts). Patterns are spelled in the subset of regular expressions that Python and ECMA 262
(JSON Schema's dialect) read alike: explicit character classes, no `\\s`, no `\\d`, no `$` before a
newline — so a value matches the schema exactly when the service accepts it.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Amount", "BILLION", "NON_BLANK", "SPACE", "Words", "anycase", "blank", "whole_pattern"]

# What `str.isspace()` (and so `str.strip()`) counts as whitespace, as a character class body.
SPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NON_BLANK = f"[^{SPACE}]"  # searched: a text with at least one character that is not whitespace
BILLION = Decimal("1e9")


def blank(value: str) -> bool:
    return re.search(NON_BLANK, value) is None


def anycase(word: str) -> str:
    """`word` as a pattern that ignores ASCII case (and nothing else: `ſ` is not an `s`)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else re.escape(c) for c in word)


def whole_pattern(core: str) -> str:
    """An anchored pattern matching `core` with optional whitespace around it."""
    return f"^[{SPACE}]*(?:{core})[{SPACE}]*$"


@dataclass(frozen=True)
class Words:
    """One of `words` (any ASCII case, whitespace around it ignored), or a text matching `extra`."""

    words: tuple[str, ...]
    upper: bool = False  # normalised to upper case (else lower)
    extra: str = ""  # another pattern core the value may match, e.g. a date
    label: str = ""  # how an error names what is expected (default: the words)

    @functools.cached_property
    def core(self) -> str:
        return "|".join([*(anycase(w) for w in self.words), *([self.extra] if self.extra else [])])

    @functools.cached_property
    def pattern(self) -> str:
        return whole_pattern(self.core)

    @functools.cached_property
    def _matcher(self) -> re.Pattern[str]:
        return re.compile(self.pattern[1:-1])  # without ^ and $: fullmatch anchors it

    def read(self, value: Any) -> str | None:
        """The normalised word, or None when `value` is not one."""
        if not isinstance(value, str) or self._matcher.fullmatch(value) is None:
            return None
        word = value.strip()
        return word.upper() if self.upper else word.lower()

    def schema(self, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "pattern": self.pattern, **extra}

    def describe(self) -> str:
        return self.label or ", ".join(self.words)


def _range_text(low: Decimal, high: Decimal, low_open: bool, high_open: bool) -> str:
    left = f"greater than {low:f}" if low_open else f"at least {low:f}"
    right = f"below {high}" if high_open else f"at most {high:f}"
    return f"{left} and {right}"


@dataclass(frozen=True)
class Amount:
    """A number in [low, high] (or open at either end), as a JSON number or as decimal text whose
    form `text` (a pattern core, signs and digits only) admits exactly the numbers in range."""

    text: str
    low: Decimal
    high: Decimal = BILLION
    low_open: bool = False
    high_open: bool = False
    whole: bool = False

    def read(self, value: Any) -> tuple[Decimal | None, str]:
        """(the number, "") or (None, why not)."""
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None, "expected a number"
        if isinstance(value, str):
            if re.fullmatch(whole_pattern(self.text)[1:-1], value) is None:
                return None, f"expected a number written as digits, got {value[:20]!r}"
            value = value.strip()
        try:
            number = Decimal(str(value))
        except InvalidOperation:  # pragma: no cover - every str/int/float spells a Decimal or a nan/inf
            return None, "expected a number"
        if not number.is_finite():
            return None, "expected a finite number"
        if self.whole and number != number.to_integral_value():
            return None, "expected a whole number"
        below = number <= self.low if self.low_open else number < self.low
        above = number >= self.high if self.high_open else number > self.high
        if below or above:
            return None, f"must be {_range_text(self.low, self.high, self.low_open, self.high_open)}"
        return number, ""

    def schema(self, **extra: Any) -> dict[str, Any]:
        bound = (lambda d: int(d) if d == d.to_integral_value() else float(d))
        number: dict[str, Any] = {"type": "integer" if self.whole else "number"}
        number["exclusiveMinimum" if self.low_open else "minimum"] = bound(self.low)
        number["exclusiveMaximum" if self.high_open else "maximum"] = bound(self.high)
        text = {"type": "string", "pattern": whole_pattern(self.text), "description": "the same number as decimal text"}
        return {"anyOf": [number, text], **extra}


# Decimal text, by range. `0*` then: a whole part with at most nine digits and any fraction, a bare
# fraction, or exactly 1 000 000 000.
_FRACTION = "(?:\\.[0-9]+)?"
_BILLION_TEXT = "1000000000(?:\\.0+)?"
PRICE = Amount(f"0*(?:[1-9][0-9]{{0,8}}{_FRACTION}|\\.(?:0[1-9]|[1-9])[0-9]*|{_BILLION_TEXT})", Decimal("0.01"))
POSITIVE = Amount(f"0*(?:[1-9][0-9]{{0,8}}{_FRACTION}|\\.[0-9]*[1-9][0-9]*|{_BILLION_TEXT})", Decimal(0),
                  low_open=True)
PERCENT = Amount(f"0*(?:[1-9][0-9]?{_FRACTION}|\\.[0-9]*[1-9][0-9]*)", Decimal(0), Decimal(100), low_open=True,
                 high_open=True)
SHARE = Amount(f"0*(?:[1-9][0-9]?{_FRACTION}|100(?:\\.0+)?|\\.[0-9]*[1-9][0-9]*)", Decimal(0), Decimal(100),
               low_open=True)  # a share of a position in percent: above 0, up to 100
SIGNED = Amount(f"-?0*(?:[0-9]{{1,9}}{_FRACTION}|\\.[0-9]+|{_BILLION_TEXT})", -BILLION)
WHOLE = Amount(f"0*(?:[1-9][0-9]{{0,8}}|1000000000)(?:\\.0+)?", Decimal(1), whole=True)

__all__ += ["PERCENT", "POSITIVE", "PRICE", "SHARE", "SIGNED", "WHOLE"]
