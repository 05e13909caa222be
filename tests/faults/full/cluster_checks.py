"""The cluster campaign's checks (`cluster.py`), each against what the paper exchange itself saw — its
order books by tag, its positions per login, where every order request came from — and the store.

- trades: every trade of an acknowledged alert settles (CLOSED, EXPIRED, REJECTED), a CLOSED one exited
  exactly what it filled;
- duplicate orders: no tag placed twice (accepted placeOrder requests per tag), no tag twice in a book,
  a trade's entry fills never beyond its quantity, its exit fills never beyond its entry fills;
- positions: per login and instrument the net never goes short (every trade is a buy), sampled while the
  round runs and read once it settled, when it must be flat;
- addresses: every order request of a login from its registered address, none refused by the rule;
- failover: a stop crossed while its shard's leader was dead or paused fires (`exit_fired`) within
  FAILOVER_S of the crossing;
- the paused leader: once continued it exits with status 3, and no intent it sends after waking is acted
  on (the executors refuse its token: counted as refused, not as a fault).
"""
from __future__ import annotations

import json
import statistics
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from paper.static_ips import ORDER_ROUTES
from service.trades import parse_tag
from service.cluster.commands import Exit
from tests.faults.full.cluster_parts import LOGINS, LoginBooks, RoleExit
from tests.faults.full.crash import until
from tests.faults.full.procs import Paper
from tests.faults.full.tally import Tally
from tests.support.cluster import REGISTERED

__all__ = ["Books", "Crossing", "Outage", "PositionWatch", "Sources", "check_failover", "check_paused",
           "check_error_lines", "check_role_exits", "check_trades", "executors_share", "report_timings", "spread", "took",
           "wait"]

SETTLED = {"CLOSED", "EXPIRED", "REJECTED"}
LIVE = ("open", "open pending", "trigger pending", "modified")


@dataclass
class Outage:
    """A fault of the round: a process killed, or a guard leader paused."""

    kind: str  # intake | executor | leader | standby | pause
    role: str
    pid: int
    at: float  # time.time() of the signal
    shard: int | None = None
    epoch: int | None = None  # a guard leader's lease token
    cont_at: float | None = None  # a pause: when it was continued
    takeover: float | None = None  # a guard leader's: when the next leader logged "leading the shard"


@dataclass
class Crossing:
    """One price move through the stops of the round's trades on one instrument."""

    exchange: str
    token: str
    shard: int
    ltp: float
    at: float  # time.time() just before the exchange was told
    trades: list[int]
    outage: str | None = None  # "killed" | "paused": the shard's leader was down at the crossing
    fired_s: dict[int, float] = field(default_factory=dict)  # trade -> seconds to its exit_fired
    bucket: str = "live"  # what the crossing met (`check_failover`)


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"p50 {statistics.median(values):.2f} s, max {max(values):.2f} s ({len(values)})"


class PositionWatch:
    """Samples every login's positions while the campaign runs: a net below zero is a flipped position."""

    def __init__(self, books: dict[str, LoginBooks], tally: Tally, every_s: float = 0.5) -> None:
        self.books, self.tally, self.every_s = books, tally, every_s
        self.label = ""
        self.flipped: set[tuple[str, str, str]] = set()  # (label, login, token) counted once
        self._quit = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="positions", daemon=True)

    def start(self) -> PositionWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._quit.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._quit.wait(self.every_s):
            for code, books in self.books.items():
                try:
                    nets = books.nets()
                except Exception:  # the exchange busy for a moment: the next sample tells
                    continue
                for (exchange, token), (net, symbol, _product) in nets.items():
                    if net < 0:
                        self.note(code, token, f"{code} {symbol} net {net} while the round ran")

    def note(self, code: str, token: str, detail: str) -> None:
        with self._lock:
            key = (self.label, code, token)
            if key in self.flipped:
                return
            self.flipped.add(key)
        self.tally.bad("positions flipped", f"{self.label}: {detail}")


