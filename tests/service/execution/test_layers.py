"""The execution package's layering: no module imports one above it (type-only imports included),
the Trader is imported by the package alone, and the service reaches the broker only through its port."""
from __future__ import annotations

import ast
from pathlib import Path

import service.execution

PACKAGE = Path(service.execution.__file__).parent


def imports(path: Path) -> set[str]:
    """Every module `path` imports, wherever the import stands (inside `if TYPE_CHECKING` too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: {other for other in modules if f"service.execution.{other}" in imports(path)}
            for name, path in modules.items()}


def test_no_import_cycle_between_the_packages_modules():
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for other in edges[name]:
            visit(other, (*path, name))
        done.add(name)

    for name in edges:
        visit(name, ())


def test_only_the_package_imports_the_trader():
    assert [name for name, others in graph().items() if "trader" in others] == []
    assert {"orders", "exits", "entries", "positions", "doubt"} <= set(graph()["trader"])


def test_execution_reaches_the_broker_only_through_its_port():
    for path in PACKAGE.glob("*.py"):
        adapters = {name for name in imports(path) if name.startswith(("service.broker.smartapi", "service.broker.model"))}
        assert adapters == set(), path.name


def test_no_module_is_past_400_lines():
    assert {path.name: n for path in PACKAGE.glob("*.py") if (n := len(path.read_text().splitlines())) > 400} == {}
