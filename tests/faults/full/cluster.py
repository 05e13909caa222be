"""The cluster campaign (`make faults` part `cluster`, `--cluster-rounds`): a tickguard cluster as real
processes — 2 intakes, an executor per login (P0001 from 127.0.0.2, P0002 from 127.0.0.3, the paper
exchange refusing orders from any other address), 2 guard shards each with a standby, FAILOVER_S=3, a
fresh PostgreSQL database, the local NATS under a cluster name of its own — under a supervisor that
restarts every role process that exits (`cluster_parts.Supervisor`, as systemd's Restart=always).

Each round sends 2-3 SBIN alerts and sometimes a NIFTY option alert (accounts MAIN on P0001, OWN on
P0002, or both) to random intakes. Each alert's trades are to be stopped out (the price moved through
their stops), closed through the API (`POST /trades/{id}/close`, their stops far away), or both at once.
One fault per round, at a random moment — as the alerts are sent, once the trades are armed, just before
the crossings (a guard leader then stays dead or paused while they are made), or as the exits go out:

    intake    SIGKILL of an intake (an alert or a close in flight is sent again to the other, same id)
    executor  SIGKILL of an executor (its commands wait on the bus; ENTRY_TTL_S=30 lets its entries go
              out after its restart rather than expire)
    leader    SIGKILL of a guard leader (its standby takes the lease once it lapses, FAILOVER_S/2)
    pause     SIGSTOP of a guard leader for 2-4 s, longer than its lease, then SIGCONT: it must exit
              with status 3 and nothing it sends on waking may be acted on
    standby   SIGKILL of a standby guard

Then every trade must settle unhelped, within 60 s of its entry and 30 s of its close or crossing (what does
not is counted, then closed or crossed again so that the next round starts clean), the cluster must be
whole again, and the checks of `cluster_checks` run.
"""
from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from service.cluster.commands import shard_of
from tests.faults.full.cluster_checks import (Books, Crossing, Outage, PositionWatch, Sources, check_failover,
                                              check_error_lines, check_paused, check_role_exits, check_trades,
                                              executors_share, report_timings, took, wait)
from tests.faults.full.cluster_parts import CommandTap, Intakes, Supervisor, start_paper
from tests.faults.full.tally import Tally
from tests.support.cluster import Cluster
from tests.support.postgres import fresh_database

ENTRY, INDEX = 800.0, 24010.0
SBIN, INDEX_TOKEN = "3045", "99926000"
FAILOVER_S = 3.0
KINDS = ("intake", "executor", "leader", "leader", "standby", "pause", "pause")
MOMENTS = {"intake": ("alerts", "alerts", "exits"), "executor": ("alerts", "armed", "exits"),
           "leader": ("alerts", "crossing", "crossing", "exits"), "pause": ("armed", "crossing", "crossing", "exits"),
           "standby": ("alerts", "crossing")}
ACCOUNTS = (["MAIN"], ["OWN"], ["MAIN", "OWN"])
STOP_POINTS = (4, 6, 8, 10)
CLOSE_POINTS = 40  # an SBIN trade to be closed through the API: its stop below every crossing
SETTLED = {"CLOSED", "EXPIRED", "REJECTED"}
FIRST_WAIT_S, HELPED_WAIT_S = 30.0, 30.0


@dataclass
class Alert:
    body: dict
    fate: str  # stop | close | both
    trades: list[int] = field(default_factory=list)


