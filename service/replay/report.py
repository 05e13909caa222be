"""`report.html`: one self-contained page (it opens offline) with the replay's totals, an equity curve
per variant and, per trade, its price path with the entry, each variant's stop level over time
(trailing included) and exit. Charts are plotly's; plotly.js is inlined once, in the page's head.
Money is shown in rupees; the CSV keeps paise.
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from service.replay.outcomes import Outcome
from service.replay.paths import ist_text, thin, window
from service.replay.run import TradeRun, VariantRun

__all__ = ["Totals", "render_report", "totals"]

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_CONFIG = {"displaylogo": False, "responsive": True}
Key = tuple[str, str]


@dataclass(frozen=True)
class Totals:
    variant: str
    trades: int
    reasons: dict[str, int]
    gross: int
    charges: int
    net: int
    wins: int
    losses: int
    unpriced: int  # trades without a P&L (refused, or no price to exit on)


def totals(outcomes: Sequence[Outcome], variants: Sequence[str]) -> list[Totals]:
    rows = []
    for variant in variants:
        mine = [o for o in outcomes if o.variant == variant]
        reasons: dict[str, int] = {}
        for o in mine:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
        priced = [o for o in mine if o.gross is not None]
        nets = [o.net if o.net is not None else o.gross for o in priced]
        rows.append(Totals(variant, len(mine), reasons, sum(o.gross or 0 for o in priced),
                           sum(o.charges or 0 for o in priced), sum(n or 0 for n in nets),
                           sum(1 for n in nets if (n or 0) > 0), sum(1 for n in nets if (n or 0) < 0),
                           len(mine) - len(priced)))
    return rows


def rupees(paise: int | None) -> str:
    if paise is None:
        return "–"
    sign = "−" if paise < 0 else ""
    return f"{sign}₹{abs(paise) / 100:,.2f}"


def _figure_html(figure: go.Figure, div_id: str) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG)


def _equity(outcomes: Sequence[Outcome], variants: Sequence[str]) -> go.Figure:
    figure = go.Figure()
    for n, variant in enumerate(variants):
        closed = sorted((o for o in outcomes if o.variant == variant and o.gross is not None),
                        key=lambda o: (o.exit_ms or o.entry_ms, o.trade_id))
        running, xs, ys = 0, [], []
        for o in closed:
            running += o.net if o.net is not None else (o.gross or 0)
            xs.append(ist_text(o.exit_ms or o.entry_ms))
            ys.append(running / 100)
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=variant, line_shape="hv",
                                    line={"color": COLOURS[n % len(COLOURS)]}))
    figure.update_layout(title="Equity: cumulative net P&L (₹) per variant, at each exit", height=360,
                         margin={"l": 60, "r": 20, "t": 50, "b": 40}, yaxis_title="₹", legend_title="variant")
    return figure


def _trade_figure(trade_id: int, runs: Mapping[str, TradeRun], rows: Mapping[str, Outcome],
                  path: tuple[list[int], list[int]] | None, max_points: int) -> go.Figure:
    first = next(iter(runs.values()))
    start = first.armed_ms
    ends = [r.exit.at_ms for r in runs.values() if r.exit is not None]
    path_ms, path_ltp = path or ([], [])
    end = max(ends) if ends else (path_ms[-1] if path_ms else start)
    pad = max(5_000, (end - start) // 20)
    ms, ltp = window(path_ms, path_ltp, start - pad, end + pad)
    ms, ltp = thin(ms, ltp, max_points)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[ist_text(m) for m in ms], y=[p / 100 for p in ltp], mode="lines", name="price",
                                line={"color": "#555", "width": 1}))
    record = first.record
    basis_is_traded = record.basis_key == (record.exchange, record.token)
    entry_y = (record.entry_price or 0) / 100 if basis_is_traded else (ltp[0] / 100 if ltp else None)
    figure.add_trace(go.Scatter(x=[ist_text(start)], y=[entry_y], mode="markers", name="entry",
                                marker={"symbol": "triangle-up" if record.long else "triangle-down", "size": 12,
                                        "color": "#000"}))
    for n, (variant, run) in enumerate(runs.items()):
        colour = COLOURS[n % len(COLOURS)]
        stop_end = run.exit.at_ms if run.exit is not None else end + pad
        points = [(at, stop) for at, stop in run.stops if stop is not None]
        if points:
            xs = [ist_text(at) for at, _ in points] + [ist_text(stop_end)]
            ys = [stop / 100 for _, stop in points] + [points[-1][1] / 100]
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name=f"{variant} stop",
                                        line={"color": colour, "dash": "dash"}, legendgroup=variant))
        if run.target is not None:
            figure.add_trace(go.Scatter(x=[ist_text(start), ist_text(stop_end)], y=[run.target / 100] * 2,
                                        mode="lines", name=f"{variant} target", legendgroup=variant,
                                        line={"color": colour, "dash": "dot"}))
        row = rows.get(variant)
        if row is not None and row.exit_ms is not None:
            y = row.trigger_ltp if row.trigger_ltp is not None else row.exit_price
            figure.add_trace(go.Scatter(
                x=[ist_text(row.exit_ms)], y=[None if y is None else y / 100], mode="markers",
                name=f"{variant} exit ({row.reason})", legendgroup=variant,
                marker={"symbol": "x", "size": 12, "color": colour, "line": {"width": 2}}))
    figure.update_layout(height=380, margin={"l": 60, "r": 20, "t": 40, "b": 40}, yaxis_title="₹",
                         title=f"Trade {trade_id}: {html.escape(record.tradingsymbol)} {record.side}"
                               f" × {sum(f.quantity for f in first.entries)}")
    return figure


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;font-size:13px}th{background:#f3f3f3}
td.l,th.l{text-align:left}.neg{color:#b00}.pos{color:#070}section{margin-top:28px}.meta{color:#555;font-size:13px}
"""


