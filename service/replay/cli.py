"""`tickguard replay` and `tickguard export-alerts`."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from streams import EngineConfig, PipelineConfig, Plugin

if TYPE_CHECKING:
    from service.replay.outcomes import Outcome
    from service.replay.run import Replay

__all__ = ["add_commands", "run"]


def add_commands(commands: argparse._SubParsersAction) -> None:
    replay = commands.add_parser("replay", help="replay recorded ticks through the stop engine, per rule variant",
                                 description="Recorded ticks through the same stop engine on virtual time; "
                                             "replay.csv and report.html in --out (README: Record and replay).")
    replay.add_argument("--ticks", required=True, help="the recording's directory (RECORD_DIR)")
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("--trades", help="a tickguard store (SQLite file), read-only: its trades' entries")
    source.add_argument("--alerts", help="an alerts file (JSONL, see `tickguard export-alerts`)")
    replay.add_argument("--variants", help="a JSON file of named stop/target/trail rule sets")
    replay.add_argument("--plugins", default="", help='plug-ins as PLUGINS takes them (JSON), or @FILE')
    replay.add_argument("--plugins-path", default="", help="a directory of your own plug-in modules")
    replay.add_argument("--out", default="replay-out", help="where replay.csv and report.html go (default replay-out)")
    replay.add_argument("--slippage", default="none", help="exit (and alert entry) fills: none, ticks:N or pct:X")
    replay.add_argument("--brokerage", default="angel-one",
                        help="as the BROKERAGE setting: angel-one (default), 20 (rupees an order), 0.03%%<=20, or none")
    replay.add_argument("--market-hours", choices=("exchange", "always"), default="exchange",
                        help="the sessions the engine used live (MARKET_HOURS; paper mode runs 'always')")
    replay.add_argument("--holidays", default="", help="HOLIDAYS_FILE, with --market-hours exchange")
    replay.add_argument("--stale-s", type=float, default=5.0, help="STALE_TICK_S the session ran with (default 5)")
    replay.add_argument("--fund", type=float, default=100_000.0,
                        help="--alerts: rupees per trade to size an alert that names no quantity (default 100000)")
    replay.add_argument("--strategies", default="", help="--alerts: STRATEGIES_FILE (policy and default rules)")
    replay.add_argument("--max-points", type=int, default=1500, help="price points per chart (the engine sees all)")
    export = commands.add_parser("export-alerts", help="write a store's alerts as an alerts file for replay (JSONL)")
    export.add_argument("--db", required=True, help="a tickguard store (SQLite file), read-only")
    export.add_argument("--day", default=None, help="only alerts received on this IST day (YYYY-MM-DD)")
    export.add_argument("--out", default="-", help="the file to write (default: standard output)")


@dataclass(frozen=True)
class _PluginSettings:
    plugins: str
    plugins_path: str


def _plugins_for(args: argparse.Namespace):
    text = args.plugins
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    if not text.strip():
        return lambda name: ()
    from service.plugins import load_plugins

    settings = _PluginSettings(text, args.plugins_path)
    load_plugins(settings)  # every problem at once, before anything runs

    def plugins(name: str) -> Sequence[Plugin]:
        return [loaded.plugin for loaded in load_plugins(settings)]  # each variant its own instances
    return plugins


def _config(args: argparse.Namespace) -> PipelineConfig:
    if args.market_hours == "always":
        from service.runtime import always_open_calendar

        calendar = always_open_calendar()
    else:
        from service.market_calendar import load_market_calendar

        calendar = load_market_calendar(args.holidays).calendar
    return PipelineConfig(engine=EngineConfig(calendar=calendar, stale_ms=round(args.stale_s * 1000)))


def replay_command(args: argparse.Namespace) -> tuple[list[Outcome], Replay]:
    """The whole replay: inputs read, engines run, rows priced."""
    from service.recording import read_ticks
    from service.replay.alerts import load_alert_lines, schedule_alerts
    from service.replay.errors import ReplayError
    from service.replay.outcomes import Slippage, brokerage_plan, outcome_of
    from service.replay.run import Replay
    from service.replay.sources import plans_from_store, schedule_trades
    from service.replay.variants import load_variants

    variants = load_variants(args.variants)
    slippage, plan = Slippage.parse(args.slippage), brokerage_plan(args.brokerage)
    if not Path(args.ticks).is_dir():
        raise ReplayError(args.ticks, "no recording here (a directory of day files, RECORD_DIR)")
    if args.trades:
        plans = plans_from_store(args.trades)
        watch = {p.basis_key for p in plans} | {p.traded_key for p in plans}
        replay = Replay([v.name for v in variants], config=_config(args), plugins=_plugins_for(args), watch=watch)
        schedule_trades(replay, plans, variants)
    else:
        lines = load_alert_lines(args.alerts)
        watch = {line.instrument.key for line in lines if line.instrument is not None}
        replay = Replay([v.name for v in variants], config=_config(args), plugins=_plugins_for(args), watch=watch)
        schedule_alerts(replay, lines, variants, slippage=slippage, fund_paise=round(args.fund * 100),
                        strategies_file=args.strategies)
    replay.run(read_ticks(args.ticks))
    outcomes = []
    for run in replay.runs:
        for trade_id in sorted(run.trades):
            trade = run.trades[trade_id]
            last = replay.latest.get(trade.key)
            outcomes.append(outcome_of(run.name, trade, slippage=slippage, plan=plan,
                                       last_tick_price=None if last is None else last.ltp))
    return outcomes, replay


def run(args: argparse.Namespace) -> int:
    """Run `tickguard replay` or `tickguard export-alerts` (the heavy modules imported only here)."""
    from service.replay.alerts import export_alerts
    from service.replay.outcomes import Slippage, brokerage_plan
    from service.replay.report import render_report, rupees, totals
    from service.replay.table import write_csv

    if args.command == "export-alerts":
        count = export_alerts(args.db, args.out, day=args.day)
        print(f"{count} alerts written to {args.out if args.out != '-' else 'standard output'}", file=sys.stderr)
        return 0
    outcomes, replay = replay_command(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "replay.csv", outcomes)
    meta = {"ticks": args.ticks, "trades" if args.trades else "alerts": args.trades or args.alerts,
            "slippage": str(Slippage.parse(args.slippage)), "brokerage": brokerage_plan(args.brokerage).name,
            "market hours": args.market_hours, "ticks replayed": f"{replay.ticks:,}",
            "made": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    (out / "report.html").write_text(render_report(outcomes, replay.runs, replay.paths, meta=meta,
                                                   max_points=args.max_points), encoding="utf-8")
    print(f"{replay.ticks:,} ticks, {len(replay.runs)} variant(s); {out / 'replay.csv'}, {out / 'report.html'}")
    for row in totals(outcomes, [r.name for r in replay.runs]):
        exits = ", ".join(f"{k} {v}" for k, v in sorted(row.reasons.items()))
        print(f"  {row.variant:<16} {row.trades:>4} trades  gross {rupees(row.gross):>14}  charges {rupees(row.charges):>12}"
              f"  net {rupees(row.net):>14}  ({exits})")
    return 0
