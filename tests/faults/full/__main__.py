"""`python -m tests.faults.full [--only crash,sweep,hostile,schema,exits,backstop,cluster] [--rounds N] [--bodies N]
[--examples N] [--scenarios N] [--backstop-rounds N] [--cluster-rounds N]`: the full fault run.

Prints one table (figure, value, goal) and exits 1 when a zero-goal figure is not zero.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.full.tally import Tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.full", description=__doc__)
    parser.add_argument("--only", default="crash,sweep,hostile,schema,exits,backstop,cluster")
    parser.add_argument("--rounds", type=int, default=55, help="crash rounds (each one SIGKILL or more)")
    parser.add_argument("--trades", type=int, default=24, help="trades per sweep wave")
    parser.add_argument("--bodies", type=int, default=10_000, help="hostile bodies")
    parser.add_argument("--examples", type=int, default=600, help="schemathesis cases per operation and phase")
    parser.add_argument("--scenarios", type=int, default=3_000, help="exit scenarios on the model broker")
    parser.add_argument("--backstop-rounds", type=int, default=30,
                        help="broker-stop rounds (BROKER_STOP=backup, each one SIGKILL or more)")
    parser.add_argument("--cluster-rounds", type=int, default=30,
                        help="cluster rounds (a SIGKILL or a leader paused past its lease in each)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", help="keep the processes' databases and logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    parts = args.only.split(",")
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tickguard-faults-") as tmp:
        tmp = args.workdir or tmp
        for part in parts:
            workdir = Path(tmp) / part
            workdir.mkdir(parents=True)
            t0 = time.monotonic()
            if part == "crash":
                from tests.faults.full import crash
                crash.run(workdir, tally, args.rounds, args.seed)
            elif part == "sweep":
                from tests.faults.full import sweep
                sweep.run(workdir, tally, args.trades, args.seed)
            elif part == "hostile":
                from tests.faults.full import hostile
                hostile.run(workdir, tally, args.bodies, args.seed)
            elif part == "schema":
                from tests.faults.full import schema
                schema.run(workdir, tally, args.examples, args.seed)
            elif part == "exits":
                from tests.faults.full import exits
                exits.run(workdir, tally, args.scenarios, args.seed)
            elif part == "backstop":
                from tests.faults.full import backstop
                backstop.run(workdir, tally, args.backstop_rounds, args.seed)
            elif part == "cluster":
                from tests.faults.full import cluster
                cluster.run(workdir, tally, args.cluster_rounds, args.seed)
            else:
                parser.error(f"unknown part {part}")
            print(f"== {part}: {time.monotonic() - t0:.0f} s", flush=True)
    print(f"\nfull fault run ({', '.join(parts)}) in {time.monotonic() - started:.0f} s\n")
    print(tally.table())
    for finding in tally.findings:
        print(f"- {finding}")
    failed = tally.failed()
    if failed:
        print(f"\nNOT ZERO: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
