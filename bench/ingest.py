"""Service ingest: ticks/s tickguard takes in over one smart-stream socket, with 10 000 armed trades.

Baseline: a bare `websockets` receive loop (`bench._receiver`, set up as the adapter's connection is)
on the same frames in the same run. Both read from `bench._blaster`, a stream source in its own
process that writes pre-built LTP frames as fast as the reader takes them, so the reader sets the
rate. tickguard (`bench._tickguard`, its own process, the paper exchange beside it for REST: the run's
seeded tickguard, `bench._shared`) guards 10 000 trades over the blaster's 1 000 tokens, stored and
armed before its blaster (started held) writes the first tick; the baseline reads from a blaster of its
own. About one tick in a thousand crosses a level, and the exits it fires take their real path to the
paper exchange. tickguard's rate is read from its own
tick counter (`tickguard_ticks_total`, sampled about once a second): the window runs from one
sample to the sample that ends it, timed where the counter is seen to move.
"""
from __future__ import annotations

import time

import httpx

from bench import _procs, _shared
from bench._shared import TOKENS, TRADES
from bench.common import Figure


def ticks_total(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("tickguard_ticks_total "):
            return float(line.split()[1])
    raise RuntimeError("tickguard_ticks_total missing from /metrics")


def _next_sample(client: httpx.Client, last: float, timeout: float = 5.0) -> tuple[float, float]:
    """Wait for the counter to move from `last`; returns (value, when it was seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ticks_total(client)
        if value != last:
            return value, time.perf_counter()
        time.sleep(0.01)
    raise TimeoutError("tickguard's tick counter stopped moving")


def service_rate(url: str, seconds: float) -> float:
    with httpx.Client(base_url=url, headers=_procs.HEADERS, timeout=10) as client:
        first, started = _next_sample(client, ticks_total(client), timeout=15.0)  # the first ticks may take a while
        value, when = first, started
        while when - started < seconds:
            value, when = _next_sample(client, value)
        return (value - first) / (when - started)


def bare_rate(scratch, stream_url: str, seconds: float) -> float:
    """The receiver's frames/s. It is stopped once it has printed them: its closing handshake would wait out
    websockets' close timeout (10 s), as the frames still queued for it pause its reading."""
    args = ["-m", "bench._receiver", "--url", stream_url, "--seconds", str(seconds)]
    with _procs.Process("receiver", args, scratch) as receiver:
        line = _procs.wait_for(lambda: _result(receiver), "the receiver's count", seconds + 30)
    frames, elapsed = line.split()
    return int(frames) / float(elapsed)


def _result(receiver: _procs.Process) -> str:
    lines = receiver.output().splitlines()
    if lines and len(lines[-1].split()) == 2 and receiver.output().endswith("\n"):
        return lines[-1]
    if not receiver.alive:
        raise RuntimeError(f"the receiver exited with no count:\n{receiver.tail()}")
    return ""


def run(quick: bool) -> list[Figure]:
    seconds = 2.0 if quick else 12.0
    with _shared.shared() as services:
        seeded = services.seeded()  # stored and armed before the first tick: the blaster is held till then
        scratch, port = services.scratch, _procs.free_port()
        blaster = _procs.Process("blaster", ["-m", "bench._blaster", "--port", str(port), "--tokens", str(TOKENS)],
                                 scratch, ready_text="ready")  # the baseline's own, the same frames
        with blaster:
            bare = bare_rate(scratch, f"ws://127.0.0.1:{port}/smart-stream", seconds)
            with seeded.flowing():
                ours = service_rate(seeded.service.url, seconds)
            if not quick:  # the baseline again, after the service, so both see the same machine
                bare = max(bare, bare_rate(scratch, f"ws://127.0.0.1:{port}/smart-stream", seconds))
    return [
        Figure(f"seeding: {TRADES:,} trades stored and armed", seeded.store_s, "s"),
        Figure("seeding: ... and their armed events written", seeded.armed_s, "s"),
        Figure("bare websockets receive loop", bare, "ticks/s"),
        Figure(f"service ingest, {TRADES:,} trades, one socket", ours, "ticks/s", bare, ">= 0.8x"),
    ]
