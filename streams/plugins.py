"""Operator plug-ins: their spec, and running them in isolation.

A plug-in is a factory that takes keyword arguments from settings and returns an operator,
`Callable[[Observable[A]], Observable[B]]`; the service imports and calls the factories named in its
settings (`service/plugins.py`), so nothing here touches the import system. Three stages take one:

    tick      Observable[Tick] -> Observable[Tick]          what the built-in rules see (a filter)
    signal    Observable[Tick | Clock | Output] -> Observable[ExitIntent]   extra exits (CUSTOM)
    observer  Observable[Output] -> Observable[Any]         side effects; the output is ignored

`Isolated` runs one operator on an input subject the engine owns. Whatever the plug-in does wrong —
raise while being applied or subscribed, raise while handling a value, send on_error, complete,
emit a value of the wrong type — it is unplugged and reported once, never retried; the pipeline
then routes around it (ticks go straight to the rules). Exceptions raised *downstream* of the
plug-in (by the engine) are not blamed on it: they are carried past the plug-in and re-raised.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import msgspec
from reactivex import Observable
from reactivex.abc import DisposableBase
from reactivex.subject import Subject

from .errors import PluginError
from .types import Operator

__all__ = ["Isolated", "Plugin", "PluginSpec", "Stage"]

Stage: TypeAlias = Literal["tick", "signal", "observer"]


class PluginSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A plug-in as settings name it: `{"factory": "pkg.mod:make", "stage": "tick", "kwargs": {...}}`."""

    factory: str
    stage: Stage
    kwargs: dict[str, Any] = {}
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Plugin:
    name: str
    stage: Stage
    operator: Operator[Any, Any]


class Isolated:
    """One plug-in operator applied to an input subject we own, with its failures contained."""

    def __init__(
        self,
        plugin: Plugin,
        output: type | tuple[type, ...],
        on_output: Callable[[Any], None],
        on_failure: Callable[[Plugin, PluginError], None],
    ) -> None:
        self.plugin = plugin
        self.alive = True
        self._output = output
        self._on_output = on_output
        self._on_failure = on_failure
        self._carried: BaseException | None = None
        self._subject: Subject[Any] = Subject()
        self._subscription: DisposableBase | None = None
        try:
            stream = plugin.operator(self._subject)
            if not isinstance(stream, Observable):
                raise TypeError(f"the operator returned {type(stream).__name__}, not an Observable")
            self._subscription = stream.subscribe(self._next, self._error, self._completed)
        except Exception as error:
            self._fail(repr(error))
        if not self.alive and self._subscription is not None:
            self._subscription.dispose()  # it failed while subscribing

    def push(self, item: Any) -> bool:
        """Send one value through the plug-in; False if it is (or just became) unplugged."""
        if not self.alive:
            return False
        try:
            self._subject.on_next(item)
        except Exception as error:
            if self._carried is None:
                self._fail(repr(error))
        if self._carried is not None:
            carried, self._carried = self._carried, None
            raise carried
        return self.alive

    def _next(self, item: Any) -> None:
        if not self.alive:
            return
        if not isinstance(item, self._output):
            self._fail(f"emitted a {type(item).__name__}")
            return
        try:
            self._on_output(item)
        except BaseException as error:  # the engine's own failure: carry it past the plug-in
            self._carried = error

    def _error(self, error: Exception) -> None:
        self._fail(repr(error))

    def _completed(self) -> None:
        self._fail("completed")

    def unplug(self, reason: str) -> None:
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        if not self.alive:
            return
        self.alive = False
        if self._subscription is not None:
            self._subscription.dispose()
        self._on_failure(self.plugin, PluginError(self.plugin.name, self.plugin.stage, reason))
