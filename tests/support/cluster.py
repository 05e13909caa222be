"""A tickguard cluster on one machine, started by the tests themselves: each role a real process
(`python -m service.cli intake|executor|guard`), the local NATS (a cluster name of the test's own, its
streams and bucket deleted after) and a PostgreSQL database of the test's own; the paper exchange runs
in the test process (`paper_factory`), enforcing the static-IP rule for the two logins:

    P0001 (SMARTAPI_USER, the market-data login and account MAIN)   orders from 127.0.0.2
    P0002 (CREDENTIALS_FILE, account OWN)                           orders from 127.0.0.3
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.support.paper import DEMO, OTHER, RunningPaper, two_logins
from tests.support.service import HEADERS

REGISTERED = {DEMO.clientcode: "127.0.0.2", OTHER.clientcode: "127.0.0.3"}
NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Role:
    """One process of the cluster."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, ready: str) -> None:
        self.name, self.argv, self.env, self.log, self.ready = name, argv, env, log, ready
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self._since = 0  # where this start's output begins in the log

    def start(self) -> Role:
        self._since = len(self.text())
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", *self.argv], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not become ready:\n{self.text()[-4000:]}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        if self.url is None:
            return self.ready in self.text()[self._since:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, number: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(number)

    def kill(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Cluster:
    def __init__(self, tmp_path: Path, paper: RunningPaper, database_url: str, *, shards: int = 2,
                 failover_s: float = 3.0, **env: str) -> None:
        self.tmp = tmp_path
        self.paper = paper
        self.name = f"t{uuid.uuid4().hex[:10]}"
        self.shards = shards
        credentials, accounts = two_logins(tmp_path, REGISTERED[OTHER.clientcode])
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SMARTAPI_", "PAPER_", "TICKGUARD_"))},
            "TICKGUARD_ENV_FILE": str(tmp_path / "absent.env"), "PAPER_URL": paper.url, "DATABASE_URL": database_url,
            "NATS_URL": NATS_URL, "CLUSTER_NAME": self.name, "GUARD_SHARDS": str(shards), "FAILOVER_S": str(failover_s),
            "CREDENTIALS_FILE": str(credentials), "DEMO_ACCOUNTS_FILE": str(accounts), "STREAM_STALL_S": "30",
            "EXIT_CHASE_MS": "100", "LOG_LEVEL": "INFO", "SMARTAPI_SOURCE_ADDRESS": "", **env,
        }
        self.roles: dict[str, Role] = {}

    def role(self, name: str, argv: list[str], ready: str, **env: str) -> Role:
        own = self.tmp / name
        own.mkdir(exist_ok=True)
        values = {**self.env, "SYMBOLS_DIR": str(own / "symbols"), "SYMBOL_TOKENS_FILE": str(own / "symbol_tokens.json"),
                  **env}
        role = Role(name, argv, values, self.tmp / f"{name}.log", ready)
        self.roles[name] = role
        return role

    def intake(self, name: str) -> Role:
        port = free_port()
        role = self.role(name, ["intake", "--port", str(port)], "")
        role.url = f"http://127.0.0.1:{port}"
        return role

    def executor(self, login: str) -> Role:
        # The default login's orders leave from its registered address; the other's from CREDENTIALS_FILE's.
        source = REGISTERED[DEMO.clientcode] if login == DEMO.clientcode else ""
        return self.role(f"executor-{login}", ["executor", "--login", login], "ready", SMARTAPI_SOURCE_ADDRESS=source)

    def guard(self, shard: int, copy: str) -> Role:
        return self.role(f"guard-{shard}{copy}", ["guard", "--shard", f"{shard}/{self.shards}"], "guard standing by")

    def start(self, intakes: int = 2, standbys: bool = True) -> Cluster:
        """Every role, each readiness awaited: intakes, one executor per login, a leader (and a standby) per shard."""
        roles = [self.intake(f"intake-{i}") for i in range(intakes)]
        roles += [self.executor(DEMO.clientcode), self.executor(OTHER.clientcode)]
        for shard in range(self.shards):
            roles += [self.guard(shard, copy) for copy in ("a", "b")[: 2 if standbys else 1]]
        for role in roles:
            role.start()
        for role in roles:
            role.wait_ready()
        for shard in range(self.shards):
            self.wait_leader(shard)
        return self

    def leader(self, shard: int) -> Role | None:
        """The guard that leads the shard now (the newest 'leading the shard' line of a live process)."""
        leaders = [r for n, r in self.roles.items() if n.startswith(f"guard-{shard}") and r.alive
                   and "leading the shard" in r.text()]
        return leaders[-1] if len(leaders) == 1 else None

    def wait_leader(self, shard: int, timeout: float = 30) -> Role:
        deadline = time.monotonic() + timeout
        while (leader := self.leader(shard)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no single leader of shard {shard}:\n" +
                                     "\n".join(r.text()[-1500:] for n, r in self.roles.items() if n.startswith("guard")))
            time.sleep(0.05)
        return leader

    def epoch(self, role: Role) -> int:
        """The lease token `role` leads its shard with (from its 'leading the shard' line)."""
        lines = [json.loads(line) for line in role.text().splitlines() if '"leading the shard"' in line]
        return int(lines[-1]["epoch"])

    def wait_new_leader(self, shard: int, old: Role, timeout: float = 30) -> Role:
        """Another guard of the shard leads (the old one may be paused, its old line still there)."""
        deadline = time.monotonic() + timeout
        while True:
            others = [r for n, r in self.roles.items() if n.startswith(f"guard-{shard}") and r is not old and r.alive
                      and "leading the shard" in r.text()]
            if others:
                return others[-1]
            if time.monotonic() > deadline:
                raise AssertionError("no new leader:\n" + "\n".join(r.text()[-1500:] for n, r in self.roles.items()
                                                                     if n.startswith("guard")))
            time.sleep(0.05)

    def open_trade(self, account: str = "MAIN", points: float = 10, price: float = 800) -> dict:
        """An equity trade on `account`, once its entry filled and its shard's guard armed it."""
        self.price(price)
        reply = self.alert(accounts=[account], price=price, stoploss={"type": "points", "value": points})
        assert reply.status_code == 202, reply.text
        (trade_id,) = reply.json()["trades"]
        return self.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                               what="entry filled and armed")["trade"]

    # Talking to it -------------------------------------------------------------------------------------
    def client(self, intake: str = "intake-0") -> httpx.Client:
        return httpx.Client(base_url=self.roles[intake].url, headers=HEADERS, timeout=10)

    def alert(self, intake: str = "intake-0", **body) -> httpx.Response:
        values = {"symbolname": "SBIN", "signal": "buy", "price": 800, "type": "equity", "strategyname": "s1"}
        values.update(body)
        with self.client(intake) as client:
            return client.post("/opentrade", json=values)

    def trade(self, trade_id: int, intake: str = "intake-0") -> dict:
        with self.client(intake) as client:
            return client.get(f"/trades/{trade_id}").json()

    def wait_trade(self, trade_id: int, predicate, timeout: float = 30, what: str = "trade state",
                   intake: str = "intake-0") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            view = self.trade(trade_id, intake)
            if predicate(view["trade"]):
                return view
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{r.text()[-2500:]}" for n, r in self.roles.items())
                raise AssertionError(f"timed out waiting for {what}: {view}\n{logs}")
            time.sleep(0.05)

    def status(self) -> tuple[int, dict]:
        """`tickguard cluster-status --json` against this cluster: its exit status and what it printed."""
        done = subprocess.run([sys.executable, "-m", "service.cli", "cluster-status", "--json"], env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.strip(), done.stderr
        return done.returncode, json.loads(done.stdout)

    def price(self, ltp: float, token: str = "3045", exchange: str = "NSE") -> None:
        reply = self.paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": ltp})
        assert reply.status_code == 200, reply.text

    def stop(self) -> None:
        for role in reversed(list(self.roles.values())):
            role.stop()
        asyncio.run(_delete_bus(self.name))


async def _delete_bus(name: str) -> None:
    """The test cluster's streams and lease bucket, gone."""
    import nats

    with contextlib.suppress(Exception):
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        js = nc.jetstream()
        prefix = name.upper()
        for stream in (f"{prefix}_CMD", f"{prefix}_EVT", f"KV_{prefix}_leases"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await nc.close()