class Books:
    """The exchange's side: both logins' books and positions."""

    def __init__(self, paper: Paper, tally: Tally) -> None:
        self.paper, self.tally = paper, tally
        self.books = {login.clientcode: LoginBooks(paper.url, login) for login in LOGINS}

    def close(self) -> None:
        for books in self.books.values():
            books.close()

    def by_trade(self) -> dict[int, dict[str, list[dict]]]:
        found: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for code, books in self.books.items():
            for order in books.orders():
                parsed = parse_tag(order.get("ordertag") or "")
                if parsed is not None:
                    found[parsed[0]][parsed[1]].append({**order, "login": code})
        return found

    def check_orders(self, label: str, views: dict[int, dict]) -> None:
        """By tag: no tag twice, entries within the trade's quantity, exits within the entries; nothing
        left working for a settled trade (cancelled, so the next round starts clean)."""
        books = self.by_trade()
        for trade_id, view in views.items():
            mine = books.get(trade_id, {})
            tags = Counter(o["ordertag"] for orders in mine.values() for o in orders)
            for tag, count in tags.items():
                if count > 1:
                    self.tally.bad("duplicate orders", f"{label}: tag {tag} {count} times in the book", count - 1)
            entered = sum(int(o.get("filledshares") or 0) for o in mine.get("entry", []))
            exited = sum(int(o.get("filledshares") or 0) for o in mine.get("exit", []))
            if entered > view["quantity"]:
                self.tally.bad("duplicate orders", f"{label}: trade {trade_id} entered {entered} of {view['quantity']}: "
                                                   f"{[(o['ordertag'], o['status']) for o in mine['entry']]}")
            if exited > entered:
                self.tally.bad("duplicate orders", f"{label}: trade {trade_id} exits filled {exited} > entries {entered}: "
                                                   f"{[(o['ordertag'], o['status'], o.get('filledshares')) for o in mine['exit']]}")
            if view["state"] == "CLOSED" and not (view["filled"] == view["exited"] == entered == exited):
                self.tally.bad("trades not settled", f"{label}: trade {trade_id} CLOSED with filled {view['filled']} "
                                                     f"exited {view['exited']}; the exchange: entered {entered}, exited {exited}")
            for order in (o for orders in mine.values() for o in orders if o["status"] in LIVE):
                if view["state"] in SETTLED:
                    self.tally.findings.append(f"{label}: {order['ordertag']} still working for a {view['state']} "
                                               f"trade; cancelled")
                    self.books[order["login"]].cancel(order)

    def flat(self, label: str, watch: PositionWatch) -> None:
        """Every login flat on every instrument once its trades settled; what is not is reported and closed."""
        for code, books in self.books.items():
            for (exchange, token), (net, symbol, product) in books.nets().items():
                if net < 0:
                    watch.note(code, token, f"{code} {symbol} net {net} after the round settled")
                elif net > 0:
                    self.tally.bad("trades not settled", f"{label}: {code} {symbol} net {net} left open at the exchange")
                if net:
                    books.flatten(exchange, token, symbol, product, net)


class Sources:
    """Where every order request came from, as the exchange remembers it (`GET /paper/v1/sources`)."""

    def __init__(self, paper: Paper, tally: Tally) -> None:
        self.paper, self.tally = paper, tally
        self.placed: Counter[str] = Counter()  # tag -> accepted placeOrder requests
        self._sources: list[tuple[str, ...]] = []

    def check(self, label: str) -> None:
        """The order requests since the last look: each from its login's address, none refused, no tag
        placed twice."""
        rows, complete = self._new_sources(label)
        for row in rows:
            if row[0] not in ORDER_ROUTES:
                continue
            self.tally.add("cluster order requests checked")
            route, code, peer, tag, refused = row
            if peer != REGISTERED.get(code.upper()):
                self.tally.bad("orders from a wrong address", f"{label}: {route} {tag} of {code} from {peer}")
            if refused:
                self.tally.bad("static-IP refusals", f"{label}: {route} {tag}: {refused}")
            if route == "placeOrder" and not refused and parse_tag(tag) is not None and (complete or tag not in self.placed):
                self.placed[tag] += 1
                if self.placed[tag] == 2:
                    self.tally.bad("duplicate orders", f"{label}: tag {tag} placed twice at the exchange")

    def _new_sources(self, label: str) -> tuple[list[tuple[str, ...]], bool]:
        """The requests the exchange remembered since the last call, and whether that is all of them. It
        keeps the newest 10 000 (reads too), dropping from the front: the last look's rows from some k on
        are this look's first ones."""
        rows = [(r["route"], r["clientcode"], r["peer"], r["ordertag"], r["refused"])
                for r in self.paper.control("GET", "/sources").json()["orders"]]
        before, self._sources = self._sources, rows
        if not before or not rows:
            return rows, True
        for k in range(len(before)):
            if before[k] == rows[0] and before[k:] == rows[:len(before) - k]:
                return rows[len(before) - k:], True
        self.tally.findings.append(f"{label}: more requests than the exchange keeps since the last look: every "
                                   "remembered one checked again (its addresses may be counted twice)")
        return rows, False

