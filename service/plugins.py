"""Operator plug-ins named in settings: `PLUGINS` checked with the other settings, loaded at start.

    PLUGINS       [{"stage": "tick"|"signal"|"observer", "factory": "pkg.mod:factory", "kwargs": {...},
                    "name": "optional"}, ...]
    PLUGINS_PATH  a directory of your own plug-in modules, searched after the installed packages

`plugin_problems` checks the shape of every entry without running anything (load_settings calls it);
`load_plugins` imports each factory, calls it with its kwargs and applies the operator it returns once
to an empty subject (so a factory that returns the wrong thing is refused here, not at the first
tick). Every problem names its entry — 1-based position and factory — and all are reported at once as
a `SettingsError`. What happens to a plug-in at run time is `streams/plugins.py`'s business;
`PluginBoard` keeps what the dashboard shows of it (running or unplugged, ticks withheld).
"""
from __future__ import annotations

import importlib
import json
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from reactivex import Observable
from reactivex.subject import Subject

from service.errors import SettingsError
from streams import Plugin, PluginFailed, PluginSpec, PluginWithheld

if TYPE_CHECKING:
    from service.metrics import Metrics

__all__ = ["LoadedPlugin", "PluginBoard", "load_plugins", "parse_plugins", "plugin_problems"]

log = logging.getLogger("tickguard.plugins")

STAGES = ("tick", "signal", "observer")
FIELDS = ("factory", "stage", "kwargs", "name")
_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
FACTORY = re.compile(rf"^{_DOTTED}:{_DOTTED}$")


@dataclass
class LoadedPlugin:
    """One entry of PLUGINS, loaded, and what has become of it since."""

    position: int  # 1-based, as messages name it
    spec: PluginSpec
    plugin: Plugin
    unplugged: str | None = None  # why, once the engine unplugged it
    withheld: int = 0  # crossing ticks it held back that the engine then ran the rules on

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def stage(self) -> str:
        return self.spec.stage

    @property
    def factory(self) -> str:
        return self.spec.factory

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.spec.kwargs

    def view(self) -> dict[str, Any]:
        """What the dashboard shows (no kwargs: they may hold a plug-in's own credentials)."""
        return {"position": self.position, "name": self.name, "stage": self.stage, "factory": self.factory,
                "state": "unplugged" if self.unplugged else "running", "error": self.unplugged,
                "withheld": self.withheld}


def _entry(position: int, factory: object) -> str:
    return f"entry {position} ({factory})" if isinstance(factory, str) and factory else f"entry {position}"


def _entry_problems(entry: object) -> list[str]:
    if not isinstance(entry, dict):
        return [f"expected an object like {{\"stage\": \"tick\", \"factory\": \"package.module:factory\"}}, "
                f"got {type(entry).__name__}"]
    found = []
    for key in entry:
        if key not in FIELDS:
            found.append(f"unknown field {key!r} (known: {', '.join(FIELDS)})")
    factory = entry.get("factory")
    if factory is None:
        found.append("factory: required")
    elif not isinstance(factory, str) or not FACTORY.match(factory):
        found.append(f'factory: expected "package.module:factory", got {factory!r}')
    stage = entry.get("stage")
    if stage is None:
        found.append("stage: required")
    elif stage not in STAGES:
        found.append(f'stage: expected "tick", "signal" or "observer", got {stage!r}')
    if not isinstance(entry.get("kwargs", {}), dict):
        found.append("kwargs: expected an object of keyword arguments")
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or "," in name):
        found.append("name: expected a non-empty string without commas")
    return found


def parse_plugins(raw: str) -> tuple[list[PluginSpec], list[str]]:
    """The entries of PLUGINS and every problem with their shape (each naming its entry)."""
    if not raw.strip():
        return [], []
    try:
        entries = json.loads(raw)
    except ValueError as error:
        return [], [f"not valid JSON: {error}"]
    if not isinstance(entries, list):
        return [], [f"expected a JSON list of plug-ins, got a JSON {type(entries).__name__}"]
    specs: list[PluginSpec] = []
    problems: list[str] = []
    named: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        found = _entry_problems(entry)
        where = _entry(position, entry.get("factory") if isinstance(entry, dict) else None)
        if not found:
            spec = msgspec.convert(entry, PluginSpec)
            name = spec.name or spec.factory
            if name in named:
                found.append(f"name: entry {named[name]} is already called {name!r}; give one a \"name\"")
            else:
                named[name] = position
                specs.append(spec)
        problems.extend(f"{where}: {problem}" for problem in found)
    return specs, problems


def plugin_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """PLUGINS and PLUGINS_PATH as load_settings reports them: shape only, nothing is imported."""
    _, found = parse_plugins(values.get("plugins", ""))
    problems = [("PLUGINS", problem) for problem in found]
    path = values.get("plugins_path", "")
    if path and not Path(path).is_dir():
        problems.append(("PLUGINS_PATH", f"not a directory: {path}"))
    return problems


