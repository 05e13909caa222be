"""Errors raised by the stop engine.

    StreamsError
    ├── RuleError            a stop/target/trail rule refused at arm time (field, reason)
    └── PluginError          a plug-in that raised, completed or misbehaved at run time (name, stage, reason)

Inside the engine these never escape up the tick stream: they become `Refused` / `PluginFailed`
state changes. They are raised directly only by the pure helpers (`rules.levels`).
"""
from __future__ import annotations

__all__ = ["PluginError", "RuleError", "StreamsError"]


class StreamsError(Exception):
    pass


class RuleError(StreamsError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PluginError(StreamsError):
    def __init__(self, name: str, stage: str, reason: str) -> None:
        super().__init__(f"{stage} plug-in {name!r}: {reason}")
        self.name = name
        self.stage = stage
        self.reason = reason
