"""`streams/` is pure: it imports nothing of the service or the paper exchange, and never the import
system (the service imports the plug-ins settings name and hands the engine their operators)."""
from __future__ import annotations

import ast
from pathlib import Path

STREAMS = Path(__file__).resolve().parents[2] / "streams"
FORBIDDEN = ("service", "paper", "importlib", "os", "socket", "sqlite3", "asyncio", "time")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_streams_imports_no_service_no_paper_and_no_io():
    found = {str(path.relative_to(STREAMS)): sorted(imported(path) & set(FORBIDDEN))
             for path in sorted(STREAMS.rglob("*.py"))}
    assert {path: names for path, names in found.items() if names} == {}