def _import(module_name: str, plugins_path: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the module was found; something it imports was not
        where = (f"not installed, nor in PLUGINS_PATH {plugins_path}" if plugins_path
                 else "not installed; set PLUGINS_PATH to the directory that holds it")
        raise ModuleNotFoundError(f"{error} ({where})", name=missing) from None


def _load(spec: PluginSpec, plugins_path: str) -> Plugin:
    """Import the factory, call it, apply its operator once. Raises ValueError(reason)."""
    module_name, _, attr_path = spec.factory.partition(":")
    try:
        target: Any = _import(module_name, plugins_path)
    except (Exception, SystemExit) as error:  # a user's module may fail to import in any way
        raise ValueError(f"cannot import {module_name}: {type(error).__name__}: {error}") from error
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ValueError(f"{module_name} has no attribute {attr_path}") from None
    if not callable(target):
        raise ValueError(f"{attr_path} is not callable")
    try:
        operator = target(**spec.kwargs)
    except Exception as error:
        raise ValueError(f"the factory raised {type(error).__name__}: {error}") from error
    if not callable(operator):
        raise ValueError(f"the factory returned a {type(operator).__name__}, not an operator")
    try:
        applied = operator(Subject())  # not subscribed: no value flows, so nothing of the plug-in runs
    except Exception as error:
        raise ValueError(f"the operator raised {type(error).__name__}: {error}") from error
    if not isinstance(applied, Observable):
        raise ValueError(f"the operator returned a {type(applied).__name__}, not an Observable")
    return Plugin(spec.name or spec.factory, spec.stage, operator)


class PluginSettings(Protocol):
    """The two settings plug-ins are loaded from (`service.settings.Settings` has them)."""
    @property
    def plugins(self) -> str: ...  # PLUGINS
    @property
    def plugins_path(self) -> str: ...  # PLUGINS_PATH


def load_plugins(settings: PluginSettings) -> list[LoadedPlugin]:
    """Every plug-in of PLUGINS, in order; a SettingsError listing every entry that cannot be loaded."""
    specs, found = parse_plugins(settings.plugins)
    if found:  # load_settings refuses these; settings built by hand may still carry them
        raise SettingsError([("PLUGINS", problem) for problem in found])
    if not specs:
        return []
    plugins_path = ""
    if settings.plugins_path:
        plugins_path = str(Path(settings.plugins_path).resolve())
        if plugins_path not in sys.path:
            sys.path.append(plugins_path)  # after the installed packages: a module of yours cannot replace one
        importlib.invalidate_caches()
    loaded: list[LoadedPlugin] = []
    problems: list[tuple[str, str]] = []
    for position, spec in enumerate(specs, start=1):
        try:
            loaded.append(LoadedPlugin(position, spec, _load(spec, plugins_path)))
        except ValueError as error:
            problems.append(("PLUGINS", f"{_entry(position, spec.factory)}: {error}"))
    if problems:
        raise SettingsError(problems)
    return loaded


@dataclass
class PluginBoard:
    """The loaded plug-ins and their fate: the guard hands it `PluginFailed` and `PluginWithheld`."""

    plugins: list[LoadedPlugin]
    metrics: Metrics | None = None
    announce: Callable[[str, dict[str, Any]], None] | None = None
    _by_name: dict[str, LoadedPlugin] = field(init=False)

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.plugins}
        if self.metrics is not None:
            self.metrics.set_plugins([(p.name, p.stage, p.factory) for p in self.plugins])

    @property
    def operators(self) -> list[Plugin]:
        return [p.plugin for p in self.plugins]

    def views(self) -> list[dict[str, Any]]:
        return [p.view() for p in self.plugins]

    def on_change(self, change: PluginFailed | PluginWithheld) -> None:
        plugin = self._by_name.get(change.name)
        if type(change) is PluginFailed:
            log.error("plug-in unplugged: the rules go on without it",
                      extra={"plugin": change.name, "stage": change.stage, "error": change.error})
            if plugin is not None:
                plugin.unplugged = change.error
            if self.metrics is not None:
                self.metrics.plugin_unplugged(change.name)
            self._announce("plugin_failed", {"name": change.name, "stage": change.stage, "error": change.error})
        else:
            log.warning("a tick stage held back a crossing tick: the rules ran on it",
                        extra={"plugin": change.name, "token": change.token, "ltp": change.tick.ltp})
            # `name` lists the live tick stages ("a,b"): each is counted, as any of them may have held it.
            for name in change.name.split(","):
                held = self._by_name.get(name)
                if held is not None:
                    held.withheld += 1
                if self.metrics is not None:
                    self.metrics.count_plugin_withheld(name)
            self._announce("plugin_withheld", {"name": change.name, "token": change.token, "ltp": change.tick.ltp})

    def _announce(self, kind: str, data: dict[str, Any]) -> None:
        if self.announce is None:
            return
        try:
            self.announce(kind, data)
        except Exception:  # a listener must never break the tick path (and the log has the news)
            log.exception("could not announce a plug-in's change", extra={"event": kind})