def check_trades(tally: Tally, label: str, views: dict[int, dict], reported: set[int] = frozenset()) -> None:
    """Every trade settled (those in `reported` counted already); the expired and rejected ones counted apart."""
    for trade_id, view in views.items():
        state = view["state"]
        if state == "EXPIRED":
            tally.add("cluster trades expired")
            tally.findings.append(f"{label}: trade {trade_id} EXPIRED ({view['reason']})")
        elif state == "REJECTED":
            tally.add("cluster trades rejected")
            tally.findings.append(f"{label}: trade {trade_id} REJECTED ({view['reason']})")
        elif state not in SETTLED and trade_id not in reported:
            tally.bad("trades not settled", f"{label}: trade {trade_id} {state} (filled {view['filled']}, "
                                            f"exited {view['exited']}, stop {view['stop']})")


def fired_at(events: list[dict]) -> float | None:
    return next((e["at_ms"] / 1000 for e in events if e["kind"] == "exit_fired"), None)


def check_failover(tally: Tally, label: str, crossings: list[Crossing], events: dict[int, list[dict]],
                   failover_s: float, timings: dict[str, list[float]], outage: Outage | None) -> None:
    """Every crossing fired; one made while the shard's leader was down fired within `failover_s`. The
    times go to `timings` by what the crossing met: "killed" or "paused" (the leader down at the
    crossing), "<fault> after the crossing" (the round's fault came between the crossing and the exit
    fired: an executor restarting, a leader failing over), or "live"."""
    for crossing in crossings:
        for trade_id in crossing.trades:
            fired = fired_at(events[trade_id])
            took = None if fired is None else fired - crossing.at
            kind = crossing.outage
            if kind is not None:
                tally.add(f"stop crossings with the leader {kind}")
            elif outage is not None and (fired is None or outage.at < fired):
                kind = f"{outage.kind} {'after' if crossing.at <= outage.at else 'before'} the crossing"
            if took is None:
                tally.bad("stops missed", f"{label}: trade {trade_id}'s stop crossed at {crossing.ltp} (leader "
                                          f"{crossing.outage or 'up'}) never fired")
                continue
            crossing.fired_s[trade_id] = took
            crossing.bucket = kind or "live"
            timings[crossing.bucket].append(took)
            if crossing.outage is not None and took > failover_s:
                tally.bad("stops missed", f"{label}: trade {trade_id}'s stop crossed at {crossing.ltp} with the leader "
                                          f"{kind} fired {took:.2f} s later (allowed {failover_s:g} s)")


def on_the_bus(crossing: Crossing, trade_id: int, tap_exits: list[tuple[float, Exit]]) -> float | None:
    """When the trade's first exit intent after the crossing was seen on the bus."""
    return min((at for at, c in tap_exits if c.intent.trade_id == trade_id and at >= crossing.at), default=None)


def executors_share(crossings: list[Crossing], tap_exits: list[tuple[float, Exit]], timings: dict[str, list[float]]) -> None:
    """Exit intent on the bus -> exit_fired, for the crossings no executor restart held up."""
    for crossing in crossings:
        for trade_id, seconds in crossing.fired_s.items() if not crossing.bucket.startswith("executor") else ():
            if (bus := on_the_bus(crossing, trade_id, tap_exits)) is not None:
                timings["exit intent on the bus -> exit_fired"].append(crossing.at + seconds - bus)


def took(crossing: Crossing, trade_id: int, tap_exits: list[tuple[float, Exit]]) -> str:
    """Crossing -> exit_fired, and for a slow one crossing -> its first exit intent on the bus."""
    seconds = crossing.fired_s.get(trade_id)
    if seconds is None:
        return "never"
    bus = on_the_bus(crossing, trade_id, tap_exits)
    return f"{seconds:.2f} s (intent on the bus at {bus - crossing.at:.2f})" if seconds >= 0.1 and bus else f"{seconds:.2f} s"


