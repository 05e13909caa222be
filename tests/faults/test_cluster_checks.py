"""The cluster campaign's checks (`tests/faults/full/cluster_checks.py`) on made-up observations: each
counts what it is there to count, so a clean campaign run means the cluster behaved, not that a check
looked at nothing."""
from __future__ import annotations

from collections import defaultdict

from service.cluster.commands import Exit
from streams import ExitIntent, ExitReason, Tick
from tests.faults.full.cluster_checks import (Crossing, Outage, Sources, check_error_lines, check_failover, check_paused,
                                              check_role_exits, check_trades)
from tests.faults.full.cluster_parts import RoleExit
from tests.faults.full.tally import Tally


def fired(at: float, ltp: int = 78_900, ts_ms: int = 1_000) -> list[dict]:
    return [{"kind": "exit_fired", "at_ms": round(at * 1000), "data": {"tick_ltp": ltp, "tick_ts_ms": ts_ms}}]


def test_a_stop_crossed_with_the_leader_down_must_fire_within_the_failover_time():
    tally, timings = Tally(), {"killed": [], "paused": [], "live": []}
    crossings = [Crossing("NSE", "3045", 1, 789.0, 100.0, [1, 2, 3], outage="killed"),
                 Crossing("NSE", "3045", 1, 789.0, 200.0, [4], outage="paused"),
                 Crossing("NSE", "3045", 1, 789.0, 300.0, [5])]
    events = {1: fired(101.2), 2: fired(103.5), 3: [], 4: fired(202.9), 5: fired(300.02)}
    check_failover(tally, "round", crossings, events, 3.0, timings, None)
    assert tally.figures["stops missed"] == 2  # trade 2 late, trade 3 never
    assert tally.figures["stop crossings with the leader killed"] == 3
    assert tally.figures["stop crossings with the leader paused"] == 1
    assert [round(t, 2) for t in timings["killed"]] == [1.2, 3.5] and [round(t, 2) for t in timings["paused"]] == [2.9]
    assert [round(t, 2) for t in timings["live"]] == [0.02]


def test_a_fault_between_a_live_crossing_and_its_exit_is_timed_apart():
    tally, timings = Tally(), defaultdict(list)
    outage = Outage("executor", "executor-P0001", 42, at=100.5)
    check_failover(tally, "round", [Crossing("NSE", "3045", 1, 789.0, 100.0, [1])], {1: fired(102.0)}, 3.0, timings,
                   outage)
    assert tally.failed() == [] and list(timings) == ["executor after the crossing"]


def stale_exit(token: int, trade_id: int = 7, ltp: int = 78_900, ts_ms: int = 1_000) -> Exit:
    tick = Tick(token="3045", exchange="NSE", ltp=ltp, exchange_ts_ms=ts_ms)
    return Exit(intent=ExitIntent(trade_id=trade_id, reason=ExitReason.STOP, level=79_000, tick=tick),
                lease="guard-1-of-2", token=token, fired=1)


def paused(**fields) -> Outage:
    return Outage("pause", "guard-1a", 4242, at=100.0, shard=1, epoch=16, cont_at=103.0, **fields)


def test_a_paused_leader_must_exit_with_status_3():
    for exits, bad in (([RoleExit("guard-1a", 4242, 3, 103.1, False, True)], 0),
                       ([RoleExit("guard-1a", 4242, 1, 103.1, False, True)], 1), ([], 1)):
        tally = Tally()
        check_paused(tally, "round", paused(), exits, [], {})
        assert tally.figures["paused leaders not exiting with status 3"] == bad


