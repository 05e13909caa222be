"""The processes the service benchmarks share within one `python -m bench` run.

`python -m bench` opens one `Services` for `SHARERS` (run first, one after the other) and closes it
after them; a module run alone (`python -m bench ingest`) gets one of its own, closed at its end.
Each process starts on first use and is kept for the next benchmark that asks:

- the paper exchange (`PAPER_TICK_MS=0`: it plays nothing unasked) — REST for every tickguard here;
- an idle tickguard, no trades: its peak RSS is read 1 s after it first answers (the memory
  benchmark's baseline), then it takes the SQLite `/opentrade` load (the alerts benchmark);
- a seeded tickguard: 10 000 trades over the blaster's 1 000 tokens, its smart-stream socket on a
  held blaster (connected, no tick). Its peak RSS is read once the trades are stored, armed and their
  armed events written (the memory benchmark's figure), before any tick; only then is the blaster
  released for the ingest benchmark, and held again after it.

Each figure is taken at the same point of its process's life as when each benchmark started its own
processes: what a benchmark finds running beside it is idle (a held blaster writes nothing; the
exchange plays nothing).
"""
from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import _procs
from bench._blaster import base_price, fake_token

__all__ = ["SHARERS", "TOKENS", "TRADES", "Idle", "Seeded", "Services", "opened", "shared"]

SHARERS = ("alerts", "memory", "ingest", "book")  # the modules that take their processes from here
TRADES, TOKENS = 10_000, 1_000
SEED_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Idle:
    service: _procs.Process
    peak_kb: int  # VmHWM 1 s after it first answered


@dataclass(frozen=True)
class Seeded:
    service: _procs.Process
    blaster: _procs.Process  # held but while `flowing()`
    stream_url: str
    peak_kb: int  # VmHWM once the trades were armed and their events written, before any tick
    store_s: float  # storing the trades (one transaction) and arming them
    armed_s: float  # ... until their armed events were written too

    @contextlib.contextmanager
    def flowing(self) -> Iterator[None]:
        """The blaster writes ticks inside the block, to every connection; held again after it."""
        self.blaster.signal(signal.SIGUSR1)
        try:
            yield
        finally:
            if self.blaster.alive:
                self.blaster.signal(signal.SIGUSR2)


class Services:
    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._scratch: Path | None = None
        self._paper: _procs.Process | None = None
        self._idle: Idle | None = None
        self._seeded: Seeded | None = None
        self._seeding: tuple[_procs.Process, _procs.Process, str, Path] | None = None
        self._processes: list[_procs.Process] = []

    @property
    def scratch(self) -> Path:
        if self._scratch is None:
            self._scratch = self._stack.enter_context(_procs.Scratch())
        return self._scratch

    def paper(self) -> _procs.Process:
        if self._paper is None:
            self._paper = self._enter(_procs.paper(self.scratch))
        return self._paper

    def idle(self) -> Idle:
        if self._idle is None:
            service = self._enter(_procs.tickguard(self.scratch, self.paper().url, name="idle"))
            time.sleep(1.0)
            self._idle = Idle(service, _procs.rss_peak_kb(service.pid))
        return self._idle

    def begin_seeded(self) -> None:
        """Start the blaster (held) and the seeded tickguard without waiting for them (`seeded()` waits)."""
        if self._seeding is not None or self._seeded is not None:
            return
        scratch, port = self.scratch, _procs.free_port()
        stream_url = f"ws://127.0.0.1:{port}/smart-stream"
        blaster = _procs.Process("blaster-held", ["-m", "bench._blaster", "--port", str(port), "--tokens", str(TOKENS),
                                                  "--held"], scratch, ready_text="ready")
        seeds, done = scratch / "seed_tokens.json", scratch / "seeded"
        seeds.write_text(json.dumps(seed_tokens()))
        service = _procs.tickguard(scratch, self.paper().url, name="seeded", seed_trades=TRADES, seed_tokens=str(seeds),
                                   SMARTAPI_STREAM_URL=stream_url, BENCH_SEEDED_FILE=str(done),
                                   STREAM_STALL_S="120")  # held on purpose: no reconnect for want of ticks
        for process in (blaster, service):  # side by side: the blaster listens long before tickguard connects
            self._stack.push(process.__exit__)
            self._processes.append(process.start())
        self._seeding = (blaster, service, stream_url, done)

    def seeded(self) -> Seeded:
        if self._seeded is None:
            self.begin_seeded()
            assert self._seeding is not None
            blaster, service, stream_url, done = self._seeding
            blaster.wait_ready()
            service.wait_ready()
            _procs.wait_for(lambda: done.exists() or _exited(service), f"{TRADES:,} trades armed", SEED_TIMEOUT_S)
            store_s, armed_s = map(float, done.read_text().split())
            time.sleep(1.0)
            self._seeded = Seeded(service, blaster, stream_url, _procs.rss_peak_kb(service.pid), store_s, armed_s)
        return self._seeded

    def _enter(self, process: _procs.Process) -> _procs.Process:
        self._processes.append(self._stack.enter_context(process))
        return process

    def close(self) -> None:
        for process in reversed(self._processes):  # all asked to stop at once, then each waited for
            process.terminate()
        self._stack.close()


def _exited(service: _procs.Process) -> bool:
    if not service.alive:
        raise RuntimeError(f"{service.name} exited while seeding:\n{service.tail()}")
    return False


def seed_tokens() -> list[list]:
    """BENCH_SEED_TOKENS: the blaster's instruments, `[exchange, token, tradingsymbol, price_paise]`."""
    return [["NSE", fake_token(n), f"BENCH{n}-EQ", base_price(n)] for n in range(TOKENS)]


_current: Services | None = None


@contextlib.contextmanager
def opened() -> Iterator[Services]:
    """The run's services: every `shared()` inside the block uses them; stopped at its end."""
    global _current
    services = Services()
    _current = services
    try:
        yield services
    finally:
        _current = None
        services.close()


@contextlib.contextmanager
def shared() -> Iterator[Services]:
    """The run's services when `opened()` is in force, else ones of the caller's own for the block."""
    if _current is not None:
        yield _current
        return
    with opened() as services:
        yield services
