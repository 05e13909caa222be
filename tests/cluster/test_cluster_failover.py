"""Failures of a cluster's processes, one at a time: a guard leader killed (its standby fires the stop),
a guard leader paused past its lease (it acts no more on waking; its old token is refused), an
executor killed (its commands wait on the bus and go out once it is back)."""
from __future__ import annotations

import asyncio
import signal

import pytest

from service.cluster.bus import Bus
from service.cluster.commands import Exit, encode
from streams import ExitIntent, ExitReason
from tests.support.cluster import NATS_URL, REGISTERED, Cluster
from tests.support.paper import DEMO
from tests.support.postgres import fresh_database
from tests.support.waiting import wait_for


@pytest.fixture
def cluster(tmp_path, paper_factory):
    """One intake, both executors, one guard shard with a standby; entries may wait a minute for an executor."""
    paper = paper_factory(static_ips=REGISTERED)
    with fresh_database() as url:
        running = Cluster(tmp_path, paper, url, shards=1, ENTRY_TTL_S="60")
        try:
            yield running.start(intakes=1)
        finally:
            running.stop()


def exits(view: dict) -> list[dict]:
    return [o for o in view["orders"] if o["role"] == "exit"]


def fired(view: dict) -> dict:
    (event,) = [e for e in view["events"] if e["kind"] == "exit_fired"]
    return event["data"]


def test_a_killed_guard_leaders_standby_fires_the_stop(cluster):
    trade = cluster.open_trade()
    old = cluster.wait_leader(0)
    old.kill()
    cluster.price(789)
    view = cluster.wait_trade(trade["id"], lambda t: t["state"] == "CLOSED", what="the standby's stop")
    assert fired(view)["reason"] == "STOP" and len(exits(view)) == 1
    new = cluster.wait_leader(0)
    assert new is not old and "leading the shard" in new.text()


def test_a_paused_leader_acts_no_more_and_its_old_token_is_refused(cluster):
    trade = cluster.open_trade()
    old = cluster.wait_leader(0)
    old_epoch = cluster.epoch(old)
    old.signal(signal.SIGSTOP)
    new = cluster.wait_new_leader(0, old)
    assert cluster.epoch(new) > old_epoch

    # What the paused leader would send on waking: an exit with its old token, refused by the executor.
    stale = Exit(intent=ExitIntent(trade_id=trade["id"], reason=ExitReason.STOP, level=trade["stop"], tick=None),
                 lease="guard-0-of-1", token=old_epoch, fired=1)

    async def send() -> None:
        bus = Bus(NATS_URL, cluster.name)
        await bus.connect()
        try:
            await bus.publish(bus.subject("cmd", DEMO.clientcode), encode(stale), msg_id=stale.msg_id())
        finally:
            await bus.close()

    asyncio.run(send())
    executor = cluster.roles[f"executor-{DEMO.clientcode}"]
    wait_for(lambda: "stale lease token refused" in executor.text(), what="the stale exit refused")
    assert cluster.trade(trade["id"])["trade"]["state"] == "OPEN"

    old.signal(signal.SIGCONT)  # it wakes, finds its lease lost and exits for its supervisor to restart it
    assert old.proc.wait(timeout=20) == 3
    assert "lease is lost" in old.text()

    cluster.price(789)
    view = cluster.wait_trade(trade["id"], lambda t: t["state"] == "CLOSED", what="the new leader's stop")
    assert fired(view)["reason"] == "STOP" and len(exits(view)) == 1


def test_a_killed_executors_commands_wait_and_go_out_once_it_is_back(cluster):
    executor = cluster.roles[f"executor-{DEMO.clientcode}"]
    executor.kill()
    cluster.price(800)
    reply = cluster.alert(accounts=["MAIN"], stoploss={"type": "points", "value": 10})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    assert cluster.trade(trade_id)["trade"]["state"] == "PENDING_ENTRY"
    wait_for(lambda: cluster.status()[1]["commands"][DEMO.clientcode] == {"waiting": 1, "unacknowledged": 0},
             what="the entry's command waiting on the bus")
    executor.start()
    executor.wait_ready()
    view = cluster.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                              what="the entry sent by the restarted executor")
    assert [o["tag"] for o in view["orders"]] == [f"tg{trade_id}E1"]
