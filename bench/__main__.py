"""Run every benchmark: `python -m bench` (BENCH_QUICK=1 for a run under a minute)."""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import bench


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    only = set(sys.argv[1:])
    print(f"{'name':<48} {'value':>14} {'unit':<10} {'baseline':>14} {'ratio':>8}")
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name in ("common",) or info.name.startswith("_"):
            continue
        if only and info.name not in only:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        run = getattr(module, "run", None)
        if run is None:
            continue
        for figure in run(quick=quick):
            print(figure.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
