"""A full feed login on the wire stub: tickguard's tick→exit at stepped tick rates (`bench.latency_wire`).

The other side is the wire stub (`bench._wirestub`) with 3 000 instruments. tickguard (`bench._tickguard`,
`STREAM_SOCKETS=3`) guards 9 000 seeded trades, three on each instrument, so it subscribes all 3 000 and
spreads them over its three smart-stream connections (1 000 each). The stub's background price paths
(within +-0.5 %, never near a stop) cover every instrument but the crossing ones, written round-robin,
each frame stamped with the wall clock's ms as it is written (an instrument's stamps never go back).

At each rate, after a short settling: crossings one after another (`bench.latency_wire.cross`: a tick
one tick below one long trade's stop on one of 160 crossing instruments, answered by exactly that exit's
placeOrder, spaced so that no exit waits at the order pacer); the background's written rate over the
same window and the CPU each party used; then the background is paused and tickguard's tick counter
(`tickguard_ticks_total`) must come to the stub's count of every tick frame it wrote (first prices,
background, crossings): a shortfall is a lost tick. Its counter of ticks older than an earlier tick of
their instrument (`tickguard_ticks_older_total`) must stay 0. A rate holds when the stub wrote at least
97 % of it (tickguard reading fast enough for TCP not to hold the stub back), p99 <= 5 ms, nothing lost,
nothing out of order. Steps stop at the first rate that does not hold.
"""
from __future__ import annotations

import json
import random
import statistics
import time

import httpx

from bench import _procs
from bench._blaster import base_price, fake_token
from bench.common import Figure
from bench.latency import percentile
from bench._wirecross import TICK, WARMUP, Step, broker_requests, cross, crossing_steps, stub

TOKENS, PER_TOKEN, SOCKETS = 3_000, 3, 3
TRADES = TOKENS * PER_TOKEN
CROSSING = [2 * n for n in range(160)]  # even indexes: long trades only (a trade's side follows its index)
POINTS = 20  # per background path, cycled
P99_MS = 5.0
HELD_SHARE = 0.97


