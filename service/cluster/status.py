"""`tickguard cluster-status`: who leads each guard shard (with its token and the age of its last
renewal), each login's commands waiting for its executor, and the outbox rows not yet published —
read from the bus and the store, changing nothing."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats.js.errors

from service.cluster.bus import Bus
from service.cluster.commands import login_part
from service.cluster.remote import require_store
from service.settings import Settings
from service.store import Store

__all__ = ["cluster_status", "render"]


async def cluster_status(settings: Settings, logins: list[str]) -> dict[str, Any]:
    bus = Bus(settings.nats_url, settings.cluster_name, lease_ttl_s=settings.failover_s / 2, name="status")
    await bus.connect()
    try:
        shards = {}
        for shard in range(settings.guard_shards):
            name = f"guard-{shard}-of-{settings.guard_shards}"
            try:
                entry = await bus.kv.get(name)
            except nats.js.errors.KeyNotFoundError:
                shards[name] = None
                continue
            value = json.loads(entry.value or b"{}")
            shards[name] = {"holder": value.get("holder"), "token": value.get("token") or entry.revision,
                            "renewed_s_ago": round(time.time() - value.get("at_ms", 0) / 1000, 2)}
        commands = {}
        for login in logins:
            try:
                info = await bus.js.consumer_info(bus.cmd_stream, f"executor-{login_part(login)}")
            except nats.js.errors.NotFoundError:
                commands[login] = None  # no executor has consumed yet
                continue
            commands[login] = {"waiting": info.num_pending, "unacknowledged": info.num_ack_pending}
    finally:
        await bus.close()
    store = Store(settings.database_url)
    await asyncio.to_thread(store.open)
    try:
        unpublished, oldest = await store.db.read(lambda db: tuple(db.execute(
            "SELECT COUNT(*), MIN(created_ms) FROM outbox WHERE published_ms IS NULL").fetchone()))
    finally:
        await store.close()
    age = None if oldest is None else round(time.time() - oldest / 1000, 2)
    return {"cluster": settings.cluster_name, "shards": shards, "commands": commands,
            "outbox": {"unpublished": unpublished, "oldest_s": age}}


def render(status: dict[str, Any]) -> str:
    lines = [f"cluster {status['cluster']}"]
    for name, lease in status["shards"].items():
        lines.append(f"  {name:<16} " + ("NO LEADER" if lease is None else
                     f"led by {lease['holder']}  token {lease['token']}  renewed {lease['renewed_s_ago']} s ago"))
    for login, queue in status["commands"].items():
        lines.append(f"  executor {login:<8} " + ("never consumed" if queue is None else
                     f"{queue['waiting']} commands waiting, {queue['unacknowledged']} taken and not yet acknowledged"))
    outbox = status["outbox"]
    lines.append(f"  outbox           {outbox['unpublished']} unpublished"
                 + ("" if outbox["oldest_s"] is None else f" (oldest {outbox['oldest_s']} s)"))
    return "\n".join(lines)


def run(settings: Settings, logins: list[str], as_json: bool) -> int:
    """Print the status; 1 when a shard has no leader or rows wait in the outbox for more than 10 s."""
    require_store(settings)
    status = asyncio.run(cluster_status(settings, logins))
    print(json.dumps(status) if as_json else render(status))
    leaderless = any(lease is None for lease in status["shards"].values())
    return 1 if leaderless or (status["outbox"]["oldest_s"] or 0) > 10 else 0
