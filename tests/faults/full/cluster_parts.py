"""What the cluster campaign (`cluster.py`) runs the cluster with: the paper exchange in a process of its
own enforcing the static-IP rule, a supervisor that restarts every role process that exits (systemd's
`Restart=always`) and through which every SIGKILL, SIGSTOP and SIGCONT goes, each role's log read as
it grows, a tap on the bus's command subjects, and each login's own view of its books.
"""
from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import random
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import httpx

from paper.auth import PaperLogin
from service.cluster.commands import Command, Exit, decode_command
from tests.faults.full.procs import HEADERS, BrokerView, Paper
from tests.faults.full.tally import Tally
from tests.support.cluster import NATS_URL, REGISTERED, Cluster, Role
from tests.support.paper import DEMO, OTHER

__all__ = ["CommandTap", "Intakes", "LoginBooks", "LOGINS", "RoleExit", "Supervisor", "start_paper"]

LOGINS = (DEMO, OTHER)  # P0001 (the market-data login, account MAIN) and P0002 (account OWN)
RESTART_S = 0.2  # systemd's RestartSec is 100 ms by default; a little more for the process table


def start_paper(workdir: Path, **env: str) -> Paper:
    """The paper exchange as a process, knowing both logins and refusing an order from any address but
    the login's registered one."""
    credentials = workdir / "paper-credentials.json"
    credentials.write_text(json.dumps([{"clientcode": OTHER.clientcode, "password": OTHER.pin, "api_key": OTHER.api_key,
                                        "totp_secret": OTHER.totp_secret}]))
    credentials.chmod(0o600)
    return Paper(workdir, PAPER_STATIC_IPS=json.dumps(REGISTERED), CREDENTIALS_FILE=str(credentials), **env).start()


@dataclass(frozen=True)
class RoleExit:
    role: str
    pid: int
    status: int
    at: float  # time.time()
    killed: bool  # SIGKILLed by the campaign
    paused: bool  # SIGSTOPped (and continued) by the campaign before it exited


