"""The architecture's rules, checked on every `make test`.

import-linter's contracts (pyproject.toml, `[tool.importlinter]`): `streams` imports nothing of
`service` or `paper`; `paper` nothing of `service`; no import cycle between the modules of any
package of the three, type-only imports included. The rules import-linter has no contract type for
are read here from grimp's import graph (the graph import-linter itself builds): the broker port and
its adapter import nothing else of `service`, the rest of `service` builds the adapter in one place
(`service.brokers`) and trades through the port, and within `service` only `service.web` knows
Starlette. And no module of the three packages is over 400 lines.
"""
from __future__ import annotations

import logging
from pathlib import Path

import grimp
import pytest
from importlinter import cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "streams", "paper")
MAX_LINES = 400


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=True)


def test_the_import_linter_contracts_are_kept(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):  # its dictConfig disables every logger it does not name: undone after
            monkeypatch.setattr(logger, "disabled", logger.disabled)
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, capsys.readouterr().out


def _imports_of(graph: grimp.ImportGraph, package: str) -> set[tuple[str, str]]:
    """(importer, imported) of every import made by the modules of `package`."""
    modules = {package} | graph.find_descendants(package)
    return {(importer, imported) for importer in modules for imported in graph.find_modules_directly_imported_by(importer)}


def test_the_broker_imports_nothing_else_of_service(graph):
    leaks = sorted((a, b) for a, b in _imports_of(graph, "service.broker")
                   if b.startswith("service.") and not b.startswith("service.broker"))
    assert leaks == [], "service.broker must stand alone (a port and its adapter): " + ", ".join(f"{a} -> {b}" for a, b in leaks)


def test_the_service_reaches_the_broker_through_its_port(graph):
    """The SmartAPI adapter is built in `service.brokers` alone; the model broker is for tests."""
    adapter = sorted(a for a, b in _imports_of(graph, "service") if b.startswith("service.broker.smartapi")
                     and not a.startswith("service.broker") and a != "service.brokers")
    model = sorted(a for a, b in _imports_of(graph, "service")
                   if b.startswith("service.broker.model") and not a.startswith("service.broker.model"))
    assert (adapter, model) == ([], []), f"the adapter imported by {adapter}, the model broker by {model}"


def test_only_service_web_imports_starlette(graph):
    importers = sorted(m for m in graph.find_modules_that_directly_import("starlette")
                       if m.split(".")[0] == "service" and not (m == "service.web" or m.startswith("service.web.")))
    assert importers == [], f"Starlette outside service.web: {importers}"


def test_the_rules_see_the_imports_they_judge(graph):
    """The graph is the real one: the web package does import Starlette, and the adapter the port."""
    assert "service.web.app" in graph.find_modules_that_directly_import("starlette")
    assert graph.direct_import_exists(importer="service.broker.smartapi.adapter", imported="service.broker.port")


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_400_lines(package):
    long = {str(path.relative_to(ROOT)): lines for path in sorted((ROOT / package).rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
