"""A tickguard cluster for the benchmarks: every role a process of its own (`python -m service.cli intake |
executor | guard`), beside the paper exchange's (`bench._procs.paper`).

    intake-0, intake-1 ...     webhooks and the read API (`health_url` answers once up)
    executor                   the paper demo login's orders (P0001, the only login the exchange knows here)
    guard-<shard>a / b         each shard's stop engine: whichever takes the lease leads, the other stands by

The roles share the local NATS server under a cluster name of this run's own (its streams and lease
bucket are deleted at the end) and the PostgreSQL database they are given. Guards log at INFO: their
"guard standing by" and "leading the shard" lines are how this module knows who leads. Every role is
stopped (SIGCONT, SIGTERM, then SIGKILL) when the `with` block ends, whatever happened in it.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from bench import _procs
from bench._tickguard import seeded_trades
from service.cluster.bus import Bus
from service.store import Store
from service.trades import TradeRecord

__all__ = ["NATS_URL", "Cluster", "seed"]

NATS_URL = "nats://127.0.0.1:4222"
LEADING = "leading the shard"


class Cluster:
    def __init__(self, scratch: Path, paper_url: str, database_url: str, *, intakes: int = 2, shards: int = 2,
                 failover_s: float = 3.0, **env: str) -> None:
        self.scratch = scratch
        self.name = f"bench{uuid.uuid4().hex[:8]}"
        self.shards, self.failover_s = shards, failover_s
        self.env = {"PAPER_URL": paper_url, "DATABASE_URL": database_url, "NATS_URL": NATS_URL,
                    "CLUSTER_NAME": self.name, "GUARD_SHARDS": str(shards), "FAILOVER_S": str(failover_s),
                    "STREAM_STALL_S": "30", "LOG_LEVEL": "WARNING",
                    "PRICE_SANITY_PCT": "0",  # crossing trades step their stops down: the alert price is nominal
                    **env}
        self.intakes = []
        for n in range(intakes):
            port = _procs.free_port()
            intake = self._role(f"intake-{n}", ["intake", "--port", str(port)], health_url=f"http://127.0.0.1:{port}/healthz")
            intake.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
            intake.port = port  # type: ignore[attr-defined]
            self.intakes.append(intake)
        login = _procs.DEMO[0]
        self.executor = self._role("executor", ["executor", "--login", login], ready_text=f"login {login} ready")
        self.guards = {shard: [self._role(f"guard-{shard}{copy}", ["guard", "--shard", f"{shard}/{shards}"],
                                          ready_text="guard standing by", LOG_LEVEL="INFO") for copy in "ab"]
                       for shard in range(shards)}

    def _role(self, name: str, argv: list[str], *, health_url: str | None = None, ready_text: str = "",
              **env: str) -> _procs.Process:
        own = self.scratch / name
        own.mkdir(exist_ok=True)
        values = {**self.env, "SYMBOLS_DIR": str(own / "symbols"), "SYMBOL_TOKENS_FILE": str(own / "symbol_tokens.json"),
                  **env}
        return _procs.Process(name, ["-m", "service.cli", *argv], self.scratch, values, health_url, 90, ready_text)

    @property
    def roles(self) -> list[_procs.Process]:
        return [*self.intakes, self.executor, *(g for pair in self.guards.values() for g in pair)]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for role in reversed(self.roles):  # all asked at once: each takes a moment to close its connections
            role.terminate()
        for role in reversed(self.roles):
            role.__exit__(None, None, None)
        asyncio.run(_delete_bus(self.name))

    @staticmethod
    def start(*roles: _procs.Process) -> None:
        """Start `roles` together (the machine's cores share their imports), then wait for each."""
        for role in roles:
            role.start()
        for role in roles:
            role.wait_ready()

    def start_guards(self) -> None:
        self.start(*(g for pair in self.guards.values() for g in pair))
        for shard in self.guards:
            self.wait_leader(shard)

    # Leadership --------------------------------------------------------------------------------------
    def leaders(self, shard: int) -> list[_procs.Process]:
        """The live guards of `shard` that have led since they last started (a paused one among them)."""
        return [g for g in self.guards[shard] if g.alive and LEADING in g.output()]

    def wait_leader(self, shard: int, *, other_than: _procs.Process | None = None, timeout: float = 60) -> _procs.Process:
        """The guard leading `shard` (not `other_than`, which may be paused, still looking like a leader)."""
        def found() -> _procs.Process | None:
            leaders = [g for g in self.leaders(shard) if g is not other_than]
            return leaders[0] if len(leaders) == 1 else None

        try:
            return _procs.wait_for(found, f"a leader of shard {shard}", timeout)  # type: ignore[return-value]
        except TimeoutError:
            raise TimeoutError(f"no single leader of shard {shard}:\n" +
                               "\n".join(g.tail(1500) for g in self.guards[shard])) from None

    def restart(self, guard: _procs.Process) -> None:
        """A guard that was killed (or exited on finding its lease lost) back as a standby."""
        if guard.alive:
            guard.wait(30)
        guard.start()
        guard.wait_ready()

    # The bus ------------------------------------------------------------------------------------------
    async def commands_waiting(self) -> int:
        """Order commands on the bus not yet acknowledged by an executor (the work queue's messages)."""
        import nats

        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        try:
            return (await nc.jetstream().stream_info(Bus(NATS_URL, self.name).cmd_stream)).state.messages
        finally:
            await nc.close()

    def wait_commands_done(self, timeout: float) -> float:
        """Seconds until the executor has acknowledged every command (entries placed or expired)."""
        started = time.monotonic()
        _procs.wait_for(lambda: asyncio.run(self.commands_waiting()) == 0, "the executor's commands done", timeout, 0.5)
        return time.monotonic() - started


async def _delete_bus(name: str) -> None:
    """The run's streams and lease bucket, gone."""
    import nats

    bus = Bus(NATS_URL, name)
    with contextlib.suppress(Exception):
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        js = nc.jetstream()
        for stream in (bus.cmd_stream, bus.evt_stream, f"KV_{bus.lease_bucket}"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await nc.close()


def seed(database_url: str, count: int, instruments: list[list], account: str = "DEMO") -> None:
    """`count` filled trades (bench._tickguard's) stored straight into the cluster's store: the guard
    leaders arm them when they take their shards (start the guards after this)."""
    trades = seeded_trades(count, instruments, account, int(time.time() * 1000))

    def work(db) -> list[TradeRecord]:
        return [Store.insert_trade(db, trade) for trade in trades]

    async def store_them() -> None:
        store = Store(database_url)
        await asyncio.to_thread(store.open)
        try:
            await store.db.write(work)
        finally:
            await store.close()

    asyncio.run(store_them())
