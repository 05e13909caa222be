"""The `tickguard` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from service.accounts.credentials import load_logins
from service.addresses import parse_static_ips
from service.errors import SettingsError, TickguardError
from service.exits import ExitCode, failure
from service.serving import bound_port, listen, serve
from service.settings import (PAPER_OPERATOR, PAPER_OPERATOR_PASSWORD, PAPER_OPERATOR_TOKEN, PAPER_WEBHOOK_SECRET,
                              SECRET_FIELDS, Settings, load_settings)
from service import charges_cli
from service.cluster import cli as cluster_cli
from service.operators import cli as operators_cli
from service.recording import cli as recording_cli
from service.replay import cli as replay_cli
from service.symbols import cli as symbols_cli

__all__ = ["main", "paper_config"]

log = logging.getLogger("tickguard")


def paper_config(settings: Settings, **overrides):
    """The paper exchange's configuration from tickguard's settings: it accepts exactly our logins."""
    from paper.auth import PaperLogin
    from paper.exchange import PaperConfig

    logins = tuple(
        PaperLogin(login.clientcode, login.password, login.api_key, login.totp_secret)
        for login in load_logins(settings)
    )
    values = dict(
        logins=logins,
        db_path=settings.paper_db,
        seed=settings.paper_seed,
        opening_cash_paise=round(settings.paper_funds * 100),
        tick_ms=settings.paper_tick_ms,
        fill_latency_ms=settings.paper_fill_latency_ms,
        session_ttl_s=settings.paper_session_ttl_s,
        rate_limits=settings.paper_rate_limits,
        static_ips=parse_static_ips(settings.paper_static_ips),
        control_api=not settings.live,
    )
    values.update(overrides)
    return PaperConfig(**values)


async def _run_paper(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from paper.app import MASTER_PATH, create_app
    from paper.exchange import PaperExchange

    sock = listen(host, port, "the paper exchange (--host, --port)")  # first: a port in use is one line and exit status 5
    port = bound_port(sock)
    exchange = PaperExchange(paper_config(settings))
    app = create_app(exchange)
    config = uvicorn.Config(app, access_log=False, log_config=None, log_level=settings.log_level.lower())
    server = uvicorn.Server(config)
    base = f"http://{host}:{port}"
    print(f"paper exchange        {base}  (SmartAPI REST root)", flush=True)
    print(f"instrument master     {base}{MASTER_PATH}", flush=True)
    print(f"control API           {base}/paper/v1/", flush=True)
    print(f"demo login            client code {settings.smartapi_user} (PIN, API key and TOTP secret: see .env.example)", flush=True)
    await server.serve(sockets=[sock])


async def _serve(settings: Settings, host: str, port: int) -> None:
    """The service, and in paper mode (without PAPER_URL) the paper exchange beside it, in one loop."""
    import msgspec
    import uvicorn

    from service import banner
    from service.web.app import create_app

    # The ports first: one in use is one line and exit status 5, before anything logs in anywhere.
    sock = listen(host, port, "the service (--host, --port)")
    port = bound_port(sock)
    paper_sock = paper_exchange = None
    try:
        runtime = None
        if not settings.live and not settings.paper_url:
            paper_sock = listen(settings.paper_host, settings.paper_port, "the paper exchange (PAPER_HOST, PAPER_PORT)")
            settings = msgspec.structs.replace(settings, paper_port=bound_port(paper_sock))
            from paper.exchange import PaperExchange

            paper_exchange = PaperExchange(paper_config(settings))
            if settings.market_data == "live":  # live prices into the paper exchange in-process, on this loop
                from service.live_data import LocalPaperPrices
                from service.runtime import Runtime

                runtime = Runtime(settings, paper_prices=LocalPaperPrices(paper_exchange.outside))
        app = create_app(settings, runtime)  # first: settings it refuses (a plug-in that cannot load) start nothing
    except BaseException:  # refused before serving: the ports are given back at once
        for bound in (sock, paper_sock):
            if bound is not None:
                bound.close()
        raise
    servers = []
    if paper_sock is not None:
        from paper.app import create_app as create_paper_app

        paper = uvicorn.Server(uvicorn.Config(create_paper_app(paper_exchange),
                                              access_log=False, log_config=None, log_level="warning"))
        paper_task = asyncio.create_task(paper.serve(sockets=[paper_sock]))
        while not paper.started:
            if paper_task.done():
                await paper_task  # raises the paper exchange's start-up error
                raise SystemExit(f"the paper exchange could not start on {settings.paper_base_url}")
            await asyncio.sleep(0.05)
        servers.append((paper, paper_task))
    print(f"tickguard            http://{host}:{port}/  (mode {settings.tickguard_mode}; dashboard at /, alerts to POST /opentrade)",
          flush=True)
    if not settings.live and settings.webhook_secret == PAPER_WEBHOOK_SECRET:
        print(f"webhook secret       {PAPER_WEBHOOK_SECRET}  (the public paper demo value; alerts only)", flush=True)
    if not settings.operators_file:
        print(f"operator             {PAPER_OPERATOR} / {PAPER_OPERATOR_PASSWORD}  (paper demo login for the dashboard; "
              f"API token {PAPER_OPERATOR_TOKEN})", flush=True)
    print(f"broker REST root     {settings.rest_root}", flush=True)
    if settings.market_data == "live":
        print(f"market data          live: {settings.market_data_user} at {settings.market_data_rest_root} "
              f"(market data only; every order goes to the paper exchange)", flush=True)
    if servers:
        print(f"paper control API    {settings.paper_base_url}/paper/v1/", flush=True)
    runtime = app.state.runtime
    app.state.startup.on_ready.append(lambda: banner.print_state(runtime))  # once recovery has re-armed trades
    app.state.startup.on_stop.append(lambda: banner.warn_unguarded(runtime))
    try:
        await serve(app, sock, log_level=settings.log_level)
    finally:
        for server, task in servers:
            server.should_exit = True
            await task


def run(coroutine: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run on uvloop (EVENT_LOOP=uvloop, the default) or the standard library's loop."""
    if event_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coroutine)
        return
    asyncio.run(coroutine)


