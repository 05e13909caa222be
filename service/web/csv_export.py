"""`GET /trades.csv?day=YYYY-MM-DD`: a day's trades (created that IST day; today by default), one row
each, oldest first, for a spreadsheet or the books. Prices and P&L in rupees, times in IST; a finished
trade's charges and its P&L net of them (blank for a trade still open or one the schedule does not cover)."""
from __future__ import annotations

import csv
import datetime as dt
import io
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from service.trades import OPEN_STATES
from service.web.queries import day_of
from service.web.views import exit_reason, rupees

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["CSV_COLUMNS", "trades_csv"]

CSV_COLUMNS = ("id", "created", "account", "strategy", "symbol", "side", "quantity", "entry", "exit", "exit_reason",
               "realised_pnl", "charges", "net_pnl", "state")
IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
DAY_LIMIT = 1_000_000  # every trade of the day


def _text(value: str) -> str:
    """A name as a spreadsheet shows it, never as a formula (names come from alerts)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _ist(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, IST).strftime("%Y-%m-%d %H:%M:%S")


async def trades_csv(request: Request, runtime: Runtime) -> Response:
    day = day_of(request.query_params, runtime.now_ms())
    assert day is not None
    trades = await runtime.store.trade_page(day=day, limit=DAY_LIMIT)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for t in reversed(trades):
        charged = runtime.charging.of(t, t.realised_pnl, None) if t.state not in OPEN_STATES else None
        total = charged.breakdown.total if charged is not None and charged.breakdown is not None else None
        writer.writerow((t.id, _ist(t.created_ms), _text(t.account), _text(t.strategy), _text(t.tradingsymbol), t.side, t.filled or t.quantity,
                         rupees(t.entry_price) or "", rupees(t.exit_price) or "", exit_reason(t) or "",
                         rupees(t.realised_pnl) or "", rupees(total) or "",
                         rupees(charged.net if charged is not None else None) or "", t.state))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="tickguard-trades-{day}.csv"'})
