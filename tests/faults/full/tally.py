"""The figures of a fault run and the table they print as."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Tally"]

ZERO_GOALS = ("alerts lost", "duplicate orders", "positions flipped", "exits beyond position", "stops missed", "5xx seen",
              "trades not settled", "schema failures",
              # the broker-stop campaign (backstop.py)
              "stops crossed while down, armed >= 2 s before the kill, no broker stop", "double exits",
              "broker orders left live for settled trades",
              # the cluster campaign (cluster.py)
              "orders from a wrong address", "static-IP refusals", "stale intents acted on",
              "paused leaders not exiting with status 3", "role exits not injected")
BACKSTOP = ("backstop rounds", "backstop SIGKILLs", "stops crossed while down",
            "stops crossed while down, armed < 2 s before the kill, no broker stop yet", "broker stops filled while down",
            "kills with a broker-stop cancel held in flight", "trades closed BROKER_STOP")
CLUSTER = ("cluster rounds", "cluster SIGKILLs", "cluster leaders paused past their lease", "cluster trades",
           "cluster closes via the API", "cluster order requests checked", "cluster trades expired", "cluster trades rejected",
           "stop crossings with the leader killed", "stop crossings with the leader paused",
           "failover, leader killed: p50 ms", "failover, leader killed: max ms",
           "failover, leader paused: p50 ms", "failover, leader paused: max ms",
           "crossing -> exit_fired, leader up: max ms", "exit intent on the bus -> exit_fired: max ms",
           "stale intents refused",
           "intents sent by a paused leader after waking", "guards that lost their lease unpaused",
           "ERROR lines in the roles' logs, a lost lease aside")


@dataclass
class Tally:
    figures: dict[str, int] = field(default_factory=lambda: {
        "faults injected": 0, "SIGKILLs": 0, "alerts acknowledged": 0, "hostile bodies": 0, "stop crossings checked": 0,
        "schema cases": 0,
        "exit scenarios": 0,
        **{name: 0 for name in BACKSTOP},
        **{name: 0 for name in CLUSTER},
        **{name: 0 for name in ZERO_GOALS}})
    findings: list[str] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        self.figures[name] += n

    def bad(self, name: str, detail: str, n: int = 1) -> None:
        self.figures[name] += n
        self.findings.append(f"{name}: {detail}")
        print(f"  !! {name}: {detail}", flush=True)

    def failed(self) -> list[str]:
        return [name for name in ZERO_GOALS if self.figures[name]]

    def table(self) -> str:
        rows = [("figure", "value", "goal"), ("---", "---:", "---:")]
        for name, value in self.figures.items():
            rows.append((name, str(value), "0" if name in ZERO_GOALS else "—"))
        return "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
