"""Processes the service benchmarks start: the paper exchange, tickguard, a bare app, load generators.

Every process runs on 127.0.0.1 in a scratch directory, logs to a file there, and is stopped (then
killed) when its `with` block ends, whatever happened inside it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pyotp

__all__ = ["DEMO", "HEADERS", "ROOT", "SECRET", "CpuMeter", "Process", "Scratch", "free_port", "login", "pids_named", "rss_peak_kb",
           "wait_for"]

SECRET = "paper-webhook-secret"
# The alert routes take the webhook secret, the rest the paper demo operator's API token.
HEADERS = {"X-Webhook-Secret": SECRET, "Authorization": "Bearer tgo_demo.paper-demo-token"}
ROOT = "/rest/secure/angelbroking"
DEMO = ("P0001", "1234", "paper-demo-key", "TICKGUARDPAPERDEMOTOTPSECRET2345")  # the paper demo login


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 30.0, every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Scratch:
    """A temporary directory, removed at the end (kept with BENCH_KEEP=1, for reading the logs)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="tickguard-bench-"))
        return self.path

    def __exit__(self, *exc: object) -> None:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.path, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    inherited = ("SMARTAPI_", "PAPER_", "TICKGUARD_", "BENCH_", "DATABASE_URL", "NATS_URL", "CLUSTER_NAME",
                 "GUARD_SHARDS", "FAILOVER_S")  # every process is told its store and its cluster
    return {k: v for k, v in os.environ.items() if not k.startswith(inherited)}


class Process:
    """One child process, started by `with`, stopped (SIGTERM, then SIGKILL) when the block ends."""

    def __init__(self, name: str, args: list[str], scratch: Path, env: dict[str, str] | None = None,
                 health_url: str | None = None, start_timeout: float = 60.0, ready_text: str = "") -> None:
        self.name, self.args, self.health_url, self.start_timeout = name, args, health_url, start_timeout
        self.ready_text = ready_text
        self.env = {**_clean_env(), "TICKGUARD_ENV_FILE": str(scratch / "absent.env"), **(env or {})}
        self.log = scratch / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._since = 0  # where this start's output begins in the log (a process may be started again)

    def __enter__(self) -> Self:
        self.start()
        self.wait_ready()
        return self

    def start(self) -> Self:
        """Start the process without waiting for it (`wait_ready` waits); its log is appended to."""
        self._since = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *self.args], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
        return self

    def wait_ready(self) -> None:
        """Until it answers at `health_url` and has logged `ready_text` since it started; stopped if not."""
        try:
            if self.health_url:
                wait_for(self._healthy, f"{self.name} to answer", self.start_timeout, 0.1)
            if self.ready_text:
                wait_for(self._ready, f"{self.name} to be ready", self.start_timeout, 0.05)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            return httpx.get(self.health_url, timeout=1).status_code < 500  # type: ignore[arg-type]
        except httpx.HTTPError:
            return False

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        return self.ready_text in self.output()

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def output(self) -> str:
        """What this start of the process has logged so far."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self._since)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, number: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(number)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"{self.name} did not finish within {timeout:.0f} s:\n{self.tail()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM; SIGCONT first, as a paused process could not act on it), not waiting."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def paper(scratch: Path) -> Process:
    port = free_port()
    env = {"PAPER_TICK_MS": "0", "PAPER_DB": str(scratch / "paper.db"), "LOG_LEVEL": "WARNING",
           "PAPER_FUNDS": "1000000000"}
    process = Process("paper", ["-m", "service.cli", "paper", "--port", str(port)], scratch, env,
                      f"http://127.0.0.1:{port}/paper/v1/state")
    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return process


def tickguard(scratch: Path, paper_url: str, *, seed_trades: int = 0, seed_tokens: str = "", name: str = "tickguard",
              **env: str) -> Process:
    """tickguard's real app (`bench._tickguard`: `service.cli serve`'s app, plus trades armed at start).
    `name` names its log and its files in `scratch`, so that several can run side by side."""
    port = free_port()
    own = "" if name == "tickguard" else f"{name}-"
    values = {
        "PAPER_URL": paper_url, "TICKGUARD_DB": str(scratch / f"{own}tickguard.db"),
        "SYMBOLS_DIR": str(scratch / f"{own}symbols"), "SYMBOL_TOKENS_FILE": str(scratch / f"{own}symbol_tokens.json"),
        "STREAM_STALL_S": "30", "LOG_LEVEL": "WARNING", "BENCH_SEED_TRADES": str(seed_trades),
        "BENCH_SEED_TOKENS": seed_tokens, **env,
    }
    process = Process(name, ["-m", "bench._tickguard", "--port", str(port)], scratch, values,
                      f"http://127.0.0.1:{port}/healthz")
    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return process


def login(paper_url: str) -> dict[str, str]:
    """Headers of a fresh demo session at the paper exchange (the account holder's own view)."""
    clientcode, pin, key, secret = DEMO
    body = {"clientcode": clientcode, "password": pin, "totp": pyotp.TOTP(secret).now()}
    reply = httpx.post(f"{paper_url}/rest/auth/angelbroking/user/v1/loginByPassword", json=body,
                       headers={"X-PrivateKey": key}, timeout=10)
    jwt = reply.json()["data"]["jwtToken"]
    return {"X-PrivateKey": key, "Authorization": f"Bearer {jwt}"}


def rss_peak_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")


def pids_named(command: str, containing: str = "") -> list[int]:
    """The processes whose command name (`/proc/<pid>/comm`) is `command` (e.g. "postgres", "nats-server") and
    whose command line holds `containing` (a PostgreSQL backend's shows its database's name)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command and \
                        containing in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0  # gone: what it used is no longer known
    return int(fields[11]) + int(fields[12])  # utime + stime


class CpuMeter:
    """CPU seconds used over a `with` block: per named group of processes, and the machine's (all cores);
    "other" is the machine's busy time no group accounts for (short-lived processes among it, and a process
    that ended within the block), "stolen" the time the hypervisor gave the machine's cores to others."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.seconds: dict[str, float] = {}
        self.elapsed = 0.0

    @staticmethod
    def _machine() -> tuple[int, int]:
        """(busy, stolen) clock ticks of all cores since boot (/proc/stat)."""
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
        return user + nice + system + irq + softirq, steal

    def _sample(self) -> tuple[float, dict[int, int], tuple[int, int]]:
        pids = {pid for group in self.groups.values() for pid in group}
        return time.monotonic(), {pid: _cpu_ticks(pid) for pid in pids}, self._machine()

    def __enter__(self) -> Self:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        (t0, groups0, (busy0, steal0)), (t1, groups1, (busy1, steal1)) = self._start, self._sample()
        tick = 1 / os.sysconf("SC_CLK_TCK")
        self.elapsed = t1 - t0
        used = {pid: max(0, groups1[pid] - groups0[pid]) for pid in groups0}  # one that ended meanwhile: 0
        self.seconds = {name: sum(used[pid] for pid in pids) * tick for name, pids in self.groups.items()}
        machine = (busy1 - busy0) * tick
        self.seconds["other"] = max(0.0, machine - sum(self.seconds.values()))
        self.seconds["machine"] = machine
        self.seconds["stolen"] = (steal1 - steal0) * tick

    def busy(self, name: str = "machine") -> float:
        """`name`'s CPU over the block in % of one core."""
        return 100 * self.seconds[name] / self.elapsed
