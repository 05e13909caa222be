"""tick→exit against a minimal wire stub: tickguard's own share of the latency.

`bench.latency` times tick→exit with the paper exchange on the other side: its figure includes the
exchange's own work on the same two cores (a Starlette app, its fill engine, its stream fan-out, its
price paths), and its placeOrder stamp is taken in the Starlette handler. Here the other side is
`bench._wirestub`, a process of its own that does nothing but write pre-encoded smart-stream frames and
stamp placeOrder as its request head is read (one clock, CLOCK_MONOTONIC, one process).

Two runs, the same stub and the same load each time:

1. the floor (baseline): `bench._wireecho`, a bare client on tickguard's socket library, event loop and
   REST client, that answers each crossing frame with a placeOrder — frame written → POST arrived is
   what the rig itself (the stub, two loopback sockets, `websockets`, aiohttp) costs;
2. tickguard (`bench._tickguard`, `PAPER_URL` at the stub) guarding 10 000 trades over 1 000 tokens,
   seeded at start. Every crossing is on one of 16 tokens whose trades are all long (a seeded trade's
   side follows its index's parity, and so does its token's with an even count of tokens); the stub's
   positions give each of those tokens its long units, so an exit is capped from the position book
   without asking the broker. A crossing tick sits one tick below one trade's stop and above every
   lower one: it fires exactly that exit (`tg<id>X1`). Trades whose stops are too close to part are
   swept by one tick, not measured.

Background in both: price paths on 20 other instruments (walking within +-0.5 %, never near a stop)
at 20 000 frames/s in total, switched on once tickguard has armed its trades. Crossings are 0.12 s apart
for each exit the one before fired (the order pacer's 10 orders/s per segment: a step that swept three
trades is followed by 0.36 s, or the next exit would wait its turn at the pacer and be measured as
tickguard's latency). Every subscribed token gets its price on subscription, as
from a broker; with BENCH_WIRE_PRIMED=ticking only the 36 that tick do. tickguard runs with
STALE_TICK_S=600: every frame is encoded before the measurement starts, so its exchange time stamp is
older than the default 5 s gate.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import time
from dataclasses import dataclass

import httpx

from bench import _procs
from bench._blaster import base_price, fake_token
from bench.common import Figure
from bench.ingest import service_rate
from bench.latency import base36, percentile

TRADES, TOKENS = 10_000, 1_000
CROSSING = [2 * n for n in range(16)]  # even indexes: long trades only
BACKGROUND = [501 + n for n in range(20)]
BACKGROUND_RATE = 20_000
POINTS = 1_000  # per background path, cycled
SPACING_S = 0.12
WARMUP = 2  # crossings answered but not counted (the first opens the REST connection)
FIRST_SEQUENCE = 1_000_000_000
TICK = 5


@dataclass(frozen=True, slots=True)
class Step:
    """One crossing tick and the exits it must fire; measured when it fires exactly one."""

    token: str
    ltp: int
    tags: tuple[str, ...]

    @property
    def measured(self) -> bool:
        return len(self.tags) == 1


def crossing_steps(stops: dict[str, list[tuple[int, int]]]) -> list[Step]:
    """Per token (its long trades' (trade id, stop)), ticks one tick below each stop in turn, from the
    highest: each fires every trade still armed whose stop it reaches. Tokens take turns."""
    per_token = []
    for token, trades in stops.items():
        left = sorted(trades, key=lambda trade: -trade[1])
        steps = []
        while left:
            ltp = left[0][1] - TICK
            fired = [trade_id for trade_id, stop in left if stop >= ltp]
            steps.append(Step(token, ltp, tuple(f"tg{base36(trade_id)}X1" for trade_id in fired)))
            left = left[len(fired):]
        per_token.append(steps)
    return [step for turn in zip(*_padded(per_token)) for step in turn if step is not None]


def _padded(lists: list[list]) -> list[list]:
    longest = max((len(items) for items in lists), default=0)
    return [items + [None] * (longest - len(items)) for items in lists]


def config() -> dict:
    rng = random.Random(5)
    instruments = [["NSE", fake_token(n), f"BENCH{n}-EQ", base_price(n)] for n in range(TOKENS)]
    per_token = TRADES // TOKENS
    background = [["NSE", fake_token(n), [(base_price(n) + rng.randint(-base_price(n) // 200, base_price(n) // 200))
                                           // TICK * TICK for _ in range(POINTS)]] for n in BACKGROUND]
    positions = [["NSE", fake_token(n), f"BENCH{n}-EQ", per_token] for n in CROSSING]
    settings = {"instruments": instruments, "background": background, "positions": positions}
    if os.environ.get("BENCH_WIRE_PRIMED") == "ticking":  # only the instruments that tick get a first price
        settings["primed"] = [fake_token(n) for n in CROSSING + BACKGROUND]
    return settings


def stub(scratch, settings: dict | None = None) -> _procs.Process:
    """The wire stub on a free port, with `settings` (default: this benchmark's `config()`)."""
    port = _procs.free_port()
    (scratch / "stub.json").write_text(json.dumps(settings or config()))
    process = _procs.Process("wirestub", ["-m", "bench._wirestub", "--port", str(port), "--config",
                                          str(scratch / "stub.json")], scratch, ready_text="ready")
    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return process


def cross(control: httpx.Client, plan: list[Step], tags: list[tuple[str, ...]]) -> list[float]:
    """Each step's frame written, then its exits waited for; ms from written to placeOrder arrived, of the
    measured steps."""
    reply = control.post("/plan", json={"frames": [["NSE", step.token, step.ltp, FIRST_SEQUENCE + n,
                                                    int(time.time() * 1000)] for n, step in enumerate(plan)]})
    reply.raise_for_status()
    samples, last, gap = [], 0.0, SPACING_S
    for n, (step, expected) in enumerate(zip(plan, tags)):
        time.sleep(max(0.0, last + gap - time.perf_counter()))
        last = time.perf_counter()
        gap = SPACING_S * len(expected)  # a step that fired k exits spent k of the pacer's 10 orders a second
        written = control.post(f"/cross/{n}").json()
        if written["sockets"] != 1:
            raise RuntimeError(f"crossing frame {n} ({step.token}) went to {written['sockets']} sockets, not one")
        arrived = control.get("/wait", params={"tags": ",".join(expected), "timeout": "10"})
        if arrived.status_code != 200:
            raise RuntimeError(f"no exit for crossing {n} ({step}): {arrived.text}")
        if step.measured:
            samples.append((arrived.json()["orders"][expected[0]] - written["written_ns"]) / 1e6)
    return samples[WARMUP:]


def written_rate(control: httpx.Client, seconds: float = 1.0) -> float:
    first = control.get("/written").json()
    time.sleep(seconds)
    second = control.get("/written").json()
    return (second["frames"] - first["frames"]) / ((second["ns"] - first["ns"]) / 1e9)


def floor(scratch, count: int, settle_s: float = 1.0) -> tuple[list[float], float]:
    tokens = scratch / "echo_tokens.json"
    tokens.write_text(json.dumps([fake_token(n) for n in CROSSING + BACKGROUND]))
    plan = [Step(fake_token(CROSSING[n % len(CROSSING)]), base_price(CROSSING[n % len(CROSSING)]) - TICK * (n + 1),
                 (f"echo{n}",)) for n in range(count + WARMUP)]
    with stub(scratch) as wire, httpx.Client(base_url=f"{wire.url}/stub", timeout=15) as control:
        args = ["-m", "bench._wireecho", "--root", wire.url, "--tokens", str(tokens), "--first-sequence",
                str(FIRST_SEQUENCE)]
        with _procs.Process("wireecho", args, scratch, ready_text="subscribed"):
            control.post("/background", json={"rate": BACKGROUND_RATE}).raise_for_status()
            time.sleep(settle_s)
            samples = cross(control, plan, [step.tags for step in plan])
            rate = written_rate(control, settle_s)
    return samples, rate


def tickguard(scratch, count: int, settle_s: float = 1.0) -> tuple[list[float], float, float, dict[str, int], _procs.CpuMeter]:
    seeds = scratch / "seed_tokens.json"
    seeds.write_text(json.dumps(config()["instruments"]))
    seeded = scratch / "seeded"
    with stub(scratch) as wire, httpx.Client(base_url=f"{wire.url}/stub", timeout=15) as control:
        service = _procs.tickguard(scratch, wire.url, seed_trades=TRADES, seed_tokens=str(seeds),
                                   BENCH_SEEDED_FILE=str(seeded), STALE_TICK_S="600", BROKER_STOP="off")
        with service, httpx.Client(base_url=service.url, headers=_procs.HEADERS, timeout=10) as api:
            _procs.wait_for(seeded.exists, "10 000 trades armed", 300)
            stops: dict[str, list[tuple[int, int]]] = {}
            for index in CROSSING:
                for trade_id in range(index + 1, TRADES + 1, TOKENS):  # trade n (from 0) is id n + 1
                    trade = api.get(f"/trades/{trade_id}").json()["trade"]
                    if trade["side"] != "LONG" or trade["token"] != fake_token(index):
                        raise RuntimeError(f"trade {trade_id} is not a long trade on {fake_token(index)}: {trade}")
                    stops.setdefault(trade["token"], []).append((trade_id, trade["stop"]))
            steps = crossing_steps(stops)
            measured = [n for n, step in enumerate(steps) if step.measured]
            if len(measured) < count + WARMUP:
                raise RuntimeError(f"only {len(measured)} crossings fire one exit each; {count + WARMUP} wanted")
            plan = steps[:measured[count + WARMUP - 1] + 1]
            control.post("/background", json={"rate": BACKGROUND_RATE}).raise_for_status()
            time.sleep(settle_s)
            before = broker_requests(control)
            assert service.proc is not None and wire.proc is not None
            with _procs.CpuMeter({"tickguard": [service.proc.pid], "stub": [wire.proc.pid]}) as cpu:
                samples = cross(control, plan, [step.tags for step in plan])
            after = broker_requests(control)
            rate = written_rate(control, settle_s)
            seen = service_rate(service.url, 2 * settle_s)
    others = {path: n - before.get(path, 0) for path, n in after.items()
              if n > before.get(path, 0) and not path.endswith("/placeOrder")}
    return samples, rate, seen, others, cpu


def broker_requests(control: httpx.Client) -> dict[str, int]:
    """Requests to the stub by path, its control routes left out."""
    return {path: n for path, n in control.get("/requests").json()["paths"].items() if not path.startswith("/stub/")}


def run(quick: bool) -> list[Figure]:
    count, settle_s = (24, 0.5) if quick else (128, 1.0)
    with _procs.Scratch() as scratch:
        echo, echo_rate = floor(scratch, count, settle_s)
        ms, rate, seen, others, cpu = tickguard(scratch, count, settle_s)
    p50, p99 = statistics.median(ms), percentile(ms, 0.99)
    return [
        Figure(f"wire stub: background written ({len(ms)} samples)", rate, "frames/s", echo_rate),
        Figure("wire stub: background seen by tickguard", seen, "ticks/s", rate),
        Figure("tick->exit p50, wire stub (vs bare client)", p50, "ms", statistics.median(echo), "<= 0.5 ms"),
        Figure("tick->exit p99, wire stub (vs bare client)", p99, "ms", percentile(echo, 0.99), "<= 2 ms"),
        Figure("tick->exit max, wire stub (vs bare client)", max(ms), "ms", max(echo)),
        Figure(f"wire stub: other REST calls meanwhile {sorted(others) or ''}", sum(others.values()), "requests"),
        # CPU while crossing, in % of one core: how much of the machine the rig took, how much was left
        Figure("CPU while crossing: tickguard", cpu.busy("tickguard"), "% core"),
        Figure("CPU while crossing: the stub", cpu.busy("stub"), "% core"),
        Figure(f"CPU while crossing: machine of {100 * (os.cpu_count() or 1)} %", cpu.busy(), "% core"),
    ]