class Campaign:
    def __init__(self, workdir: Path, tally: Tally, seed: int, kinds: tuple[str, ...] = KINDS,
                 script: list[tuple[str, str]] | None = None) -> None:
        self.tally = tally
        self.rng = random.Random(seed)
        self.kinds, self.script = kinds, list(script or [])
        self.run_id = uuid.uuid4().hex[:6]
        self._exit = contextlib.ExitStack()
        try:
            self._start(workdir, tally)
        except BaseException:
            self._exit.close()
            raise
        self.option: tuple[str, str, float] | None = None  # (exchange, token, premium at its first entry)
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.exits_seen = 0
        self.marks = {name: 0 for name in self.cluster.roles}  # log lines looked at by the rounds before
        self.summary = ""

    def _start(self, workdir: Path, tally: Tally) -> None:
        self.paper = self._exit.enter_context(_stopping(start_paper(workdir, PAPER_FILL_LATENCY_MS="100")))
        self.price(ENTRY)
        self.price(INDEX, INDEX_TOKEN)
        url = self._exit.enter_context(fresh_database())
        self.cluster = Cluster(workdir, self.paper, url, shards=2, failover_s=FAILOVER_S, ENTRY_TTL_S="30")
        self._exit.callback(self.cluster.stop)
        self.cluster.start(intakes=2)
        self.supervisor = Supervisor(self.cluster).start()
        self._exit.callback(self.supervisor.stop)
        self.tap = CommandTap(self.cluster.name).start()
        self._exit.callback(self.tap.stop)
        self.books = Books(self.paper, tally)
        self.sources = Sources(self.paper, tally)
        self._exit.callback(self.books.close)
        self.watch = PositionWatch(self.books.books, tally).start()
        self._exit.callback(self.watch.stop)
        self.intakes = Intakes(self.cluster, tally, self.rng)
        self._exit.callback(self.intakes.close)

    def close(self) -> None:
        self._exit.close()

    def price(self, ltp: float, token: str = SBIN, exchange: str = "NSE") -> None:
        self.paper.control("POST", "/ticks", json={"exchange": exchange, "token": token, "ltp": round(ltp, 2)})

    # -- one round ------------------------------------------------------------------------------------------
    def round(self, n: int) -> None:
        kind, moment = self.draw()
        label = f"cluster round {n} ({kind} at {moment})"
        self.watch.label = label
        self.outage: Outage | None = None
        self.crossings: list[Crossing] = []
        self.acted: set[int] = set()  # trades closed (202) or crossed this round: each must settle unhelped
        self.reported: set[int] = set()  # trades already counted as not settled
        self.price(ENTRY)
        if self.option:
            self.price(self.option[2], self.option[1], self.option[0])
        alerts = self.plan(n)
        shard = self.rng.choice(sorted(self.shards(alerts)))
        timers = []
        if moment == "alerts":
            timers.append(self.later(self.rng.uniform(0, 0.4), kind, shard, timers))
        self.post_alerts(label, alerts)
        ids = [i for alert in alerts for i in alert.trades]
        views = self.wait_armed(label, ids)
        if moment in ("armed", "crossing"):
            self.inject(kind, shard, timers)
            time.sleep(self.rng.uniform(0, 1.0) if moment == "armed" else self.rng.uniform(0.05, 0.8))
            views = self.intakes.states(ids)
        if moment == "exits":
            timers.append(self.later(self.rng.uniform(0, 0.4), kind, shard, timers))
        self.act(label, alerts, views)
        while timers:  # (a pause's timer is added by the fault's own)
            timers.pop(0).join()
        self.settle(label, alerts)
        self.check(label, alerts)

    def draw(self) -> tuple[str, str]:
        if self.script:
            return self.script.pop(0)
        kind = self.rng.choice(self.kinds)
        return kind, self.rng.choice(MOMENTS[kind])

    def plan(self, n: int) -> list[Alert]:
        alerts = []
        for i in range(self.rng.choice((2, 2, 3))):
            fate = "stop" if i == 0 else self.rng.choice(("stop", "close", "close", "both"))
            points = CLOSE_POINTS if fate == "close" else self.rng.choice(STOP_POINTS)
            alerts.append(Alert({"symbolname": "SBIN", "signal": "buy", "price": ENTRY, "type": "equity",
                                 "strategyname": f"cl{n}x{i}", "id": f"cl-{self.run_id}-{n}-{i}",
                                 "quantity": self.rng.choice((1, 2, 3, 5)), "accounts": self.rng.choice(ACCOUNTS),
                                 "stoploss": {"type": "points", "value": points}}, fate))
        if self.rng.random() < 0.5:  # the option slice: the contract from the index, a stop on its premium
            alerts.append(Alert({"symbolname": "NIFTY", "signal": "buy", "price": 24000, "type": "option", "lots": 1,
                                 "strategyname": f"cl{n}opt", "id": f"cl-{self.run_id}-{n}-opt",
                                 "accounts": self.rng.choice(ACCOUNTS), "stoploss": {"type": "points", "value": 20}},
                                self.rng.choice(("stop", "stop", "close"))))
        return alerts

    def shards(self, alerts: list[Alert]) -> set[int]:
        """The guard shards whose stops this round crosses (the option's once its contract is known)."""
        found = {shard_of("NSE", SBIN, 2)}
        if self.option and any(a.body["type"] == "option" and a.fate != "close" for a in alerts):
            found.add(shard_of(self.option[0], self.option[1], 2))
        return found

    def post_alerts(self, label: str, alerts: list[Alert]) -> None:
        for alert in alerts:
            reply = self.intakes.send(label, "POST", "/opentrade", json=alert.body)
            if reply is None or reply.status_code not in (200, 202):
                detail = "no intake answered" if reply is None else f"{reply.status_code} {reply.text[:200]}"
                self.tally.bad("alerts lost", f"{label}: alert {alert.body['id']} not acknowledged: {detail}")
                continue
            alert.trades = list(reply.json()["trades"])
            self.tally.add("alerts acknowledged")
            self.tally.add("cluster trades", len(alert.trades))
            if len(alert.trades) != len(alert.body["accounts"]):
                self.tally.bad("alerts lost", f"{label}: alert {alert.body['id']} for {alert.body['accounts']} "
                                              f"acknowledged with trades {alert.trades}")

    def wait_armed(self, label: str, ids: list[int]) -> dict[int, dict]:
        views: dict[int, dict] = {}

        def armed() -> bool:
            views.update(self.intakes.states(ids))
            return all(v["state"] in SETTLED or (v["state"] == "OPEN" and v["stop"] is not None) for v in views.values())

        if not wait(armed, 60):
            print(f"  {label}: not armed in 60 s: {[(i, v['state'], v.get('stop')) for i, v in views.items()]}", flush=True)
        for view in views.values():
            if view.get("spec", {}).get("right") and view.get("entry_price") and self.option is None:
                self.option = (view["exchange"], view["token"], view["entry_price"] / 100)
        return views

    # -- faults ---------------------------------------------------------------------------------------------
    def later(self, delay: float, kind: str, shard: int, timers: list) -> threading.Timer:
        timer = threading.Timer(delay, self.inject, args=(kind, shard, timers))
        timer.start()
        return timer

    def inject(self, kind: str, shard: int, timers: list) -> None:
        sup = self.supervisor
        epoch = None
        if kind in ("intake", "executor"):
            role = self.rng.choice([n for n in self.cluster.roles if n.startswith(kind)])
        elif kind in ("leader", "pause"):
            leader = wait(lambda: sup.leader(shard), 30, every=0.02)
            if leader is None:
                print(f"  no leader of shard {shard} to {kind}", flush=True)
                return
            role, epoch = leader
        else:
            role = wait(lambda: sup.standby(shard), 30, every=0.02)
            if role is None:
                print(f"  no standby of shard {shard} to kill", flush=True)
                return
        pid = sup.pause(role) if kind == "pause" else sup.kill(role)
        if pid is None:
            return
        self.outage = Outage(kind, role, pid, time.time(), shard, epoch)
        self.tally.add("faults injected")
        if kind == "pause":
            self.tally.add("cluster leaders paused past their lease")
            timer = threading.Timer(self.rng.uniform(2.0, 4.0), self.wake, args=(self.outage,))
            timer.start()
            timers.append(timer)
        else:
            self.tally.add("SIGKILLs")
            self.tally.add("cluster SIGKILLs")

    def wake(self, outage: Outage) -> None:
        self.supervisor.resume(outage.role)
        outage.cont_at = time.time()

    # -- closes and crossings ---------------------------------------------------------------------------------
    def act(self, label: str, alerts: list[Alert], views: dict[int, dict]) -> None:
        """The closes and the crossings, in a random order. A trade both closed and stopped out is not
        timed: its exit may well be the close's."""
        actions = []
        crossing: dict[tuple[str, str], list[int]] = defaultdict(list)
        timed: set[int] = set()
        for alert in alerts:
            for trade_id in alert.trades:
                view = views.get(trade_id, {})
                if view.get("state") != "OPEN":
                    continue
                if alert.fate in ("close", "both"):
                    actions.append(("close", trade_id))
                if alert.fate in ("stop", "both") and view.get("stop") is not None:
                    crossing[(view["exchange"], view["token"])].append(trade_id)
                    if alert.fate == "stop":
                        timed.add(trade_id)
        actions += [("cross", key) for key in crossing]
        self.rng.shuffle(actions)
        for what, arg in actions:
            if what == "close":
                self.close_trade(label, arg)
            else:
                self.cross(arg, crossing[arg], views, timed=[i for i in crossing[arg] if i in timed])

    def close_trade(self, label: str, trade_id: int) -> None:
        reply = self.intakes.send(label, "POST", f"/trades/{trade_id}/close")
        if reply is not None and reply.status_code == 202:
            self.tally.add("cluster closes via the API")
            self.acted.add(trade_id)
        elif reply is None or reply.status_code != 409:  # 409: no longer open (its stop fired first)
            print(f"  {label}: close of {trade_id}: {reply.status_code if reply else 'no intake'} "
                  f"{reply.text[:200] if reply else ''}", flush=True)

    def cross(self, instrument: tuple[str, str], ids: list[int], views: dict[int, dict],
              timed: list[int] | None = None) -> None:
        """Move the instrument's price a few ticks below the lowest of the trades' stops; the `timed` ones
        must fire (None: finishing a round, not counted as a crossing)."""
        exchange, token = instrument
        tick = views[ids[0]]["spec"].get("tick_size") or 5
        lowest = min(views[i]["stop"] for i in ids)
        target = (lowest // tick - self.rng.choice((1, 2, 4, 10))) * tick
        shard = shard_of(exchange, token, 2)
        crossing = Crossing(exchange, token, shard, target / 100, time.time(), list(timed or []))
        self.acted.update(ids)
        outage = self.outage
        if outage is not None and outage.kind in ("leader", "pause") and outage.shard == shard:
            crossing.outage = "killed" if outage.kind == "leader" else "paused"  # confirmed against the takeover
        self.price(target / 100, token, exchange)
        if timed is not None:
            self.crossings.append(crossing)

    # -- the end of a round -----------------------------------------------------------------------------------
    def settle(self, label: str, alerts: list[Alert]) -> None:
        ids = [i for alert in alerts for i in alert.trades]
        wait(lambda: all(v["state"] != "PENDING_ENTRY" for v in self.intakes.states(ids).values()), 60)
        wait(lambda: all(v["state"] in SETTLED for v in self.intakes.states(ids).values()), FIRST_WAIT_S)
        self.confirm_outage()
        events = {i: (v or {}).get("events", []) for i in ids for v in [self.intakes.view(i)]}
        check_failover(self.tally, label, self.crossings, events, FAILOVER_S, self.timings, self.outage)
        executors_share(self.crossings, self.tap.exits(), self.timings)
        views = self.intakes.states(ids)
        late = {i: v for i, v in views.items() if v["state"] not in SETTLED}
        if not late:
            return
        for trade_id, view in late.items():  # closed, stopped out or never entered, and still not settled: a fault
            if trade_id in self.acted or view["state"] == "PENDING_ENTRY":
                self.reported.add(trade_id)
                self.tally.bad("trades not settled", f"{label}: trade {trade_id} still {view['state']} "
                                                     f"{FIRST_WAIT_S:g} s after its entry, close or crossing")
        print(f"  {label}: not settled: {[(i, v['state']) for i, v in late.items()]}; closing or crossing again", flush=True)
        fates = {i: alert.fate for alert in alerts for i in alert.trades}
        stops = defaultdict(list)
        for trade_id, view in late.items():
            if view["state"] == "OPEN" and fates[trade_id] != "close" and view.get("stop") is not None:
                stops[(view["exchange"], view["token"])].append(trade_id)
            elif view["state"] in ("OPEN", "PENDING_ENTRY"):
                self.close_trade(label, trade_id)
        for instrument, trade_ids in stops.items():
            self.cross(instrument, trade_ids, views)
        wait(lambda: all(v["state"] in SETTLED for v in self.intakes.states(ids).values()), HELPED_WAIT_S)

    def confirm_outage(self) -> None:
        """A crossing counts as made with the leader down only if no other guard led the shard yet."""
        outage = self.outage
        if outage is None or outage.kind not in ("leader", "pause"):
            return
        wait(lambda: self.supervisor.takeover(outage.shard, outage.epoch) is not None, 20)
        outage.takeover = self.supervisor.takeover(outage.shard, outage.epoch)
        for crossing in self.crossings:
            if crossing.outage and not (outage.at <= crossing.at < (outage.takeover or float("inf"))):
                crossing.outage = None

    def check(self, label: str, alerts: list[Alert]) -> None:
        ids = [i for alert in alerts for i in alert.trades]
        sup = self.supervisor
        marks = self.marks
        if not wait(sup.whole, 90):
            print(f"  {label}: the cluster not whole again in 90 s", flush=True)
        full = {i: self.intakes.view(i) for i in ids}
        for trade_id, view in full.items():
            if view is None:
                self.tally.bad("alerts lost", f"{label}: trade {trade_id} of an acknowledged alert not in the store")
        views = {i: v["trade"] for i, v in full.items() if v is not None}
        check_trades(self.tally, label, views, self.reported)
        self.books.check_orders(label, views)
        self.sources.check(label)
        self.books.flat(label, self.watch)
        outage = self.outage
        if outage is not None and outage.kind == "pause":
            wait(lambda: any(e.pid == outage.pid for e in sup.exits), 20)
        read = {name: sup.tails[name].since() for name in self.cluster.roles}
        refused = sum("stale lease token refused" in line for name, lines in read.items() if name.startswith("executor")
                      for line in lines[marks[name]:])
        if outage is not None and outage.kind == "pause":
            events = {i: v["events"] for i, v in full.items() if v is not None}
            check_paused(self.tally, label, outage, sup.exits, self.tap.exits(), events, sup.excerpt(outage.role, outage.at))
        self.tally.add("stale intents refused", refused)
        check_error_lines(self.tally, label, {name: lines[marks[name]:] for name, lines in read.items()})
        check_role_exits(self.tally, label, sup.exits[self.exits_seen:], sup.excerpt)
        self.exits_seen = len(sup.exits)
        self.marks = {name: len(lines) for name, lines in read.items()}
        exits = self.tap.exits()
        crossed = "; ".join(f"{c.token} (shard {c.shard}, {c.bucket}) {', '.join(took(c, i, exits) for i in c.trades)}"
                            for c in self.crossings)
        self.summary = (f"{label}: {outage.role}; " if outage else f"{label}: no fault; ") + \
            f"{[(i, v['state']) for i, v in views.items()]}; crossing -> exit_fired: {crossed or 'none'}"


@contextlib.contextmanager
def _stopping(paper):
    try:
        yield paper
    finally:
        paper.stop()


def run(workdir: Path, tally: Tally, rounds: int = 30, seed: int = 11, kinds: tuple[str, ...] = KINDS,
        script: list[tuple[str, str]] | None = None) -> None:
    """`rounds` rounds; `script` names the first rounds' (fault, moment), the rest are drawn from `kinds`."""
    campaign = Campaign(workdir, tally, seed, kinds, script)
    started = time.monotonic()
    try:
        for n in range(1, rounds + 1):
            campaign.round(n)
            tally.add("cluster rounds")
            print(f"cluster round {n}/{rounds}: {time.monotonic() - started:.0f} s; {campaign.summary}", flush=True)
    finally:
        report_timings(tally, campaign.timings)
        campaign.close()