def _print_plugins(settings: Settings) -> None:
    """Each plug-in of PLUGINS, loaded as `tickguard serve` would (a SettingsError names those that fail)."""
    import msgspec

    from service.plugins import load_plugins

    for plugin in load_plugins(settings):
        kwargs = msgspec.json.encode(plugin.kwargs).decode()
        named = plugin.factory if plugin.name == plugin.factory else f"{plugin.name} = {plugin.factory}"
        print(f"plug-in {plugin.position}: {plugin.stage} {named} {kwargs}")


def _configured_operators_file() -> str:
    try:
        return load_settings().operators_file
    except SettingsError as exc:
        import os

        if any(name == "OPERATORS_FILE" for name, _ in exc.problems):
            return os.environ.get("OPERATORS_FILE", "")
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickguard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    paper = commands.add_parser("paper", help="run the SmartAPI-compatible paper exchange alone")
    paper.add_argument("--host", default=None, help="default: PAPER_HOST (127.0.0.1)")
    paper.add_argument("--port", type=int, default=None, help="default: PAPER_PORT (8700)")
    serve = commands.add_parser("serve", help="run tickguard (in paper mode with the paper exchange beside it)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser("settings", help="print the settings in force (secrets masked)")
    symbols_cli.add_commands(commands)
    charges_cli.add_commands(commands)
    cluster_cli.add_commands(commands)
    operators_cli.add_commands(commands)
    recording_cli.add_commands(commands)
    replay_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "operator":  # before the settings: live settings without OPERATORS_FILE are refused
            return operators_cli.run(args, _configured_operators_file())
        if args.command in ("replay", "export-alerts"):  # offline: no settings, no broker
            return replay_cli.run(args)
        settings = load_settings()
        from service.logs import configure_logging

        secrets = [getattr(settings, name) for name in sorted(SECRET_FIELDS)]
        configure_logging(settings.log_level, secrets=[s for s in secrets if s and isinstance(s, str)],
                          log_format=settings.log_format)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per broker request is noise
        if args.command == "settings":
            for name in settings.__struct_fields__:
                value = getattr(settings, name)
                shown = "***" if name in SECRET_FIELDS and value else value
                print(f"{name.upper()}={shown}")
            _print_plugins(settings)
            return 0
        if args.command == "symbols":
            return symbols_cli.run(args, settings)
        if args.command == "charges":
            return charges_cli.run(args, settings)
        if args.command == "serve":
            run(_serve(settings, args.host, args.port), settings.event_loop)
            return 0
        if args.command == "record":
            return recording_cli.run(args, settings, run)
        if args.command in ("intake", "executor", "guard", "cluster-status"):
            return cluster_cli.run(args, settings, run)
        if args.command == "paper":
            if settings.live:
                print("note: TICKGUARD_MODE=live, so the paper control API is off", file=sys.stderr)
            run(_run_paper(settings, args.host or settings.paper_host, settings.paper_port if args.port is None else args.port),
                settings.event_loop)
            return 0
    except TickguardError as exc:
        code, line = failure(exc)
        print(line, file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED


if __name__ == "__main__":
    raise SystemExit(main())