class LogTail:
    """One role's log (shared by all its starts, appended to), read as it grows: (byte offset, line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.offsets: list[int] = []
        self.lines: list[str] = []
        self._lock = threading.Lock()  # read by the rounds and by the fault timers

    def since(self, offset: int = 0) -> list[str]:
        """The lines written at or after byte `offset`."""
        with self._lock:
            if self.path.exists():
                self._read_more()
            return self.lines[bisect.bisect_left(self.offsets, offset):]

    def _read_more(self) -> None:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        end = data.rfind(b"\n") + 1
        position = self.offset
        for raw in data[:end].splitlines(keepends=True):
            self.offsets.append(position)
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            position += len(raw)
        self.offset += end


class Supervisor:
    """Restart=always for the cluster's roles; kills and pauses go through it so a restart never races them."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.lock = threading.Lock()
        self.exits: list[RoleExit] = []
        self.starts: dict[str, list[tuple[int, int]]] = {}  # role -> [(pid, log offset at its start)]
        self.killed: set[int] = set()
        self.paused: dict[str, int] = {}  # role -> pid, while stopped
        self.was_paused: set[int] = set()
        self.tails = {name: LogTail(role.log) for name, role in cluster.roles.items()}
        self._down: dict[str, float] = {}  # role -> when its exit was seen
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> Supervisor:
        for name, role in self.cluster.roles.items():
            assert role.proc is not None
            self.starts[name] = [(role.proc.pid, 0)]
        self._thread.start()
        return self

    def stop(self) -> None:
        self._quit.set()
        self._thread.join(timeout=10)
        with self.lock:
            for name in list(self.paused):
                self._cont(name)

    def _run(self) -> None:
        while not self._quit.wait(0.05):
            with self.lock:
                for name, role in self.cluster.roles.items():
                    self._look_after(name, role)

    def _look_after(self, name: str, role: Role) -> None:
        if name not in self._down:
            status = role.proc.poll() if role.proc is not None else None
            if status is None:
                return
            pid = role.proc.pid
            self.exits.append(RoleExit(name, pid, status, time.time(), pid in self.killed, pid in self.was_paused))
            self.paused.pop(name, None)
            self._down[name] = time.monotonic()
        if time.monotonic() - self._down[name] >= RESTART_S:
            offset = role.log.stat().st_size if role.log.exists() else 0
            role.start()
            self.starts[name].append((role.proc.pid, offset))
            del self._down[name]

    # Faults ------------------------------------------------------------------------------------------
    def kill(self, name: str) -> int | None:
        """SIGKILL the role's process; its pid (None when it was not running)."""
        with self.lock:
            role = self.cluster.roles[name]
            if name in self._down or role.proc is None or role.proc.poll() is not None:
                return None
            self.killed.add(role.proc.pid)
            role.proc.send_signal(signal.SIGKILL)
            return role.proc.pid

    def pause(self, name: str) -> int | None:
        with self.lock:
            role = self.cluster.roles[name]
            if name in self._down or role.proc is None or role.proc.poll() is not None:
                return None
            role.proc.send_signal(signal.SIGSTOP)
            self.paused[name] = role.proc.pid
            self.was_paused.add(role.proc.pid)
            return role.proc.pid

    def _cont(self, name: str) -> None:
        pid = self.paused.pop(name, None)
        role = self.cluster.roles[name]
        if pid is not None and role.proc is not None and role.proc.pid == pid and role.proc.poll() is None:
            role.proc.send_signal(signal.SIGCONT)

    def resume(self, name: str) -> None:
        with self.lock:
            self._cont(name)

    # What the roles say -----------------------------------------------------------------------------
    def current(self, name: str) -> tuple[int, list[str]] | None:
        """The running process of the role and what it has logged since it started; None while it is down."""
        with self.lock:
            role = self.cluster.roles[name]
            if name in self._down or role.proc is None or role.proc.poll() is not None:
                return None
            pid, offset = self.starts[name][-1]
        if pid != role.proc.pid:
            return None
        return pid, self.tails[name].since(offset)

    def ready(self, name: str) -> bool:
        now = self.current(name)
        if now is None or name in self.paused:
            return False
        role = self.cluster.roles[name]
        if role.url is not None:
            try:
                return httpx.get(f"{role.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        return any(role.ready in line for line in now[1])

    def leader(self, shard: int) -> tuple[str, int] | None:
        """(role, epoch) of the guard leading the shard now: running, not paused, leading since its start
        and not having lost it; None during a failover."""
        found = []
        for name in self.cluster.roles:
            if not name.startswith(f"guard-{shard}") or name in self.paused:
                continue
            now = self.current(name)
            if now is None:
                continue
            lines = [_json(line) for line in now[1]]
            leading = [line for line in lines if line.get("msg") == "leading the shard"]
            lost = any("lease is lost" in str(line.get("msg", "")) for line in lines)
            if leading and not lost:
                found.append((name, int(leading[-1]["epoch"])))
        return found[0] if len(found) == 1 else None

    def standby(self, shard: int) -> str | None:
        leader = self.leader(shard)
        names = [n for n in self.cluster.roles if n.startswith(f"guard-{shard}") and (leader is None or n != leader[0])
                 and self.ready(n)]
        return names[0] if names else None

    def whole(self) -> bool:
        """Every role running and ready, one leader per shard."""
        return all(self.ready(name) for name in self.cluster.roles) and \
            all(self.leader(shard) is not None for shard in range(self.cluster.shards))

    def takeover(self, shard: int, epoch: int | None) -> float | None:
        """When a guard of the shard first logged leading it with a token above `epoch` (time.time())."""
        found = []
        for name in self.cluster.roles:
            if name.startswith(f"guard-{shard}"):
                for line in map(_json, self.tails[name].since()):
                    if line.get("msg") == "leading the shard" and int(line["epoch"]) > (epoch or 0):
                        found.append(_stamp(line["ts"]))
        return min(found) if found else None

    def excerpt(self, name: str, since: float, lines: int = 12) -> str:
        """The role's log lines stamped at or after `since` (time.time()), the last `lines` of them."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
        picked = [line for line in self.tails[name].since() if _json(line).get("ts", "9999") >= stamp]
        return "\n".join(f"    {name}: {line[:400]}" for line in picked[-lines:])


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def _json(line: str) -> dict:
    if not line.startswith("{"):
        return {}
    try:
        return json.loads(line)
    except ValueError:
        return {}


class Intakes:
    """Requests to the cluster's intakes: each to a random one, sent again to either while none answers
    (killed, restarting); a 5xx is counted and sent again."""

    def __init__(self, cluster: Cluster, tally: Tally, rng: random.Random) -> None:
        self.tally, self.rng = tally, rng
        self.http = {name: httpx.Client(base_url=role.url, headers=HEADERS, timeout=10)
                     for name, role in cluster.roles.items() if role.url}

    def close(self) -> None:
        for client in self.http.values():
            client.close()

    def send(self, label: str, method: str, path: str, deadline_s: float = 45.0, **kwargs) -> httpx.Response | None:
        names = list(self.http)
        self.rng.shuffle(names)
        deadline = time.monotonic() + deadline_s
        for attempt in itertools.count(1):
            name = names[attempt % len(names)]
            try:
                reply = self.http[name].request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    print(f"  {label}: {method} {path}: no intake answered ({exc!r})", flush=True)
                    return None
                time.sleep(0.1 if attempt % len(names) else 0.3)
                continue
            if reply.status_code < 500 or time.monotonic() > deadline:
                return reply
            self.tally.bad("5xx seen", f"{label}: {method} {path} on {name}: {reply.status_code} {reply.text[:200]}")
            time.sleep(0.1)
        return None

    def view(self, trade_id: int) -> dict | None:
        reply = self.send(f"trade {trade_id}", "GET", f"/trades/{trade_id}")
        return reply.json() if reply is not None and reply.status_code == 200 else None

    def states(self, ids: list[int]) -> dict[int, dict]:
        """Each trade's row (state "MISSING" when the store does not have it)."""
        return {i: (v["trade"] if (v := self.view(i)) else {"state": "MISSING"}) for i in ids}


class CommandTap:
    """Every order command published on the cluster's bus, as a plain subscriber of `<cluster>.cmd.>` sees
    it (core NATS hands it a copy of what the stream stores): (time.time() received, command)."""

    def __init__(self, cluster_name: str) -> None:
        self.subject = f"{cluster_name}.cmd.>"
        self.seen: list[tuple[float, Command]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="command-tap", daemon=True)
        self._nc = None

    def start(self) -> CommandTap:
        import nats

        async def connect() -> None:
            self._nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=-1)
            await self._nc.subscribe(self.subject, cb=self._heard)

        self._thread.start()
        asyncio.run_coroutine_threadsafe(connect(), self._loop).result(timeout=10)
        return self

    async def _heard(self, msg) -> None:
        try:
            self.seen.append((time.time(), decode_command(msg.data)))
        except ValueError:
            pass  # (msgspec's errors are ValueErrors) not a command: nothing to count

    def exits(self, trade_id: int | None = None) -> list[tuple[float, Exit]]:
        return [(at, c) for at, c in list(self.seen) if isinstance(c, Exit)
                and (trade_id is None or c.intent.trade_id == trade_id)]

    def stop(self) -> None:
        if self._nc is not None:
            asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class LoginBooks(BrokerView):
    """One login's own view of its books at the paper exchange; orders it sends leave from its registered
    address (a trader tidying up by hand)."""

    def __init__(self, paper_url: str, login: PaperLogin) -> None:
        super().__init__(SimpleNamespace(url=paper_url), login, REGISTERED[login.clientcode])

    def positions(self) -> list[dict]:
        return self._get("/order/v1/getPosition")

    def nets(self) -> dict[tuple[str, str], tuple[int, str, str]]:
        """(exchange, token) -> (net quantity, trading symbol, product) of every position row."""
        return {(r["exchange"], r["symboltoken"]): (int(r["netqty"]), r["tradingsymbol"], r["producttype"])
                for r in self.positions()}

    def flatten(self, exchange: str, token: str, symbol: str, product: str, net: int) -> None:
        self.http.post("/order/v1/placeOrder", json={
            "variety": "NORMAL", "tradingsymbol": symbol, "symboltoken": token, "exchange": exchange,
            "transactiontype": "SELL" if net > 0 else "BUY", "ordertype": "MARKET", "producttype": product,
            "duration": "DAY", "quantity": str(abs(net)), "ordertag": "manualflat"})

    def cancel(self, order: dict) -> None:
        self.http.post("/order/v1/cancelOrder", json={"variety": order.get("variety") or "NORMAL",
                                                        "orderid": order["orderid"]})

    def close(self) -> None:
        self.http.close()

