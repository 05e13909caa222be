"""`tickguard charges check [--day YYYY-MM-DD] [--tolerance-paise N] [--json]`."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from decimal import Decimal

from service.charges_check import TradeCheck, check_day
from service.charges.setting import charging
from service.exits import ExitCode

__all__ = ["add_commands", "run"]

_IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def add_commands(subparsers) -> None:
    charges = subparsers.add_parser("charges", help="charges: compare tickguard's with the broker's")
    commands = charges.add_subparsers(dest="charges_command", required=True)
    check = commands.add_parser("check", help="the day's closed trades charged by tickguard and by the broker's "
                                              "calculator; every difference listed (exit status 6 when any)")
    check.add_argument("--day", type=_day, default=None, help="the IST trading day, YYYY-MM-DD (default: today)")
    check.add_argument("--tolerance-paise", type=_tolerance, default=1,
                       help="how far a component may be off before it is a difference (default 1: rounding)")
    check.add_argument("--json", action="store_true", help="one JSON document instead of lines")


def _day(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def _tolerance(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a whole number of paise, 0 or more, got {text!r}")
    return int(text)


def _rupees(paise: Decimal | int) -> str:
    return f"{Decimal(paise) / 100:.2f}"


def run(args: argparse.Namespace, settings) -> int:
    day = args.day or dt.datetime.now(_IST).date().isoformat()
    checks = asyncio.run(_check(settings, day, args.tolerance_paise))
    differing = [c for c in checks if c.differences or c.problem]
    if args.json:
        print(json.dumps({"day": day, "trades": len(checks), "differing": len(differing),
                          "differences": [_as_json(c) for c in differing]}, indent=2))
    else:
        for check in differing:
            trade = check.trade
            head = f"trade {trade.id} {trade.tradingsymbol} {trade.side} ({trade.account})"
            if check.problem:
                print(f"{head}: {check.problem}")
            for difference in check.differences:
                print(f"{head} {difference.component}: tickguard {_rupees(difference.ours)}, "
                      f"broker {_rupees(difference.broker)} ({_rupees(difference.delta)})")
        print(f"{day}: {len(checks)} closed trade(s) checked, {len(differing)} differing")
    return ExitCode.DIFFERENCES if differing else ExitCode.OK


def _as_json(check: TradeCheck) -> dict:
    return {"trade_id": check.trade.id, "symbol": check.trade.tradingsymbol, "problem": check.problem,
            "differences": [{"component": d.component, "tickguard_paise": d.ours, "broker_paise": str(d.broker)}
                            for d in check.differences]}


async def _check(settings, day: str, tolerance: int) -> list[TradeCheck]:
    from service.brokers import brokers_from_settings
    from service.store import Store

    store = Store(settings.database_url or settings.tickguard_db)
    store.open()
    default, logins = brokers_from_settings(settings)
    try:
        def broker_of(trade):
            login = (trade.spec.login or "").upper()
            return logins.get(login, default)

        return await check_day(store, broker_of, charging(settings.brokerage, settings.charges_schedule), day, tolerance)
    finally:
        for broker in (default, *logins.values()):
            await broker.close()
        await store.close()
