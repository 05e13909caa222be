"""bench.__main__: the modules that share processes run first, the rest by name; an unknown name is refused."""
from __future__ import annotations

from bench import _shared
from bench.__main__ import main, modules


def test_the_sharers_run_first_then_the_rest_by_name():
    everything = modules(set())
    assert everything[:len(_shared.SHARERS)] == list(_shared.SHARERS)
    rest = everything[len(_shared.SHARERS):]
    assert rest == sorted(rest) and {"engine", "latency", "parser"} <= set(rest)
    assert not any(name.startswith("_") or name == "common" for name in everything)
    assert modules({"parser", "ingest", "alerts"}) == ["alerts", "ingest", "parser"]


def test_an_unknown_module_is_refused_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["bench", "parser", "no-such-bench"])
    assert main() == 2
    captured = capsys.readouterr()
    assert "no such benchmark: no-such-bench" in captured.err and captured.out == ""


def test_a_quick_run_leaves_whole_deployments_out_unless_named():
    assert "cluster" in modules(set()) and "cluster" not in modules(set(), quick=True)
    assert modules({"cluster", "parser"}, quick=True) == ["cluster", "parser"]
    assert modules(set(), quick=True) == [name for name in modules(set()) if name != "cluster"]