def _money_cell(paise: int | None) -> str:
    cls = "" if paise is None or paise == 0 else (" class=\"neg\"" if paise < 0 else " class=\"pos\"")
    return f"<td{cls}>{html.escape(rupees(paise))}</td>"


def _totals_table(rows: Sequence[Totals]) -> str:
    head = ("<tr><th class=l>variant</th><th>trades</th><th class=l>exits</th><th>wins</th><th>losses</th>"
            "<th>gross</th><th>charges</th><th>net</th></tr>")
    body = "".join(
        f"<tr><td class=l>{html.escape(t.variant)}</td><td>{t.trades}</td>"
        f"<td class=l>{html.escape(', '.join(f'{k} {v}' for k, v in sorted(t.reasons.items())))}</td>"
        f"<td>{t.wins}</td><td>{t.losses}</td>{_money_cell(t.gross)}{_money_cell(-t.charges)}{_money_cell(t.net)}</tr>"
        for t in rows)
    return f"<table id=totals>{head}{body}</table>"


def _rows_table(rows: Sequence[Outcome]) -> str:
    head = ("<tr><th class=l>variant</th><th class=l>exit</th><th class=l>reason</th><th>level</th><th>trigger</th>"
            "<th>exit price</th><th>gross</th><th>charges</th><th>net</th><th class=l>note</th></tr>")
    body = "".join(
        f"<tr><td class=l>{html.escape(o.variant)}</td><td class=l>{ist_text(o.exit_ms)[11:] if o.exit_ms else '–'}</td>"
        f"<td class=l>{html.escape(o.reason)}</td><td>{rupees(o.level)}</td><td>{rupees(o.trigger_ltp)}</td>"
        f"<td>{rupees(o.exit_price)}</td>{_money_cell(o.gross)}{_money_cell(None if o.charges is None else -o.charges)}"
        f"{_money_cell(o.net)}<td class=l>{html.escape(o.note)}</td></tr>"
        for o in rows)
    return f"<table class=trade-rows>{head}{body}</table>"


def render_report(outcomes: Sequence[Outcome], runs: Sequence[VariantRun], paths: Mapping[Key, tuple[list[int], list[int]]],
                  *, meta: Mapping[str, str], max_points: int = 1500) -> str:
    """The whole page as text."""
    variants = [run.name for run in runs]
    sums = totals(outcomes, variants)
    by_trade: dict[int, dict[str, TradeRun]] = {}
    for run in runs:
        for trade_id, trade in sorted(run.trades.items()):
            by_trade.setdefault(trade_id, {})[run.name] = trade
    rows: dict[int, dict[str, Outcome]] = {}
    for outcome in outcomes:
        rows.setdefault(outcome.trade_id, {})[outcome.variant] = outcome
    parts = [f"<h1>tickguard replay</h1><p class=meta>{' · '.join(f'{html.escape(k)}: {html.escape(v)}' for k, v in meta.items())}</p>",
             "<h2>Totals</h2>", _totals_table(sums), _figure_html(_equity(outcomes, variants), "equity")]
    for trade_id, trade_runs in sorted(by_trade.items()):
        first = next(iter(trade_runs.values()))
        figure = _trade_figure(trade_id, trade_runs, rows.get(trade_id, {}), paths.get(first.record.basis_key), max_points)
        ordered = [rows[trade_id][v] for v in variants if v in rows.get(trade_id, {})]
        parts.append(f"<section id=trade-{trade_id}><h3>Trade {trade_id}</h3>"
                     f"{_figure_html(figure, f'trade-chart-{trade_id}')}{_rows_table(ordered)}</section>")
    data = json.dumps({"variants": variants, "trades": len(by_trade)})
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>tickguard replay</title>"
            f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head>"
            f"<body data-replay='{html.escape(data)}'>{''.join(parts)}</body></html>")
