"""tick→exit against a minimal wire stub: tickguard's own share of the latency, and its ceiling.

`bench.latency` times tick→exit with the paper exchange on the other side: its figure includes the
exchange's own work on the same two cores (a Starlette app, its fill engine, its stream fan-out, its
price paths), and its placeOrder stamp is taken in the Starlette handler. Here the other side is
`bench._wirestub`, a process of its own that does nothing but write pre-encoded smart-stream frames and
stamp placeOrder as its request head is read (one clock, CLOCK_MONOTONIC, one process). Crossings as in
`bench._wirecross`.

Both runs have the stub's full feed (`bench._ceiling.config`): 3 000 instruments, background price paths
on every one but the 320 crossing ones, written round-robin at 20 000 frames/s in total to start with:

1. the floor (baseline): `bench._wireecho`, a bare client on tickguard's socket library
   (`TickConnection`), event loop and REST client, subscribed to every instrument on one socket, that
   answers each crossing frame with a placeOrder — frame written → POST arrived is what the rig itself
   (the stub, two loopback sockets, the socket library, aiohttp) costs;
2. tickguard (`bench._tickguard`, `PAPER_URL` at the stub) on a full feed login: 9 000 trades over the
   3 000 instruments, on three smart-stream sockets (`bench._ceiling`), at 20 000 ticks/s (the
   tick→exit figures against the floor) and then at higher rates, up to the first that does not hold
   (the ceiling). A crossing is on one of 160 instruments whose trades are all long (a seeded trade's
   side follows its index's parity, and so does its instrument's with an even count of instruments);
   the stub's positions give each its long units, so an exit is capped from the position book without
   asking the broker. A crossing tick sits one tick below one trade's stop and above every lower one: it
   fires exactly that exit (`tg<id>X1`); trades whose stops are too close to part are swept by one
   tick, not measured.

tickguard runs with STALE_TICK_S=600: the crossing frames are encoded before the measurement starts, so
their exchange time stamps are older than the default 5 s gate.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import httpx

from bench import _ceiling, _procs
from bench._blaster import base_price, fake_token
from bench._wirecross import FIRST_SEQUENCE, TICK, WARMUP, Step, cross, crossing_steps, stub, written_rate
from bench.common import Figure
from bench.latency import percentile

__all__ = ["TICK", "Step", "crossing_steps", "run"]

BACKGROUND_RATE = 20_000
RATES = [BACKGROUND_RATE, 40_000, 60_000, 80_000, 100_000, 120_000]


def floor(scratch, count: int, settle_s: float) -> tuple[list[float], float]:
    settings = _ceiling.config()
    tokens = scratch / "echo_tokens.json"
    tokens.write_text(json.dumps([token for _e, token, _s, _p in settings["instruments"]]))
    crossing = _ceiling.CROSSING
    plan = [Step(fake_token(crossing[n % len(crossing)]), base_price(crossing[n % len(crossing)]) - TICK * (n + 1),
                 (f"echo{n}",)) for n in range(count + WARMUP)]
    with stub(scratch, settings, "echostub") as wire, httpx.Client(base_url=f"{wire.url}/stub", timeout=15) as control:
        args = ["-m", "bench._wireecho", "--root", wire.url, "--tokens", str(tokens), "--first-sequence",
                str(FIRST_SEQUENCE)]
        with _procs.Process("wireecho", args, scratch, ready_text="subscribed"):
            control.post("/background", json={"rate": BACKGROUND_RATE}).raise_for_status()
            time.sleep(settle_s)
            samples = cross(control, plan, [step.tags for step in plan])
            rate = written_rate(control, settle_s)
    return samples, rate


def run(quick: bool) -> list[Figure]:
    counts, settle_s = ([16, 8], 0.5) if quick else ([128, 48], 1.0)
    rates = [BACKGROUND_RATE, 60_000] if quick else RATES
    with _procs.Scratch() as scratch:
        echo, echo_rate = floor(scratch, counts[0], settle_s)
        steps, sockets = _ceiling.full_feed(scratch, rates, counts, settle_s)
    first = steps[0]
    ms, cpu, others = first["samples"], first["cpu"], first["others"]
    return [
        Figure(f"wire stub: background written ({len(ms)} samples)", first["written"], "frames/s", echo_rate),
        Figure("wire stub: ticks lost by tickguard (of every frame)", first["lost"], "ticks", None, "0"),
        Figure("tick->exit p50, wire stub (vs bare client)", statistics.median(ms), "ms", statistics.median(echo),
               "<= 0.5 ms"),
        Figure("tick->exit p99, wire stub (vs bare client)", percentile(ms, 0.99), "ms", percentile(echo, 0.99),
               "<= 2 ms"),
        Figure("tick->exit max, wire stub (vs bare client)", max(ms), "ms", max(echo)),
        Figure(f"wire stub: other REST calls meanwhile {sorted(others) or ''}", sum(others.values()), "requests"),
        # CPU while crossing, in % of one core: how much of the machine the rig took, how much was left
        Figure("CPU while crossing: tickguard", cpu.busy("tickguard"), "% core"),
        Figure("CPU while crossing: the stub", cpu.busy("stub"), "% core"),
        Figure(f"CPU while crossing: machine of {100 * (os.cpu_count() or 1)} %", cpu.busy(), "% core"),
        *_ceiling.figures(steps, sockets),
    ]
