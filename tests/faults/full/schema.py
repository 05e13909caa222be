"""tickguard against its own OpenAPI document at volume: schemathesis' own runner (as `st run` would)
with every check and every phase — explicit examples, coverage (boundary and invalid values of every
field), fuzzing, and the stateful phase that follows the document's links from an acknowledged
alert to `GET /trades/{id}` and `POST /trades/{id}/close`. tickguard and the paper exchange run as
processes; positive cases are kept inside the service's data by tests/faults/schema_hooks.py.

Figures: the cases generated go to "schema cases"; a failed check goes to "5xx seen" when it is
`not_a_server_error`, else to "schema failures" (goal 0), with schemathesis' own report kept in the
work directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.faults.full.procs import OPERATOR_TOKEN, SECRET, Paper, Tickguard
from tests.faults.full.tally import Tally

ROOT = Path(__file__).resolve().parents[3]


def run(workdir: Path, tally: Tally, examples: int = 600, seed: int = 11) -> None:
    paper = Paper(workdir).start()
    tg = Tickguard(workdir, paper.url, PRICE_SANITY_PCT="0").start()  # generated prices: the schema alone judges
    report = workdir / "schemathesis.json"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{tg.url}/openapi.json",
               "--header", f"X-Webhook-Secret: {SECRET}", "--header", f"Authorization: Bearer {OPERATOR_TOKEN}", "--checks", "all",
               "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(examples),
               "--seed", str(seed), "--workers", "1", "--request-timeout", "20", "--no-color",
               "--report", "json", "--report-json-path", str(report)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.faults.schema_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    try:
        with open(workdir / "schemathesis.log", "w") as log:
            subprocess.run(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=3600)
    finally:
        tg.stop()
        paper.stop()
    if not report.exists():
        tally.bad("schema failures", f"schemathesis wrote no report; see {workdir / 'schemathesis.log'}")
        return
    result = json.loads(report.read_text())
    tally.add("schema cases", result["test_cases"]["generated"])
    for failure in result["failures"]:
        name = "5xx seen" if failure["type"] == "ServerError" else "schema failures"
        tally.bad(name, f"{failure['code']} {failure['title']} x{failure['count']} on {', '.join(failure['operations'])}",
                  failure["count"])
    for error in result["errors"]:
        tally.bad("schema failures", f"error: {json.dumps(error)[:300]}")
    if not result["complete"]:
        tally.bad("schema failures", f"the run stopped early: {result['stop_reason']}")
    print(f"schema: {result['test_cases']['generated']} cases in {result['running_time']:.0f} s, "
          f"{len(result['failures'])} kinds of failure", flush=True)
