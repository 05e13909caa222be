"""The cluster (NATS JetStream + PostgreSQL) against the single process, every figure in the same run.

Three deployments, one after the other, each with a paper exchange and a PostgreSQL database of its own:

1. `tickguard serve` on PostgreSQL (`bench._tickguard`, DATABASE_URL): the baseline of every figure.
2. `tickguard serve` on SQLite, for `/opentrade` only (`bench.alerts.opentrade`), noted beside it.
3. A cluster (`bench._cluster`): 2 intakes, the executor of the paper login, 2 guard shards each with
   a leader and a standby: 8 processes beside the paper exchange, NATS and PostgreSQL, on this machine.

Both (1) and (3) guard the same 2 000 seeded trades over 984 instruments (bench._tickguard's, stored
straight into the store: the single process arms them at start, the cluster's guard leaders when they
take their shards; not 10 000 as in bench.latency: with 5 000 a shard, taking it over can keep a leader
from renewing its lease, docs/bench.md), and both play the same background: price paths on 5
instruments those trades hold, 1 000 points/s each (5 000 ticks/s; the rate the exchange really fed
to the guarding sockets is printed). Then, in each:

- tick→exit (`bench._crossings`): crossing trades opened through `/opentrade` (an intake's, in the
  cluster), filled and armed; one crossing tick every 0.2 s; from the crossing tick handed to the
  guarding socket (tickguard's; the shard leader's) to the exit's placeOrder at the exchange. In the
  cluster that path is guard leader → `Exit` command on JetStream → executor → placeOrder.
- failover (the cluster only): the leader of the crossing instrument's shard is SIGKILLed (or
  SIGSTOPped), the crossing tick is played right after, and the time runs from that tick played by the
  exchange to the exit's placeOrder: the lease lapsing (FAILOVER_S/2), the standby taking it and arming
  its shard's trades from the store, subscribing, firing. Baseline: the same crossing, leader alive,
  timed the same way. The killed guard is started again as the shard's standby before the next round.
- `/opentrade` (after the background stops): `bench._load`, distinct buy alerts over 32 connections,
  202 only once each is committed; in the cluster through one intake, then split over both. Each
  alert's entry goes out as in `bench.alerts` (10 a second at the broker's pace, the rest expire after
  ENTRY_TTL_S): in the cluster as `Enter` commands the executor takes off the bus, which it is left to
  finish before the next load (the time it took is printed). The CPU each party used during a load
  (`/proc`: our processes, the database's PostgreSQL backends, the NATS server, the machine's total;
  "the rest" is the load generator and anything else running) is printed per alert acknowledged.
"""
from __future__ import annotations

import asyncio
import json
import random
import signal
import statistics
import time
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

from bench import _procs
from bench._blaster import fake_token
from bench._cluster import Cluster, seed
from bench._crossings import Crossing, Exchange, Exit, background, fed_rate, open_crossings, stop_background
from bench.alerts import load, opentrade
from bench.common import Figure
from bench.latency import instruments, percentile, rupees, walk
from service.cluster.commands import shard_of
from service.cluster.guardian import LOST_EXIT_CODE
from tests.support.postgres import fresh_database

PATHS, PATH_RATE = 5, 1_000
SEEDED_TOKENS = 984
SPACING_S = 0.2
SHARDS = 2
FAILOVER_S = 3.0  # the product's default: a leader's lease lapses after FAILOVER_S / 2


def run(quick: bool) -> list[Figure]:
    plan = Plan(quick)
    crossing, seeded_real = instruments()
    with _procs.Scratch() as scratch:
        seeds = [["NSE", i.token, i.symbol, price] for i, price in seeded_real]
        seeds += [["NSE", fake_token(n), f"BENCH{n}-EQ", 50_000 + n * 200] for n in range(SEEDED_TOKENS - len(seeds))]
        (scratch / "seed_tokens.json").write_text(json.dumps(seeds))
        single = _single(_own(scratch, "serve"), plan, crossing, seeded_real)
        sqlite = opentrade(_own(scratch, "sqlite"), plan.alerts)
        cluster = _cluster(_own(scratch, "cluster"), plan, crossing, seeded_real, seeds)
    return plan.figures(single, sqlite, cluster)


