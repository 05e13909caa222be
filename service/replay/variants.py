"""Rule variants: named stop/target/trail sets every trade is replayed with.

A variants file is a JSON object of named rule sets in the shape `STRATEGIES_FILE` gives a strategy's
rules (`stoploss`, `target`, `trail`; `docs/strategies` in the README):

    {
      "points5": {"stoploss": {"type": "points", "value": 5}},
      "pct0.8":  {"stoploss": {"type": "entry_pct", "value": 0.8}, "target": {"type": "entry_pct", "value": 1.6}},
      "trail3":  {"stoploss": {"type": "points", "value": 5},
                  "trail": {"type": "points", "value": 3, "activation": {"type": "points", "value": 4}}},
      "wider":   {"extends": "live", "stoploss": {"type": "points", "value": 10}}
    }

A variant replaces a trade's rules with its own (a rule it leaves out: none). With `"extends": "live"`
it starts from each trade's own recorded rules and replaces only the rules it names (`null` removes
one). `rupees` and `fund_pct` rules divide by the trade's filled quantity. The variant `live` — each
trade's own recorded rules — is always played first; a file may not define it.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from service.replay.errors import VariantsError
from service.trades import TradeRecord

__all__ = ["LIVE", "Variant", "load_variants", "parse_variants"]

LIVE = "live"
STOP_TYPES = ("points", "entry_pct", "rupees", "fund_pct")
TRAIL_TYPES = ("points", "entry_pct")


class _Distance(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    value: Decimal


class _Trail(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    value: Decimal
    activation: _Distance | None = None


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    extends: Literal["live"] | None = None
    stoploss: _Distance | None | msgspec.UnsetType = msgspec.UNSET
    target: _Distance | None | msgspec.UnsetType = msgspec.UNSET
    trail: _Trail | None | msgspec.UnsetType = msgspec.UNSET


class Variant(msgspec.Struct, frozen=True):
    """A rule set by name. `rules` are the engine's (`stop`, `target`, `trail`) as a trade's spec
    keeps them; `extends_live` keeps a trade's own rule where `rules` has no entry."""

    name: str
    rules: dict[str, Any] = {}
    extends_live: bool = False

    def rules_for(self, record: TradeRecord) -> dict[str, Any]:
        if self.name == LIVE:
            return dict(record.spec.rules)
        base = dict(record.spec.rules) if self.extends_live else {"stop": None, "target": None, "trail": None}
        base.update(self.rules)
        return base

    def apply(self, record: TradeRecord) -> TradeRecord:
        """The trade with this variant's rules in its spec (what `engine_trade` arms)."""
        if self.name == LIVE:
            return record
        spec = msgspec.structs.replace(record.spec, rules=self.rules_for(record), rule_source=f"variant {self.name}")
        return msgspec.structs.replace(record, spec=spec)


def _distance(spec: _Distance, field: str, types: tuple[str, ...], problems: list[str]) -> dict[str, Any]:
    if spec.type not in types:
        problems.append(f"{field}.type: expected one of {', '.join(types)}, got {spec.type!r}")
    if spec.value <= 0 and not field.endswith("activation"):
        problems.append(f"{field}.value: must be > 0")
    if spec.value < 0:
        problems.append(f"{field}.value: must be >= 0")
    if spec.type in ("entry_pct", "fund_pct") and spec.value >= 100:
        problems.append(f"{field}.value: a percentage below 100")
    return {"type": spec.type, "value": str(spec.value)}


def _variant(name: str, raw: Any) -> tuple[Variant | None, list[str]]:
    try:
        spec = msgspec.convert(raw, _Spec)
    except msgspec.ValidationError as exc:
        return None, [f"{name}: {exc}"]
    problems: list[str] = []
    rules: dict[str, Any] = {}
    for field, engine_field in (("stoploss", "stop"), ("target", "target")):
        value = getattr(spec, field)
        if value is not msgspec.UNSET:
            rules[engine_field] = None if value is None else _distance(value, field, STOP_TYPES, problems)
    if spec.trail is not msgspec.UNSET:
        trail = spec.trail
        if trail is None:
            rules["trail"] = None
        else:
            offset = _distance(_Distance(trail.type, trail.value), "trail", TRAIL_TYPES, problems)
            activation = None
            if trail.activation is not None:
                activation = _distance(trail.activation, "trail.activation", TRAIL_TYPES, problems)
            rules["trail"] = {**offset, "activation": activation}
    if not spec.extends and not any(rules.get(k) for k in ("stop", "target", "trail")):
        problems.append("no stoploss, target or trail: the trades would never exit by a rule")
    return Variant(name, rules, spec.extends == LIVE), [f"{name}: {p}" for p in problems]


def parse_variants(raw: Any, where: str = "variants") -> list[Variant]:
    """`live` first, then the file's variants in its order. Raises VariantsError with every problem."""
    if not isinstance(raw, dict):
        raise VariantsError(where, ["expected a JSON object of named rule sets"])
    variants = [Variant(LIVE)]
    problems: list[str] = []
    for name, spec in raw.items():
        if name == LIVE:
            problems.append("live: reserved for each trade's own recorded rules (always played)")
            continue
        if not name.strip() or "," in name:
            problems.append(f"{name!r}: a name is non-empty text without commas")
            continue
        variant, found = _variant(name, spec)
        problems.extend(found)
        if variant is not None and not found:
            variants.append(variant)
    if problems:
        raise VariantsError(where, problems)
    return variants


def load_variants(path: str | Path | None) -> list[Variant]:
    """The variants of a JSON file; only `live` without one."""
    if path is None:
        return [Variant(LIVE)]
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise VariantsError(str(path), [str(exc)]) from None
    return parse_variants(raw, str(path))
