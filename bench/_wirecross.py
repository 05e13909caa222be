"""The wire stub's crossing rig, shared by `bench.latency_wire`'s floor and its full feed login (`bench._ceiling`).

A crossing is a frame the stub writes on `POST /stub/cross/<i>` (one tick one tick below a long trade's
stop); its sample is the time from that write to the exit's placeOrder arriving at the stub, both stamped
by the stub on one clock. Crossings are 0.12 s apart for each exit the one before fired (the order pacer's
10 orders/s per segment: a step that swept three trades is followed by 0.36 s, or the next exit would wait
its turn at the pacer and be measured as tickguard's latency).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from bench import _procs
from bench.latency import base36

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


def stub(scratch, settings: dict, name: str = "wirestub") -> _procs.Process:
    """The wire stub on a free port, with `settings` (its instruments, background, positions)."""
    port = _procs.free_port()
    (scratch / f"{name}.json").write_text(json.dumps(settings))
    process = _procs.Process(name, ["-m", "bench._wirestub", "--port", str(port), "--config",
                                    str(scratch / f"{name}.json")], scratch, ready_text="ready")
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


def broker_requests(control: httpx.Client) -> dict[str, int]:
    """Requests to the stub by path, its control routes left out."""
    return {path: n for path, n in control.get("/requests").json()["paths"].items() if not path.startswith("/stub/")}
