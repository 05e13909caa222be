"""The desk's strip and price line: `GET /desk/summary` (also pushed on the feed as `summary`) and
`GET /trades/{id}/prices`.

The summary is the day at a glance: realised P&L (the `day_pnl` table, kept with the trades), open
P&L at the latest prices, open and UNPROTECTED trades, the day's exits by reason, the halts in force
and the market-data stream's state. One function builds it from its parts, so the route (which reads
the open trades from the store) and the feed (which holds them) say the same thing.
"""
from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.charges import ChargesError
from service.charges.trades import Charging
from service.guard import engine_trade
from service.store import Store, ist_date
from service.trades import OPEN_STATES, TradeRecord, TradeState
from service.web.api import no_such_trade, trade_id_of
from service.web.errors import HttpError
from service.web.views import open_pnl, with_rupees
from streams import RuleError, levels

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["DayFigures", "desk_summary", "read_figures", "stream_state", "summary", "trade_prices"]


class DayFigures(msgspec.Struct, frozen=True):
    """What the store says of a day: its realised P&L (paise), its closed trades' exits by reason, their
    charges (paise) and how many of them the charges schedule does not cover."""
    day: str
    realised: int
    exits: dict[str, int]
    charges: int = 0
    uncharged: int = 0


async def read_figures(store: Store, day: str, charging: Charging) -> DayFigures:
    closed = await store.closed_on(day)
    exits = collections.Counter(t.reason or "UNKNOWN" for t in closed)
    charged, uncharged = _charges(charging, ((t, None) for t in closed))
    return DayFigures(day, await store.realised_on(day), dict(sorted(exits.items())), charged, uncharged)


def _charges(charging: Charging, trades: Iterable[tuple[TradeRecord, int | None]]) -> tuple[int, int]:
    """(total charges in paise, trades the schedule does not cover) of trades with their prices."""
    total = uncharged = 0
    for trade, ltp in trades:
        if not trade.filled:
            continue
        try:
            breakdown = charging.breakdown(trade, ltp)
        except ChargesError:
            uncharged += 1
            continue
        total += breakdown.total if breakdown is not None else 0
    return total, uncharged


def stream_state(runtime: Runtime) -> dict[str, Any]:
    """`live` while the market-data stream is up and ticking; `stale` while it is up but no tick came
    for `STREAM_STALL_S`; `down` while it — any of its sockets — is not connected (`reason`: what it
    last said). `sockets`: each smart-stream socket opened, `up` and what it last said."""
    health = getattr(runtime, "health", None)
    last_tick_ms = getattr(runtime.guard, "latest_tick_ms", None)
    if health is None:
        return {"state": "down", "last_tick_ms": last_tick_ms, "reason": "no market-data stream in this process",
                "sockets": []}
    sockets = [{"socket": number, "up": up, "said": said}
               for number, (up, said) in sorted(health.tick_sockets.items()) if number]
    heard = health.ticks
    if heard is None or not heard[0]:
        said = "not connected yet" if heard is None else heard[1]
        return {"state": "down", "last_tick_ms": last_tick_ms, "reason": said, "sockets": sockets}
    stall_ms = int(runtime.settings.stream_stall_s * 1000)
    quiet_ms = None if last_tick_ms is None else runtime.now_ms() - last_tick_ms
    if quiet_ms is None or quiet_ms > stall_ms:
        reason = "no tick yet" if quiet_ms is None else f"no tick for {quiet_ms // 1000} s"
        return {"state": "stale", "last_tick_ms": last_tick_ms, "reason": reason, "sockets": sockets}
    return {"state": "live", "last_tick_ms": last_tick_ms, "reason": None, "sockets": sockets}


def summary(runtime: Runtime, figures: DayFigures, open_trades: Iterable[TradeRecord],
            ltp: Callable[[TradeRecord], int | None]) -> dict[str, Any]:
    """The strip: money in paise with `_rupees` beside it. `open_pnl` (and so `net_pnl`) is null while
    an open position has no price yet. `charges`: the day's closed trades' and the open trades' (what
    is open charged as an exit at the latest price); `uncharged` counts trades the schedule does not
    cover (left out of `charges`)."""
    count = unprotected = 0
    open_total: int | None = 0
    priced: list[tuple[TradeRecord, int | None]] = []
    for trade in open_trades:
        if trade.state not in OPEN_STATES:
            continue
        priced.append((trade, ltp(trade)))
        count += 1
        unprotected += trade.state is TradeState.UNPROTECTED
        if trade.open_quantity:
            move = open_pnl(trade, priced[-1][1])
            open_total = None if move is None or open_total is None else open_total + move
    halts = runtime.halts
    operator = halts.operator if halts.global_halt else None
    groups: dict[str, dict[str, str]] = {"account": {}, "strategy": {}}
    for (scope, key), record in sorted(halts.loss.items()):
        groups[scope][key] = record.reason
    open_charges, open_uncharged = _charges(runtime.charging, priced)
    day_charges = figures.charges + open_charges
    net = None if open_total is None else figures.realised + open_total - day_charges
    view = {"day": figures.day, "realised_pnl": figures.realised, "open_pnl": open_total, "charges": day_charges,
            "net_pnl": net, "uncharged": figures.uncharged + open_uncharged,
            "open_trades": count, "unprotected": unprotected, "exits_by_reason": figures.exits,
            "halts": {"operator": halts.global_halt, "reason": operator.reason if operator else None,
                      "accounts": groups["account"], "strategies": groups["strategy"]},
            "stream": stream_state(runtime)}
    return with_rupees(view, ("realised_pnl", "open_pnl", "charges", "net_pnl"))


async def desk_summary(request: Request, runtime: Runtime) -> Response:
    hub = request.app.state.feed  # the feed's FeedHub: its prices and history
    figures = await read_figures(runtime.store, ist_date(runtime.now_ms()), runtime.charging)
    open_trades = await runtime.store.trades(states=OPEN_STATES)
    return JSONResponse(summary(runtime, figures, open_trades, hub.ltp))


def _levels(trade: TradeRecord) -> dict[str, int | None]:
    """Entry, stop and target on the basis price; the trail's activation once trailing is possible;
    the exit (average fill) once there is one and the basis is the trade's own price."""
    basis = trade.spec.basis
    entry = trade.spec.basis_entry if basis else trade.entry_price
    out: dict[str, int | None] = {"entry": entry if isinstance(entry, int) else None, "stop": trade.stop,
                                  "target": trade.target}
    if trade.spec.rules.get("trail") and trade.filled:
        try:
            out["trail_activation"] = levels(engine_trade(trade)).activation_price
        except (RuleError, ValueError, TypeError, msgspec.ValidationError):
            pass  # rules the engine refuses: no activation to draw
    if trade.exit_price is not None and not basis:
        out["exit"] = trade.exit_price
    return out


async def trade_prices(request: Request, runtime: Runtime) -> Response:
    trade_id = trade_id_of(request)
    since = request.query_params.get("since_ms")
    since_ms = None
    if since not in (None, ""):
        if not since.isascii() or not since.isdigit() or len(since) > 16:
            raise HttpError.of(422, "since_ms", "expected epoch milliseconds (a whole number)")
        since_ms = int(since)
    trade = await runtime.store.trade(trade_id)
    if trade is None:
        raise no_such_trade()
    hub = request.app.state.feed  # the feed's FeedHub: its prices and history
    return JSONResponse({"trade_id": trade_id, "points": hub.history.points(*trade.basis_key, since_ms),
                         "levels": _levels(trade)})