class Plan:
    """How much the run does (BENCH_QUICK=1: fewer of everything), and its figures."""

    def __init__(self, quick: bool) -> None:
        self.alerts = 500 if quick else 5_000
        self.seeded = 2_000  # 10 000 (bench.latency's) and a takeover can outlast the lease: docs/bench.md
        self.crossings = 16 if quick else 64
        self.kills, self.pauses = (1, 1) if quick else (8, 4)

    def figures(self, single: dict, sqlite: tuple[float, float, float], cluster: dict) -> list[Figure]:
        return [*self._exit_figures(single, cluster), *self._alert_figures(single, sqlite, cluster),
                *self._cpu_figures(single["cpu"], *cluster["cpu"])]

    def _exit_figures(self, s: dict, c: dict) -> list[Figure]:
        serve_ms = [e.from_sent_ms for e in s["exits"]]
        bus_ms = [e.from_sent_ms for e in c["exits"]]
        alive = [e.from_played_ms for e in c["alive"]]
        budget = f"<= {FAILOVER_S:g} s (FAILOVER_S)"
        figures = [
            Figure(f"serve PG: background ticks fed ({self.seeded} trades)", s["fed"], "ticks/s"),
            Figure("cluster: background ticks fed to the leaders", c["fed"], "ticks/s", s["fed"]),
            Figure(f"tick->exit p50 through the bus ({len(bus_ms)} samples)", statistics.median(bus_ms), "ms",
                   statistics.median(serve_ms)),
            Figure("tick->exit p99 through the bus (vs serve PG)", percentile(bus_ms, 0.99), "ms", percentile(serve_ms, 0.99)),
            Figure("tick->exit max through the bus (vs serve PG)", max(bus_ms), "ms", max(serve_ms)),
        ]
        for kind, signal_name in (("killed", "SIGKILLed"), ("paused", "SIGSTOPped")):
            ms = [e.from_played_ms for e in c[kind]]
            if ms:
                figures += [
                    Figure(f"failover, leader {signal_name}: crossing->exit p50 ({len(ms)})", statistics.median(ms), "ms",
                           statistics.median(alive)),
                    Figure(f"failover, leader {signal_name}: crossing->exit max", max(ms), "ms", max(alive), budget),
                ]
        figures.append(Figure("failover, SIGKILL -> the standby leads, p50", statistics.median(c["takeovers"]), "ms"))
        return figures

    def _alert_figures(self, s: dict, sqlite: tuple[float, float, float], c: dict) -> list[Figure]:
        rate, p50, p99 = s["alerts"]
        one, two = c["alerts"]
        return [
            Figure(f"serve PG /opentrade durably ({self.alerts}, vs SQLite)", rate, "alerts/s", sqlite[0]),
            Figure("serve PG /opentrade p99 (vs SQLite)", p99, "ms", sqlite[2]),
            Figure("cluster /opentrade durably, 1 intake", one[0], "alerts/s", rate),
            Figure("cluster /opentrade p50, 1 intake", one[1], "ms", p50),
            Figure("cluster /opentrade p99, 1 intake", one[2], "ms", p99),
            Figure("cluster /opentrade durably, 2 intakes", two[0], "alerts/s", rate),
            Figure("cluster /opentrade p50, 2 intakes", two[1], "ms", p50),
            Figure("cluster /opentrade p99, 2 intakes", two[2], "ms", p99),
            Figure(f"executor: {self.alerts} entry commands done after", c["drained"], "s"),
        ]

    def _cpu_figures(self, serve: _procs.CpuMeter, one: _procs.CpuMeter, two: _procs.CpuMeter) -> list[Figure]:
        def per_alert(cpu: _procs.CpuMeter, *names: str) -> float:
            return 1000 * sum(cpu.seconds[name] for name in names) / self.alerts

        cluster = ("intakes", "executor", "guards", "postgres", "nats")  # the deployment's own, each side
        single = ("tickguard", "postgres", "nats")
        return [
            Figure("CPU busy, cluster 1 intake load (vs serve PG)", one.busy(), "% core", serve.busy()),
            Figure("CPU busy, cluster 2 intakes load (vs serve PG)", two.busy(), "% core", serve.busy()),
            Figure("CPU per alert, deployment, 1 intake (vs serve)", per_alert(one, *cluster), "ms",
                   per_alert(serve, *single)),
            Figure("CPU per alert, deployment, 2 intakes (vs serve)", per_alert(two, *cluster), "ms",
                   per_alert(serve, *single)),
            Figure("  2 intakes: the intakes (vs tickguard serve)", per_alert(two, "intakes"), "ms",
                   per_alert(serve, "tickguard")),
            Figure("  2 intakes: the executor", per_alert(two, "executor"), "ms"),
            Figure("  2 intakes: the guards", per_alert(two, "guards"), "ms"),
            Figure("  2 intakes: PostgreSQL backends (vs under serve)", per_alert(two, "postgres"), "ms",
                   per_alert(serve, "postgres")),
            Figure("  2 intakes: nats-server", per_alert(two, "nats"), "ms"),
            Figure("  2 intakes: the paper exchange (vs under serve)", per_alert(two, "exchange"), "ms",
                   per_alert(serve, "exchange")),
            Figure("  2 intakes: the rest (the load; others')", per_alert(two, "other"), "ms", per_alert(serve, "other")),
        ]