def test_an_intent_the_paused_leader_sent_after_waking_must_not_be_the_one_that_fired():
    gone = [RoleExit("guard-1a", 4242, 3, 103.1, False, True)]
    events = {7: fired(103.3)}
    tally = Tally()
    check_paused(tally, "round", paused(), gone, [(103.2, stale_exit(16))], events)
    assert tally.figures["stale intents acted on"] == 1
    assert tally.figures["intents sent by a paused leader after waking"] == 1
    # The new leader's intent for the same tick fired it: the stale one was not acted on.
    tally = Tally()
    check_paused(tally, "round", paused(), gone, [(102.0, stale_exit(20)), (103.2, stale_exit(16))], events)
    assert tally.figures["stale intents acted on"] == 0
    # Sent before the pause (still the newest token then): not a stale intent at all.
    tally = Tally()
    check_paused(tally, "round", paused(), gone, [(99.0, stale_exit(16))], events)
    assert tally.figures["intents sent by a paused leader after waking"] == 0 and tally.failed() == []


class FakePaper:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def control(self, method: str, path: str, **kwargs):
        rows = list(self.rows)
        return type("Reply", (), {"json": lambda self: {"orders": rows}})()


def row(route: str, code: str, peer: str, tag: str = "", refused: str = "") -> dict:
    return {"route": route, "clientcode": code, "peer": peer, "ordertag": tag, "refused": refused}


def test_order_requests_are_checked_once_each_even_as_the_exchange_forgets_the_oldest():
    paper, tally = FakePaper(), Tally()
    sources = Sources(paper, tally)
    paper.rows = [row("getPosition", "P0001", "127.0.0.1"), row("placeOrder", "P0001", "127.0.0.2", "tg1E1")]
    sources.check("r1")
    # The exchange dropped the first row and kept three new ones: the read, a wrong address, a refusal.
    paper.rows = paper.rows[1:] + [row("placeOrder", "P0002", "127.0.0.3", "tg2E1"),
                                   row("placeOrder", "P0002", "127.0.0.2", "tg2X1", refused="Order refused"),
                                   row("getOrderBook", "P0002", "127.0.0.9")]
    sources.check("r2")
    assert tally.figures["cluster order requests checked"] == 3
    assert tally.figures["orders from a wrong address"] == 1 and tally.figures["static-IP refusals"] == 1
    assert tally.figures["duplicate orders"] == 0
    paper.rows = paper.rows + [row("placeOrder", "P0001", "127.0.0.2", "tg1E1")]  # the same tag again
    sources.check("r3")
    assert tally.figures["duplicate orders"] == 1 and tally.figures["cluster order requests checked"] == 4


def test_only_the_campaigns_own_exits_are_expected():
    tally = Tally()
    check_role_exits(tally, "round", [RoleExit("intake-0", 1, -9, 0.0, True, False),
                                      RoleExit("guard-1a", 2, 3, 0.0, False, True),
                                      RoleExit("guard-0b", 3, 3, 0.0, False, False),
                                      RoleExit("executor-P0001", 4, 1, 0.0, False, False)], lambda name, since: "")
    assert tally.figures["guards that lost their lease unpaused"] == 1
    assert tally.figures["role exits not injected"] == 1


def test_error_lines_are_shown_but_a_paused_leaders_lost_lease_is_expected():
    tally = Tally()
    lines = ['{"level":"ERROR","msg":"execution task failed: ack-65","exc":"Traceback\\nValueError: x not in list"}',
             '{"level":"ERROR","msg":"the shard\'s lease is lost: this guard acts no more"}',
             '{"level":"WARNING","msg":"exit re-price refused"}', "tickguard executor   login P0001 ready"]
    check_error_lines(tally, "round", {"executor-P0001": lines})
    assert tally.figures["ERROR lines in the roles' logs, a lost lease aside"] == 1
    assert tally.findings == ["round: executor-P0001: execution task failed: ack-65 (ValueError: x not in list)"]


def test_every_trade_settles_and_expiries_are_counted_apart():
    tally = Tally()
    check_trades(tally, "round", {1: {"state": "CLOSED"}, 2: {"state": "EXPIRED", "reason": "ENTRY_TTL"},
                                  3: {"state": "OPEN", "filled": 5, "exited": 0, "stop": 79_000}})
    assert tally.figures["cluster trades expired"] == 1 and tally.figures["trades not settled"] == 1
