"""Alerts replayed at their recorded times, and the alerts file they come from.

The alerts file is JSON Lines, one alert a line, oldest first:

    {"received_ms": 1796379300250, "body": {...the /opentrade body...},
     "instrument": {"exchange": "NSE", "token": "3045", "tradingsymbol": "SBIN-EQ", "tick_size": 5, "lot_size": 1}}

`received_ms` is when tickguard received it (epoch ms, the recording's clock); `body` is the alert as
posted (`service.alerts.parse` checks it again); `instrument` is the contract an opening alert
trades — required on a line that opens a trade, as the replay resolves no symbols (a closing alert
finds its trades by strategy and `symbolname`). `tickguard export-alerts --db tickguard.db` writes
such a file from a store's accepted alerts, the instrument taken from the trades each alert opened
(or another alert's on the same symbol).

What an alert does is the service's own decision (`service.alerts.policy.decide`, the strategy's
policy from `--strategies`, else close_only) on the variant's trades still open. An opening alert's
entry fills at the first recorded tick of its instrument at or after the alert (the slippage
assumption added against the trade), for the alert's `quantity` (or `lots` × lot size), else
floor(`--fund` ÷ entry price), at least 1. Its rules are the alert's stoploss/target/trail, else its
strategy's; a closing alert closes with reason SIGNAL (a part of a position: a partial exit at the
instrument's latest tick).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from service.alerts.parse import Alert, AlertInvalid, parse_alert
from service.alerts.policy import Policy, decide
from service.alerts.strategies import Strategy, load_strategies
from service.guard import engine_trade
from service.replay.errors import AlertsFileError, ReplayError
from service.replay.outcomes import Slippage
from service.replay.plans import Fill
from service.replay.run import Replay, TradeRun, VariantRun
from service.replay.sources import run_async
from service.replay.variants import Variant
from service.store import Store
from service.trades import TradeRecord, TradeSpec, TradeState
from streams import Arm, Close, ExitReason, Reduce, Tick

__all__ = ["AlertLine", "LineInstrument", "export_alerts", "load_alert_lines", "schedule_alerts"]


class LineInstrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    exchange: str
    token: str
    tradingsymbol: str = ""
    tick_size: int = 5
    lot_size: int = 1

    @property
    def key(self) -> tuple[str, str]:
        return (self.exchange, self.token)


class _Line(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    received_ms: int
    body: dict[str, Any]
    instrument: LineInstrument | None = None


@dataclass(frozen=True)
class AlertLine:
    number: int  # 1-based line number: also the id of the trade it opens
    received_ms: int
    alert: Alert
    instrument: LineInstrument | None


def load_alert_lines(path: str | Path) -> list[AlertLine]:
    lines: list[AlertLine] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReplayError(str(path), str(exc)) from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = msgspec.json.decode(raw, type=_Line)
            alert = parse_alert(line.body)
        except msgspec.DecodeError as exc:
            raise AlertsFileError(str(path), number, str(exc)) from None
        except AlertInvalid as exc:
            raise AlertsFileError(str(path), number, f"alert refused: {exc}") from None
        lines.append(AlertLine(number, line.received_ms, alert, line.instrument))
    return sorted(lines, key=lambda line: (line.received_ms, line.number))


def _distance(spec: Any) -> dict[str, Any] | None:
    return None if spec is None else {"type": spec.type, "value": str(spec.value)}


def _rules(alert: Alert, strategy: Strategy | None) -> dict[str, Any]:
    stop = alert.stoploss or (strategy.stoploss if strategy else None)
    target = alert.target or (strategy.target if strategy else None)
    trail = alert.trail or (strategy.trail if strategy else None)
    rules: dict[str, Any] = {"stop": _distance(stop), "target": _distance(target), "trail": None}
    if trail is not None:
        rules["trail"] = {"type": trail.type, "value": str(trail.value), "activation": _distance(trail.activation)}
    return rules


class _Player:
    """The alerts' effect on one replay: per variant, the trades each alert opened and which are open."""

    def __init__(self, variants: Sequence[Variant], slippage: Slippage, fund_paise: int,
                 strategies: dict[str, Strategy]) -> None:
        self.variants = {v.name: v for v in variants}
        self.slippage = slippage
        self.fund = fund_paise
        self.strategies = strategies
        self.pending: dict[str, dict[int, TradeRecord]] = {name: {} for name in self.variants}
        self.symbol_of: dict[int, tuple[str, str, str]] = {}  # trade id -> (strategy, symbolname, exchange)

    def _held(self, run: VariantRun, line: AlertLine) -> list[TradeRecord]:
        """The variant's trades of this alert's strategy and symbol that are open or waiting to fill."""
        key = (line.alert.strategyname, line.alert.symbolname, line.alert.exchange or "")
        held = [t.record for trade_id, t in run.trades.items()
                if self.symbol_of.get(trade_id) == key and t.exit is None and t.refused is None]
        held += [r for trade_id, r in self.pending[run.name].items() if self.symbol_of.get(trade_id) == key]
        return sorted(held, key=lambda r: r.id)

    def on_alert(self, run: VariantRun, line: AlertLine) -> None:
        alert = line.alert
        strategy = self.strategies.get(alert.strategyname)
        policy = strategy.policy if strategy else Policy.CLOSE_ONLY
        lot = line.instrument.lot_size if line.instrument else 1
        decision = decide(alert, self._held(run, line), policy, lot)
        for trade_id in decision.close:
            if self.pending[run.name].pop(trade_id, None) is None:
                run.command(Close(trade_id, ExitReason.SIGNAL))
        for trade_id, units in decision.reduce:
            self._reduce(run, trade_id, units)
        if decision.open_side is not None and line.instrument is not None:
            self._open(run, line, decision.open_side, decision.open_quantity, strategy)

    def _reduce(self, run: VariantRun, trade_id: int, units: int) -> None:
        held = run.trades.get(trade_id)
        last = run.latest.get(held.key) if held is not None else None
        if held is None or last is None:
            return
        at_ms = run.now()[0]
        price = self.slippage.fill(last.ltp, held.record.spec.tick_size, buying=not held.record.long)
        held.reductions.append(Fill(at_ms, units, price, f"part {len(held.reductions) + 1}"))
        run.command(Reduce(trade_id, units, price))

    def _open(self, run: VariantRun, line: AlertLine, side: str, quantity: int | None, strategy: Strategy | None) -> None:
        alert, instrument = line.alert, line.instrument
        assert instrument is not None
        spec = TradeSpec(rules=_rules(alert, strategy), rule_source="alert", tick_size=instrument.tick_size,
                         lot_size=instrument.lot_size, fund=self.fund)
        record = TradeRecord(id=line.number, alert_id=line.number, account="replay", strategy=alert.strategyname,
                             exchange=instrument.exchange, token=instrument.token,
                             tradingsymbol=instrument.tradingsymbol or alert.symbolname, side=side,
                             product=alert.product, quantity=quantity or 0, spec=spec, created_ms=line.received_ms)
        self.symbol_of[record.id] = (alert.strategyname, alert.symbolname, alert.exchange or "")
        self.pending[run.name][record.id] = record
        run.on_next_tick(instrument.key, lambda tick: self._fill(run, record.id, tick, alert))

    def _fill(self, run: VariantRun, trade_id: int, tick: Tick, alert: Alert) -> None:
        record = self.pending[run.name].pop(trade_id, None)
        if record is None:
            return  # closed before it filled
        price = self.slippage.fill(tick.ltp, record.spec.tick_size, buying=record.long)
        quantity = record.quantity or alert.quantity or (alert.lots * record.spec.lot_size if alert.lots else 0) \
            or max(1, self.fund // price)
        at_ms = run.now()[0]
        record = msgspec.structs.replace(record, state=TradeState.OPEN, quantity=quantity, filled=quantity,
                                         entry_price=price, entry_value=quantity * price, created_ms=at_ms)
        record = self.variants[run.name].apply(record)
        trade = TradeRun(record, at_ms, entries=[Fill(at_ms, quantity, price, "entry")])
        run.arm(trade, Arm(engine_trade(record)))


def schedule_alerts(replay: Replay, lines: Sequence[AlertLine], variants: Sequence[Variant], *,
                    slippage: Slippage, fund_paise: int, strategies_file: str = "") -> None:
    player = _Player(variants, slippage, fund_paise, load_strategies(strategies_file))
    for line in lines:
        replay.at(line.received_ms, lambda run, line=line: player.on_alert(run, line))


async def _export(db: Path, day: str | None) -> list[dict[str, Any]]:
    store = Store(db, read_only=True)
    try:
        store.open()
    except (OSError, RuntimeError) as exc:
        raise ReplayError(str(db), str(exc)) from None
    try:
        alerts: list[dict[str, Any]] = []
        before = None
        while True:
            page = await store.alert_page(status="accepted", day=day, before=before, limit=500)
            alerts.extend(page)
            if len(page) < 500:
                break
            before = page[-1]["id"]
        alerts.sort(key=lambda a: a["id"])
        known: dict[tuple[str, str], dict[str, Any]] = {}
        found: dict[int, dict[str, Any]] = {}
        for alert in alerts:
            for trade_id in alert["trade_ids"]:
                trade = await store.trade(trade_id)
                if trade is not None and trade.alert_id == alert["id"]:
                    found[alert["id"]] = {"exchange": trade.exchange, "token": trade.token,
                                          "tradingsymbol": trade.tradingsymbol, "tick_size": trade.spec.tick_size,
                                          "lot_size": trade.spec.lot_size}
                    known[(str(alert["body"].get("symbolname")), str(alert["body"].get("exchange") or ""))] = found[alert["id"]]
                    break
        lines = []
        for alert in alerts:
            body = {k: v for k, v in alert["body"].items() if k != "token"}  # never the webhook secret
            line: dict[str, Any] = {"received_ms": alert["received_ms"], "body": body}
            instrument = found.get(alert["id"]) or known.get((str(body.get("symbolname")), str(body.get("exchange") or "")))
            if instrument is not None:
                line["instrument"] = instrument
            lines.append(line)
        return lines
    finally:
        await store.close()


def export_alerts(db: str | Path, out: str, *, day: str | None = None) -> int:
    """A store's accepted alerts (oldest first) as an alerts file at `out` ("-": standard output)."""
    lines = run_async(_export(Path(db), day))
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    if out == "-":
        import sys

        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")
    return len(lines)
