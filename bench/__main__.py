"""Run every benchmark: `python -m bench [module ...]` (BENCH_QUICK=1 for the short run).

A quick run leaves out `FULL_RUN_ONLY` (whole deployments) unless they are named.
The modules that share processes (`bench._shared.SHARERS`) run first, one after the other, on one
set of shared processes, stopped before the others run; then the rest, in name order. Each module's
wall time, and the whole run's, is printed at the end.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
import time

import bench
from bench import _shared


# Whole deployments (13 processes and more): in a quick run only when named.
FULL_RUN_ONLY = ("cluster",)


def modules(only: set[str], quick: bool = False) -> list[str]:
    """The benchmark modules to run, in the order they run: the sharers first, then the rest by name."""
    names = sorted(info.name for info in pkgutil.iter_modules(bench.__path__)
                   if info.name != "common" and not info.name.startswith("_") and (not only or info.name in only)
                   and (only or not quick or info.name not in FULL_RUN_ONLY))
    return [name for name in _shared.SHARERS if name in names] + [name for name in names if name not in _shared.SHARERS]


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    only = set(sys.argv[1:])
    unknown = only - set(modules(set()))
    if unknown:
        print(f"no such benchmark: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    print(f"{'name':<48} {'value':>14} {'unit':<10} {'baseline':>14} {'ratio':>8}")
    names = modules(only, quick)
    left = [name for name in FULL_RUN_ONLY if quick and not only]
    if left:
        print(f"(quick run: {', '.join(left)} in the full run only; `BENCH_QUICK=1 python -m bench "
              f"{' '.join(left)}` runs its quick form)", flush=True)
    sharers = [name for name in names if name in _shared.SHARERS]
    walls: list[tuple[str, float]] = []
    started = time.perf_counter()
    with contextlib.ExitStack() as services:
        if len(sharers) > 1:
            services.enter_context(_shared.opened())
        for name in names:
            began = time.perf_counter()
            run = getattr(importlib.import_module(f"bench.{name}"), "run", None)
            if run is not None:
                for figure in run(quick=quick):
                    print(figure.line(), flush=True)
            if sharers and name == sharers[-1]:
                services.close()  # the shared processes go before the others run
            walls.append((name, time.perf_counter() - began))
    total = time.perf_counter() - started
    print(f"\n{'module':<16} {'wall s':>8}")
    for name, seconds in walls:
        print(f"{name:<16} {seconds:>8.1f}")
    print(f"{'total':<16} {total:>8.1f}  ({'quick' if quick else 'full'} run, nproc {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
