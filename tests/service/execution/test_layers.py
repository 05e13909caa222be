"""The execution package's layering: the Trader composes the parts and none of them imports it back
(no cycles, the 400-line limit and the broker port are `tests/test_architecture.py`'s)."""
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


def test_only_the_package_imports_the_trader():
    assert [name for name, others in graph().items() if "trader" in others] == []
    assert {"orders", "exits", "entries", "positions", "doubt"} <= set(graph()["trader"])
