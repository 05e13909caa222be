"""The ceiling: the highest tick rate, over a full feed login (3 sockets, 3 000 instruments), at which
tickguard's tick→exit p99 stays within 5 ms with no tick lost or out of order.

The other side is the wire stub (`bench._wirestub`, as in `bench.latency_wire`), with 3 000 instruments.
tickguard (`bench._tickguard`, `STREAM_SOCKETS=3`) guards 9 000 seeded trades, three on each instrument,
so it subscribes all 3 000 and spreads them over its three smart-stream connections (1 000 each). The
stub's background price paths (within +-0.5 %, never near a stop) cover every instrument but the
crossing ones, written round-robin, each frame stamped with the wall clock's ms as it is written (an
instrument's stamps never go back), at a total rate stepped up from 20 000 frames/s.

At each rate, after a short settling: crossings one after another (as in `bench.latency_wire`: a tick
one tick below one long trade's stop on one of 128 crossing instruments, answered by exactly that exit's
placeOrder), 0.12 s apart for each exit the one before fired (the order pacer's 10 a second); the
background's written rate over the same
window; then the background is paused and tickguard's tick counter (`tickguard_ticks_total`) must come
to the stub's count of every tick frame it wrote (first prices, background, crossings): a shortfall is
a lost tick. Its counter of ticks older than an earlier tick of their instrument
(`tickguard_ticks_older_total`) must stay 0. A rate holds when the stub wrote at least 97 % of it
(tickguard reading fast enough for TCP not to hold the stub back), p99 ≤ 5 ms, nothing lost, nothing
out of order. The ceiling printed is the highest rate that held, every lower one holding too; steps
stop at the first that does not.
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
from bench.latency_wire import FIRST_SEQUENCE, TICK, WARMUP, Step, cross, crossing_steps, stub

TOKENS, PER_TOKEN, SOCKETS = 3_000, 3, 3
TRADES = TOKENS * PER_TOKEN
CROSSING = [2 * n for n in range(128)]  # even indexes: long trades only (a trade's side follows its index)
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


def step(control: httpx.Client, api: httpx.Client, rate: int, plan: list[Step], settle_s: float) -> dict:
    control.post("/background", json={"rate": rate}).raise_for_status()
    time.sleep(settle_s)
    first = control.get("/written").json()
    samples = cross(control, plan, [s.tags for s in plan])
    last = control.get("/written").json()
    control.post("/background", json={"rate": 0}).raise_for_status()
    written = (last["frames"] - first["frames"]) / ((last["ns"] - first["ns"]) / 1e9)
    frames, seen, older = settled(control, api)
    p99 = percentile(samples, 0.99)
    held = written >= HELD_SHARE * rate and p99 <= P99_MS and seen == frames and older == 0
    return {"rate": rate, "written": written, "p50": statistics.median(samples), "p99": p99, "samples": len(samples),
            "lost": frames - seen, "older": older, "held": held}


def run(quick: bool) -> list[Figure]:
    rates = [20_000, 60_000] if quick else [20_000, 40_000, 60_000, 80_000, 100_000, 120_000]
    count, settle_s = (10, 0.5) if quick else (48, 1.0)
    steps: list[dict] = []
    with _procs.Scratch() as scratch:
        settings = config()
        seeds = scratch / "seed_tokens.json"
        seeds.write_text(json.dumps(settings["instruments"]))
        seeded = scratch / "seeded"
        with stub(scratch, settings) as wire, httpx.Client(base_url=f"{wire.url}/stub", timeout=15) as control:
            service = _procs.tickguard(scratch, wire.url, seed_trades=TRADES, seed_tokens=str(seeds),
                                       BENCH_SEEDED_FILE=str(seeded), STALE_TICK_S="600", BROKER_STOP="off",
                                       STREAM_SOCKETS=str(SOCKETS))
            with service, httpx.Client(base_url=service.url, headers=_procs.HEADERS, timeout=10) as api:
                _procs.wait_for(seeded.exists, f"{TRADES:,} trades armed", 300)
                sockets = _procs.wait_for(lambda: _subscribed(control), f"{TOKENS:,} instruments subscribed", 60)
                plan = _plan(api)
                per_step = count + WARMUP
                measured = [n for n, s in enumerate(plan) if s.measured]
                if len(measured) < per_step * len(rates):
                    raise RuntimeError(f"only {len(measured)} crossings fire one exit each; "
                                       f"{per_step * len(rates)} wanted")
                control.post("/plan", json={"frames": [["NSE", s.token, s.ltp, FIRST_SEQUENCE + n, int(time.time() * 1000)]
                                                       for n, s in enumerate(plan)]}).raise_for_status()
                start = 0
                for k, rate in enumerate(rates):
                    end = measured[per_step * (k + 1) - 1] + 1
                    steps.append(step(control, api, rate, plan[start:end], settle_s))
                    start = end
                    if not steps[-1]["held"]:
                        break
    return _figures(steps, sockets)


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


def _figures(steps: list[dict], sockets: list[int]) -> list[Figure]:
    held = [s["rate"] for s in steps if s["held"]]  # a prefix of the steps: they stop at the first not held
    figures = [Figure(f"ceiling: instruments on each socket {sockets}", sum(sockets), "instruments")]
    for s in steps:
        verdict = "held" if s["held"] else "not held"
        figures += [
            Figure(f"ceiling {s['rate']:,}/s: written ({verdict})", s["written"], "frames/s", s["rate"]),
            Figure(f"ceiling {s['rate']:,}/s: tick->exit p50 ({s['samples']})", s["p50"], "ms"),
            Figure(f"ceiling {s['rate']:,}/s: tick->exit p99", s["p99"], "ms", None, f"<= {P99_MS:g} ms"),
            Figure(f"ceiling {s['rate']:,}/s: ticks lost", s["lost"], "ticks", None, "0"),
            Figure(f"ceiling {s['rate']:,}/s: ticks out of order", s["older"], "ticks", None, "0"),
        ]
    figures.append(Figure("ceiling: highest rate held, 3 sockets", held[-1] if held else 0, "ticks/s", None,
                          ">= 60000/s"))
    return figures
