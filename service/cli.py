"""The `tickguard` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from service.credentials import load_logins
from service.errors import TickguardError
from service.settings import SECRET_FIELDS, Settings, load_settings
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
        control_api=not settings.live,
    )
    values.update(overrides)
    return PaperConfig(**values)


async def _run_paper(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from paper.app import MASTER_PATH, create_app
    from paper.exchange import PaperExchange

    exchange = PaperExchange(paper_config(settings))
    app = create_app(exchange)
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level=settings.log_level.lower())
    server = uvicorn.Server(config)
    base = f"http://{host}:{port}"
    print(f"paper exchange        {base}  (SmartAPI REST root)", flush=True)
    print(f"instrument master     {base}{MASTER_PATH}", flush=True)
    print(f"control API           {base}/paper/v1/", flush=True)
    print(f"demo login            client code {settings.smartapi_user} (PIN, API key and TOTP secret: see .env.example)", flush=True)
    await server.serve()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickguard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    paper = commands.add_parser("paper", help="run the SmartAPI-compatible paper exchange alone")
    paper.add_argument("--host", default=None, help="default: PAPER_HOST (127.0.0.1)")
    paper.add_argument("--port", type=int, default=None, help="default: PAPER_PORT (8700)")
    commands.add_parser("settings", help="print the settings in force (secrets masked)")
    symbols_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if args.command == "settings":
            for name in settings.__struct_fields__:
                value = getattr(settings, name)
                shown = "***" if name in SECRET_FIELDS and value else value
                print(f"{name.upper()}={shown}")
            return 0
        if args.command == "symbols":
            return symbols_cli.run(args, settings)
        if args.command == "paper":
            if settings.live:
                print("note: TICKGUARD_MODE=live, so the paper control API is off", file=sys.stderr)
            asyncio.run(_run_paper(settings, args.host or settings.paper_host, settings.paper_port if args.port is None else args.port))
            return 0
    except TickguardError as exc:
        print(f"tickguard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