def config() -> dict:
    rng = random.Random(11)
    instruments = [["NSE", fake_token(n), f"BENCH{n}-EQ", base_price(n)] for n in range(TOKENS)]
    crossing = set(CROSSING)
    background = [["NSE", fake_token(n), [(base_price(n) + rng.randint(-base_price(n) // 200, base_price(n) // 200))
                                           // TICK * TICK for _ in range(POINTS)]]
                  for n in range(TOKENS) if n not in crossing]
    positions = [["NSE", fake_token(n), f"BENCH{n}-EQ", PER_TOKEN] for n in CROSSING]
    return {"instruments": instruments, "background": background, "positions": positions, "stamp": True}


def counters(api: httpx.Client) -> tuple[int, int]:
    """tickguard's (ticks received, ticks older than an earlier one of their instrument)."""
    values = {}
    for line in api.get("/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("tickguard_ticks_total", "tickguard_ticks_older_total"):
            values[name] = int(float(value))
    return values["tickguard_ticks_total"], values["tickguard_ticks_older_total"]


def settled(control: httpx.Client, api: httpx.Client, timeout: float = 6.0) -> tuple[int, int, int]:
    """With the background paused: (frames the stub wrote, ticks tickguard counted, older ticks), once the
    two counts meet or `timeout` passes (tickguard's counter is sampled once a second)."""
    written = control.get("/written").json()["all"]
    deadline = time.monotonic() + timeout
    while True:
        seen, older = counters(api)
        if seen >= written or time.monotonic() > deadline:
            return written, seen, older
        time.sleep(0.1)


def step(control: httpx.Client, api: httpx.Client, rate: int, plan: list[Step], settle_s: float,
         pids: dict[str, list[int]]) -> dict:
    control.post("/background", json={"rate": rate}).raise_for_status()
    time.sleep(settle_s)
    first = control.get("/written").json()
    before = broker_requests(control)
    with _procs.CpuMeter(pids) as cpu:
        samples = cross(control, plan, [s.tags for s in plan])
    after = broker_requests(control)
    last = control.get("/written").json()
    control.post("/background", json={"rate": 0}).raise_for_status()
    written = (last["frames"] - first["frames"]) / ((last["ns"] - first["ns"]) / 1e9)
    frames, seen, older = settled(control, api)
    p99 = percentile(samples, 0.99)
    held = written >= HELD_SHARE * rate and p99 <= P99_MS and seen == frames and older == 0
    others = {path: n - before.get(path, 0) for path, n in after.items()
              if n > before.get(path, 0) and not path.endswith("/placeOrder")}
    return {"rate": rate, "written": written, "samples": samples, "p50": statistics.median(samples), "p99": p99,
            "lost": frames - seen, "older": older, "held": held, "cpu": cpu, "others": others}


def full_feed(scratch, rates: list[int], counts: list[int], settle_s: float) -> tuple[list[dict], list[int]]:
    """The steps at `rates` (`counts[k]` measured crossings at the k-th; the last count for the rest), up to
    the first that does not hold, and the instruments on each of tickguard's sockets."""
    steps: list[dict] = []
    settings = config()
    seeds = scratch / "ceiling_seed_tokens.json"
    seeds.write_text(json.dumps(settings["instruments"]))
    seeded = scratch / "ceiling_seeded"
    with stub(scratch, settings) as wire, httpx.Client(base_url=f"{wire.url}/stub", timeout=15) as control:
        service = _procs.tickguard(scratch, wire.url, name="fullfeed", seed_trades=TRADES, seed_tokens=str(seeds),
                                   BENCH_SEEDED_FILE=str(seeded), STALE_TICK_S="600", BROKER_STOP="off",
                                   STREAM_SOCKETS=str(SOCKETS))
        with service, httpx.Client(base_url=service.url, headers=_procs.HEADERS, timeout=10) as api:
            _procs.wait_for(seeded.exists, f"{TRADES:,} trades armed", 300)
            sockets = _procs.wait_for(lambda: _subscribed(control), f"{TOKENS:,} instruments subscribed", 60)
            plan = _plan(api)
            wanted = [counts[min(k, len(counts) - 1)] + WARMUP for k in range(len(rates))]
            measured = [n for n, s in enumerate(plan) if s.measured]
            if len(measured) < sum(wanted):
                raise RuntimeError(f"only {len(measured)} crossings fire one exit each; {sum(wanted)} wanted")
            assert service.proc is not None and wire.proc is not None
            pids = {"tickguard": [service.proc.pid], "stub": [wire.proc.pid]}
            start, used = 0, 0
            for rate, count in zip(rates, wanted):
                used += count
                end = measured[used - 1] + 1
                steps.append(step(control, api, rate, plan[start:end], settle_s, pids))
                start = end
                if not steps[-1]["held"]:
                    break
    return steps, sockets  # type: ignore[return-value]


def _subscribed(control: httpx.Client) -> list[int] | None:
    sockets = control.get("/written").json()["sockets"]
    return sorted(sockets) if sum(sockets) >= TOKENS else None


def _plan(api: httpx.Client) -> list[Step]:
    """Every crossing instrument's long trades (all its trades), their stops read from tickguard."""
    stops: dict[str, list[tuple[int, int]]] = {}
    for index in CROSSING:
        for trade_id in range(index + 1, TRADES + 1, TOKENS):  # trade n (from 0) is id n + 1
            trade = api.get(f"/trades/{trade_id}").json()["trade"]
            if trade["side"] != "LONG" or trade["token"] != fake_token(index):
                raise RuntimeError(f"trade {trade_id} is not a long trade on {fake_token(index)}: {trade}")
            stops.setdefault(trade["token"], []).append((trade_id, trade["stop"]))
    return crossing_steps(stops)


def figures(steps: list[dict], sockets: list[int]) -> list[Figure]:
    held = [s["rate"] for s in steps if s["held"]]  # a prefix of the steps: they stop at the first not held
    out = [Figure(f"ceiling: instruments on each socket {sockets}", sum(sockets), "instruments")]
    for s in steps:
        verdict = "held" if s["held"] else "not held"
        out += [
            Figure(f"ceiling {s['rate']:,}/s: written ({verdict})", s["written"], "frames/s", s["rate"]),
            Figure(f"ceiling {s['rate']:,}/s: tick->exit p50 ({len(s['samples'])})", s["p50"], "ms"),
            Figure(f"ceiling {s['rate']:,}/s: tick->exit p99", s["p99"], "ms", None, f"<= {P99_MS:g} ms"),
            Figure(f"ceiling {s['rate']:,}/s: ticks lost", s["lost"], "ticks", None, "0"),
            Figure(f"ceiling {s['rate']:,}/s: ticks out of order", s["older"], "ticks", None, "0"),
            Figure(f"ceiling {s['rate']:,}/s: CPU tickguard", s["cpu"].busy("tickguard"), "% core"),
        ]
    out.append(Figure("ceiling: highest rate held, 3 sockets", held[-1] if held else 0, "ticks/s", None,
                      ">= 60000/s"))
    return out