def check_paused(tally: Tally, label: str, outage: Outage, exits: list[RoleExit], tap_exits: list[tuple[float, Exit]],
                 events: dict[int, list[dict]], excerpt: str = "") -> None:
    """The paused leader exited with status 3 once continued; no intent it sent after waking was acted on
    (`tap_exits`: every Exit command on the bus, as received; the executors' refusals of a stale token are
    counted apart, from their logs)."""
    exits = [e for e in exits if e.pid == outage.pid]
    if not exits or exits[0].status != 3:
        status = exits[0].status if exits else "none yet"
        tally.bad("paused leaders not exiting with status 3", f"{label}: {outage.role} (pid {outage.pid}) exit status "
                                                                 f"{status}\n{excerpt}")
    woke = outage.cont_at or outage.at
    stale = [(at, c) for at, c in tap_exits if c.token == outage.epoch and at >= woke]
    tally.add("intents sent by a paused leader after waking", len(stale))
    newer = {(c.intent.trade_id, _tick(c)) for _, c in tap_exits if c.token != outage.epoch}
    for at, command in stale:
        trade_id = command.intent.trade_id
        acted = [e for e in events.get(trade_id, []) if e["kind"] == "exit_fired"
                 and (e["data"].get("tick_ts_ms"), e["data"].get("tick_ltp")) == _tick(command)]
        if acted and (trade_id, _tick(command)) not in newer:
            tally.bad("stale intents acted on", f"{label}: trade {trade_id}'s exit intent with token {command.token}, "
                                                f"sent {at - woke:.2f} s after the leader woke, fired its exit")


def check_role_exits(tally: Tally, label: str, exits: list[RoleExit], excerpt: Callable[[str, float], str]) -> None:
    """Every role exit was the campaign's doing: a SIGKILL, or a paused leader's status 3 once continued. A
    guard that lost its lease unpaused (starved past its lease) is counted apart, not as a fault."""
    for gone in exits:
        if (gone.killed and gone.status == -9) or (gone.paused and gone.status == 3):
            continue
        lines = excerpt(gone.role, gone.at - 5)
        if gone.role.startswith("guard") and gone.status == 3:
            tally.add("guards that lost their lease unpaused")
            tally.findings.append(f"{label}: {gone.role} lost its lease without a pause\n{lines}")
            print(f"  {label}: {gone.role} lost its lease without a pause\n{lines}", flush=True)
        else:
            tally.bad("role exits not injected", f"{label}: {gone.role} (pid {gone.pid}) exited with {gone.status}\n{lines}")


def check_error_lines(tally: Tally, label: str, lines: dict[str, list[str]]) -> None:
    """ERROR lines the roles logged in the round (a paused leader's lost lease aside): counted and shown,
    not a fault by themselves — the figures above say whether anything went wrong for the trades."""
    for role, text in lines.items():
        for line in text:
            record = _record(line)
            if record.get("level") in ("ERROR", "CRITICAL") and "lease is lost" not in record.get("msg", ""):
                tally.add("ERROR lines in the roles' logs, a lost lease aside")
                exc = record.get("exc", "").strip().splitlines()
                detail = f"{role}: {record.get('msg')}" + (f" ({exc[-1]})" if exc else "")
                tally.findings.append(f"{label}: {detail}")
                print(f"  {label}: {detail}", flush=True)


def _record(line: str) -> dict:
    try:
        return json.loads(line) if line.startswith("{") else {}
    except ValueError:
        return {}


def report_timings(tally: Tally, timings: dict[str, list[float]]) -> None:
    for kind in ("killed", "paused"):
        values = sorted(timings.get(kind, []))
        if values:
            tally.add(f"failover, leader {kind}: p50 ms", round(statistics.median(values) * 1000))
            tally.add(f"failover, leader {kind}: max ms", round(values[-1] * 1000))
    if timings.get("live"):
        tally.add("crossing -> exit_fired, leader up: max ms", round(max(timings["live"]) * 1000))
    if timings.get("exit intent on the bus -> exit_fired"):
        tally.add("exit intent on the bus -> exit_fired: max ms", round(max(timings["exit intent on the bus -> exit_fired"]) * 1000))
    for kind, values in sorted(timings.items()):
        print(f"{kind if '->' in kind else f'crossing -> exit_fired, {kind}'}: {spread(values)}", flush=True)


def _tick(command) -> tuple[int | None, int | None]:
    tick = command.intent.tick
    return (tick.exchange_ts_ms, tick.ltp) if tick is not None else (None, None)


def wait(predicate, timeout: float, every: float = 0.1):
    """The first truthy value of `predicate()`, or its last value once `timeout` passes."""
    return until(predicate, timeout, every)
