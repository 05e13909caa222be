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


def module_name(path: Path) -> str:
    parts = ("streams", *path.relative_to(STREAMS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_within_streams(path: Path, modules: set[str]) -> set[str]:
    """The modules of streams/ a module imports, type-only imports included (an import under
    `if TYPE_CHECKING:` is still an import to the layering)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" for alias in node.names]  # a name, or a module
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                found.add(target)
    return found


def test_no_module_of_streams_imports_itself_through_others():
    paths = {module_name(path): path for path in STREAMS.rglob("*.py")}
    graph = {module: imports_within_streams(path, set(paths)) - {module} for module, path in paths.items()}
    cycles = []
    for start in sorted(graph):
        seen, todo = set(), [(start, (start,))]
        while todo:
            module, chain = todo.pop()
            for imported in sorted(graph[module]):
                if imported == start:
                    cycles.append(" -> ".join((*chain, start)))
                elif imported not in seen:
                    seen.add(imported)
                    todo.append((imported, (*chain, imported)))
    assert cycles == []


def test_no_module_of_streams_is_past_400_lines():
    lengths = {str(path.relative_to(STREAMS)): len(path.read_text().splitlines()) for path in STREAMS.rglob("*.py")}
    assert {path: lines for path, lines in lengths.items() if lines > 400} == {}
