"""The cluster's roles as commands: `tickguard intake`, `tickguard executor --login CODE`,
`tickguard guard --shard i/n` (README "Running as a cluster")."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from service.errors import SettingsError
from service.settings import Settings

__all__ = ["add_commands", "run"]

log = logging.getLogger("tickguard.cluster")


def add_commands(commands: argparse._SubParsersAction) -> None:
    intake = commands.add_parser("intake", help="a cluster's webhooks, API, feed and dashboard (any number)")
    intake.add_argument("--host", default="127.0.0.1")
    intake.add_argument("--port", type=int, default=8000)
    executor = commands.add_parser("executor", help="a cluster's orders for one login (one per login, on its host)")
    executor.add_argument("--login", required=True, help="the client code (SMARTAPI_USER or one of CREDENTIALS_FILE)")
    guard = commands.add_parser("guard", help="a cluster's stop engine for one shard (a leader and standbys)")
    guard.add_argument("--shard", required=True, help="i/n: this process's shard of GUARD_SHARDS=n")
    status = commands.add_parser("cluster-status", help="who leads each shard, commands waiting, the outbox")
    status.add_argument("--json", action="store_true", help="print JSON")


async def _until_signalled(role) -> int:
    """Run `role` until SIGTERM/SIGINT (or, for a guard, until its lease is lost), then stop it."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping.set)
    code = 0
    try:  # `run` returns only when the role may not go on (a guard whose lease is lost): its exit status
        running = asyncio.create_task(role.run())
        waiting = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if running in done:
            code = running.result()
        else:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    finally:
        await role.stop()
    return code


async def _intake(settings: Settings, host: str, port: int) -> None:
    from service.cluster.intake import IntakeRole
    from service.serving import bound_port, listen, serve
    from service.web.app import create_app

    sock = listen(host, port, "the intake (--host, --port)")
    app = create_app(settings, IntakeRole(settings))
    print(f"tickguard intake     http://{host}:{bound_port(sock)}/  (cluster {settings.cluster_name})", flush=True)
    await serve(app, sock, log_level=settings.log_level)


def run(args: argparse.Namespace, settings: Settings, run_loop: Callable[[Coroutine[Any, Any, None], str], None]) -> int:
    """Run the role `args.command` on the event loop `run_loop` starts (service.cli's)."""
    if settings.market_data == "live" and args.command != "cluster-status":
        raise SettingsError([("MARKET_DATA", "live market data runs with `tickguard serve` only, not in a cluster")])
    if args.command == "cluster-status":
        from service.cluster.executor import logins_of
        from service.cluster.status import run as show

        return show(settings, logins_of(settings), args.json)
    if args.command == "intake":
        run_loop(_intake(settings, args.host, args.port), settings.event_loop)
        return 0
    if args.command == "executor":
        from service.cluster.executor import ExecutorRole

        role = ExecutorRole(settings, args.login)
    else:
        from service.cluster.guardian import ShardGuard, parse_shard

        shard, shards = parse_shard(args.shard)
        role = ShardGuard(settings, shard, shards)
    codes: list[int] = []

    async def main() -> None:
        codes.append(await _until_signalled(role))

    run_loop(main(), settings.event_loop)
    return codes[0] if codes else 1