def _own(scratch: Path, name: str) -> Path:
    path = scratch / name
    path.mkdir()
    return path


def _prices(paper_url: str, crossing: list, seeded_real: list) -> None:
    ticks = [{"exchange": "NSE", "token": i.token, "ltp": rupees(p)} for i, p in crossing + seeded_real]
    reply = httpx.post(f"{paper_url}/paper/v1/ticks", json={"ticks": ticks}, timeout=10)
    if reply.status_code != 200:
        raise RuntimeError(f"prices refused: {reply.text}")


def _background(paper_url: str, seeded_real: list) -> list[str]:
    rng = random.Random(3)
    return background(paper_url, seeded_real[:PATHS], PATH_RATE, lambda price: walk(price, 1_000, rng))


def _fed(paper_url: str, seeded_real: list) -> float:
    """Ticks/s the exchange handed to the guarding sockets, two samples 0.5 s apart, averaged."""
    rates = []
    for _ in range(2):
        time.sleep(0.5)
        rates.append(fed_rate(paper_url, seeded_real[:PATHS])[1])
    return statistics.mean(rates)


async def _tick_to_exit(paper_url: str, service_url: str, crossing: list, count: int) -> list[Exit]:
    trades = await open_crossings(service_url, crossing, count)
    exits = []
    async with Exchange(paper_url) as exchange:
        for trade in trades:
            await asyncio.sleep(SPACING_S)
            exits.append(await exchange.cross(trade))
    return exits


def _warm(scratch: Path, ports: list[int], offset: int) -> None:
    """100 alerts to each of `ports` (symbols, accounts, first commits), not measured."""
    _, _, _, statuses = load(scratch, ports, 100 * len(ports), alerts=True, offset=offset)
    if statuses.get("202") != 100 * len(ports):
        raise RuntimeError(f"warm-up alerts were not all accepted: {statuses}")


def _alerts(scratch: Path, ports: list[int], count: int, offset: int, database_url: str,
            groups: dict[str, list[int]]) -> tuple[tuple[float, float, float], _procs.CpuMeter]:
    """(alerts/s, p50, p99) of `count` alerts over `ports`, and the CPU used meanwhile by the `groups` of
    processes, the database's PostgreSQL backends and the NATS server (shared with whatever else uses it)."""
    backends = _procs.pids_named("postgres", containing=f" {database_url.rsplit('/', 1)[1]} ")
    with _procs.CpuMeter({**groups, "postgres": backends, "nats": _procs.pids_named("nats-server")}) as cpu:
        rate, p50, p99, statuses = load(scratch, ports, count, alerts=True, offset=offset)
    if statuses.get("202") != count:
        raise RuntimeError(f"alerts not all accepted: {statuses}")
    return (rate, p50, p99), cpu


# The single process --------------------------------------------------------------------------------------
def _single(scratch: Path, plan: Plan, crossing: list, seeded_real: list) -> dict:
    seeded = scratch / "seeded"
    with fresh_database() as url, _procs.paper(scratch) as paper:
        _prices(paper.url, crossing, seeded_real)
        service = _procs.tickguard(scratch, paper.url, seed_trades=plan.seeded,
                                   seed_tokens=str(scratch.parent / "seed_tokens.json"), BENCH_SEEDED_FILE=str(seeded),
                                   DATABASE_URL=url, TICKGUARD_DB=str(scratch / "unused.db"),
                                   PRICE_SANITY_PCT="0")  # the crossing alerts' price is nominal
        with service:
            _procs.wait_for(seeded.exists, f"{plan.seeded} trades armed", 600)
            paths = _background(paper.url, seeded_real)
            exits = asyncio.run(_tick_to_exit(paper.url, service.url, crossing, plan.crossings))
            fed = _fed(paper.url, seeded_real)
            stop_background(paper.url, paths)
            port = int(service.url.rsplit(":", 1)[1])
            _warm(scratch, [port], 1_000_000)
            alerts, cpu = _alerts(scratch, [port], plan.alerts, 2_000_000, url,
                                  {"tickguard": [service.pid], "exchange": [paper.pid]})
    return {"exits": exits, "fed": fed, "alerts": alerts, "cpu": cpu}


