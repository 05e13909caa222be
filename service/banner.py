"""What `tickguard serve` tells its operator once it has started, and when it stops with trades open.

The start banner's state lines (printed once the runtime is ready: recovery done, trades re-armed):

    mode                 paper
    halted               no
    open trades          2 (2 guarded)
    broker stops         backup (BROKER_STOP): 2 of 2 open trades covered at the broker
    calendar             exchange hours: NSE closed now; holidays listed for 2026

On a stop (Ctrl-C, SIGTERM) with trades open, one warning: they are unguarded until the next start,
and whether broker stops cover them.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from service.trades import OPEN_STATES, TradeRecord, TradeState

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["print_state", "state_lines", "unguarded_warning", "warn_unguarded"]

log = logging.getLogger("tickguard")

_LABEL = 21  # the banner's label column, as cli's URL lines


def _line(label: str, text: str) -> str:
    return f"{label:<{_LABEL - 1}} {text}"


async def _open_trades(runtime: Runtime) -> list[TradeRecord]:
    return await runtime.store.trades(states=OPEN_STATES)


def _covered(runtime: Runtime, trades: list[TradeRecord]) -> int:
    return sum(1 for trade in trades if runtime.trader.stops.protected(trade.id))


def _halted(runtime: Runtime) -> str:
    halts = runtime.halts
    if halts.global_halt:
        reason = halts.operator.reason if halts.operator is not None and halts.operator.reason else "no reason given"
        text = f"YES: no new entries ({reason})"
    else:
        text = "no"
    if halts.loss:
        names = ", ".join(f"{scope} {key}" for scope, key in sorted(halts.loss))
        text += f"; daily-loss halts today: {names}"
    return text


def _open(runtime: Runtime, trades: list[TradeRecord]) -> str:
    if not trades:
        return "none"
    guarded = sum(1 for trade in trades if trade.id in runtime.guard.records)
    unprotected = sum(1 for trade in trades if trade.state is TradeState.UNPROTECTED)
    parts = [f"{guarded} guarded"]
    if unprotected:
        parts.append(f"{unprotected} UNPROTECTED (not guarded: close them or see GET /trades?state=UNPROTECTED)")
    others = len(trades) - guarded - unprotected
    if others:
        parts.append(f"{others} entering or exiting")
    return f"{len(trades)} ({', '.join(parts)})"


def _broker_stops(runtime: Runtime, trades: list[TradeRecord]) -> str:
    text = f"{runtime.settings.broker_stop} (BROKER_STOP)"
    if trades:
        text += f": {_covered(runtime, trades)} of {len(trades)} open trades covered at the broker"
    return text


def _calendar(runtime: Runtime) -> str:
    if runtime.settings.market_hours == "always":
        return "always open (MARKET_HOURS=always: no holidays, no square-off)"
    sessions, now = runtime.sessions, runtime.now_ms()
    shown = [code for code in ("NSE", "MCX") if sessions.knows(code)]
    states = ", ".join(f"{code} {'open' if sessions.is_open(code, now) else 'closed'} now" for code in shown)
    years = sorted(sessions.calendar.years.get("NSE", ()))
    text = f"exchange hours: {states}; holidays listed for {', '.join(map(str, years)) or 'no year'}"
    for warning in runtime.calendar_watch.warnings():
        text += f"; WARNING: {warning['reason']}"
    return text


async def state_lines(runtime: Runtime) -> list[str]:
    trades = await _open_trades(runtime)
    mode = runtime.settings.tickguard_mode
    if runtime.settings.market_data == "live":
        mode += " on live market data (orders to the paper exchange)"
    return [_line("mode", mode), _line("halted", _halted(runtime)),
            _line("open trades", _open(runtime, trades)), _line("broker stops", _broker_stops(runtime, trades)),
            _line("calendar", _calendar(runtime))]


async def print_state(runtime: Runtime) -> None:
    for line in await state_lines(runtime):
        print(line, flush=True)


async def unguarded_warning(runtime: Runtime) -> str | None:
    """The warning for stopping now, or None with no trade open."""
    trades = await _open_trades(runtime)
    if not trades:
        return None
    count, covered = len(trades), _covered(runtime, trades)
    them = "it" if count == 1 else "them"
    if covered == 0:
        cover = f"no broker stop covers {them}"
    elif covered == count:
        cover = f"a broker stop covers {them}" if count == 1 else "broker stops cover all of them"
    else:
        cover = f"broker stops cover {covered} of them"
    trades_are = "1 open trade is" if count == 1 else f"{count} open trades are"
    return f"stopping: {trades_are} unguarded until the next start; {cover} (BROKER_STOP={runtime.settings.broker_stop})"


async def warn_unguarded(runtime: Runtime) -> None:
    warning = await unguarded_warning(runtime)
    if warning is not None:
        log.warning(warning)
