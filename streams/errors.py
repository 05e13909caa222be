"""Errors raised by the stop engine and its plug-in loader.

    StreamsError
    ├── RuleError            a stop/target/trail rule refused at arm time (field, reason)
    ├── PluginLoadError      a "package.module:factory" spec that cannot be loaded (spec, reason)
    └── PluginError          a plug-in that raised, completed or misbehaved at run time (name, stage, reason)

Inside the engine these never escape up the tick stream: they become `Refused` / `PluginFailed`
state changes. They are raised directly only by the pure helpers (`rules.levels`, `plugins.load`).
"""
from __future__ import annotations

__all__ = ["PluginError", "PluginLoadError", "RuleError", "StreamsError"]


class StreamsError(Exception):
    pass


class RuleError(StreamsError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PluginLoadError(StreamsError):
    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"plug-in {spec!r}: {reason}")
        self.spec = spec
        self.reason = reason


class PluginError(StreamsError):
    def __init__(self, name: str, stage: str, reason: str) -> None:
        super().__init__(f"{stage} plug-in {name!r}: {reason}")
        self.name = name
        self.stage = stage
        self.reason = reason