# The cluster ---------------------------------------------------------------------------------------------
def _cluster(scratch: Path, plan: Plan, crossing: list, seeded_real: list, seeds: list) -> dict:
    with fresh_database() as url, _procs.paper(scratch) as paper:
        _prices(paper.url, crossing, seeded_real)
        with Cluster(scratch, paper.url, url, intakes=2, shards=SHARDS, failover_s=FAILOVER_S) as cluster:
            cluster.start(*cluster.intakes, cluster.executor)
            seed(url, plan.seeded, seeds)
            cluster.start_guards()
            _procs.wait_for(lambda: _armed_count(url) >= plan.seeded, f"{plan.seeded} trades armed by the leaders", 600, 0.5)
            paths = _background(paper.url, seeded_real)
            intake = cluster.intakes[0].url  # type: ignore[attr-defined]
            exits = asyncio.run(_tick_to_exit(paper.url, intake, crossing, plan.crossings))
            fed = _fed(paper.url, seeded_real)
            failover = asyncio.run(_failover(cluster, paper.url, crossing, plan))
            stop_background(paper.url, paths)
            ports = [i.port for i in cluster.intakes]  # type: ignore[attr-defined]
            _warm(scratch, ports, 1_000_000)
            groups = {"intakes": [i.pid for i in cluster.intakes], "executor": [cluster.executor.pid],
                      "guards": [g.pid for pair in cluster.guards.values() for g in pair if g.alive],
                      "exchange": [paper.pid]}
            one, cpu_one = _alerts(scratch, ports[:1], plan.alerts, 2_000_000, url, groups)
            drained = cluster.wait_commands_done(600)
            two, cpu_two = _alerts(scratch, ports, plan.alerts, 3_000_000, url, groups)
    return {"exits": exits, "fed": fed, "alerts": (one, two), "cpu": (cpu_one, cpu_two), "drained": drained,
            **failover}


def _armed_count(url: str) -> int:
    with psycopg.connect(url) as db:
        return db.execute("SELECT count(DISTINCT trade_id) FROM events WHERE kind = 'armed'").fetchone()[0]


async def _failover(cluster: Cluster, paper_url: str, crossing: list, plan: Plan) -> dict:
    first_step = -(-plan.crossings // len(crossing)) + 1  # after the tick->exit trades' steps
    trades = await open_crossings(cluster.intakes[0].url, crossing, 2 * plan.kills + plan.pauses,  # type: ignore[attr-defined]
                                  first_step=first_step, prefix="failover")
    alive, killed, paused, takeovers = [], [], [], []
    async with Exchange(paper_url) as exchange:
        for n in range(plan.kills + plan.pauses):
            await asyncio.sleep(SPACING_S)
            if n < plan.kills:
                alive.append(await exchange.cross(trades.pop(0)))
            trade = trades.pop(0)
            leader = cluster.wait_leader(shard_of(trade.exchange, trade.token, SHARDS))
            if n < plan.kills:
                killed_at = time.time()
                leader.kill()
                killed.append(await exchange.cross(trade, timeout=60))
                takeovers.append(_took_over(cluster, trade, leader) - killed_at * 1000)
            else:
                leader.signal(signal.SIGSTOP)
                paused.append(await exchange.cross(trade, timeout=60))
                leader.signal(signal.SIGCONT)  # it finds its lease lost and exits for its supervisor
                if (code := leader.wait(30)) != LOST_EXIT_CODE:
                    raise RuntimeError(f"a paused leader woke and exited with {code}:\n{leader.tail()}")
            cluster.restart(leader)
    return {"alive": alive, "killed": killed, "paused": paused, "takeovers": takeovers}


def _took_over(cluster: Cluster, trade: Crossing, old: _procs.Process) -> float:
    """When (epoch ms, by its log line) the shard's new leader took the lease."""
    leader = cluster.wait_leader(shard_of(trade.exchange, trade.token, SHARDS), other_than=old)
    line = next(line for line in reversed(leader.output().splitlines()) if "leading the shard" in line)
    return datetime.fromisoformat(json.loads(line)["ts"]).timestamp() * 1000
