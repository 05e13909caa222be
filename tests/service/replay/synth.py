"""Synthetic recordings and stored trades for the replay's tests: a trade's events as the service
writes them, and ticks as the recorder files them (one a second unless told otherwise)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from service.recording import RecordedTick
from service.replay.plans import TradePlan, plan_from_events
from service.trades import TradeRecord, TradeSpec
from streams import Tick

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
OPEN_MS = int(dt.datetime(2026, 12, 4, 10, 0, tzinfo=IST).timestamp() * 1000)  # a Friday, 10:00 IST
SQUARE_OFF_MS = int(dt.datetime(2026, 12, 4, 15, 15, tzinfo=IST).timestamp() * 1000)
TOKEN = "3045"


def ticks(prices: Sequence[float], *, start_ms: int = OPEN_MS + 1_000, step_ms: int = 1_000, token: str = TOKEN,
          exchange: str = "NSE", first_seq: int = 1, lag_ms: int = 3) -> list[RecordedTick]:
    """Prices in rupees, one tick every `step_ms` from `start_ms`, each arriving `lag_ms` after its stamp."""
    out = []
    for n, price in enumerate(prices):
        stamp = start_ms + n * step_ms
        out.append(RecordedTick(first_seq + n, (stamp + lag_ms) * 1_000_000,
                                Tick(token, exchange, round(price * 100), stamp)))
    return out


def merged(*streams: Iterable[RecordedTick]) -> list[RecordedTick]:
    """Several instruments' ticks as one recording: by arrival, renumbered in that order."""
    rows = sorted((r for stream in streams for r in stream), key=lambda r: (r.arrival_ns, r.seq))
    return [RecordedTick(n, r.arrival_ns, r.tick) for n, r in enumerate(rows, start=1)]


def rules(stop: tuple[str, float] | None = None, target: tuple[str, float] | None = None,
          trail: tuple[str, float] | None = None, activation: tuple[str, float] | None = None) -> dict[str, Any]:
    def one(rule):
        return None if rule is None else {"type": rule[0], "value": str(rule[1])}
    out: dict[str, Any] = {"stop": one(stop), "target": one(target), "trail": None}
    if trail is not None:
        out["trail"] = {**one(trail), "activation": one(activation)}
    return out


def created(trade_id: int = 1, *, side: str = "LONG", product: str = "INTRADAY", rules_: dict | None = None,
            token: str = TOKEN, exchange: str = "NSE", at_ms: int = OPEN_MS, quantity: int = 10) -> dict[str, Any]:
    record = TradeRecord(id=trade_id, alert_id=trade_id, account="acc", strategy="s1", exchange=exchange, token=token,
                         tradingsymbol="SBIN-EQ", side=side, product=product, quantity=quantity,
                         spec=TradeSpec(rules=rules_ or {}, rule_source="alert", tick_size=5, fund=10_000_000),
                         created_ms=at_ms, updated_ms=at_ms)
    return {"at_ms": at_ms, "kind": "created", "data": {"trade": msgspec.to_builtins(record)}}


def event(kind: str, at_ms: int, **data: Any) -> dict[str, Any]:
    return {"at_ms": at_ms, "kind": kind, "data": data}


def plan(trade_id: int = 1, *, entry: float = 800.0, quantity: int = 10, at_ms: int = OPEN_MS + 500,
         more: Sequence[dict[str, Any]] = (), **kwargs: Any) -> TradePlan:
    """A stored trade filled at `entry` (rupees) at `at_ms`, with `more` events after."""
    events = [created(trade_id, quantity=quantity, **kwargs),
              event("entry_fill", at_ms, quantity=quantity, price=round(entry * 100), tag=f"tg{trade_id}E1"),
              *more]
    result = plan_from_events(events)
    assert result is not None
    return result


def replay(plans: Sequence[TradePlan], recording: Sequence[RecordedTick], *, variants: dict | None = None,
           always_open: bool = False, slippage: str = "none", brokerage: str = "angel", plugins=None):
    """Plans over a recording, as `tickguard replay --trades` runs them: (outcomes by (variant, trade id), replay)."""
    from service.replay.outcomes import Slippage, brokerage_plan, outcome_of
    from service.replay.run import Replay
    from service.replay.sources import schedule_trades
    from service.replay.variants import LIVE, Variant, parse_variants
    from service.runtime import always_open_calendar
    from streams import EngineConfig, PipelineConfig

    chosen = parse_variants(variants) if variants is not None else [Variant(LIVE)]
    engine = EngineConfig(calendar=always_open_calendar()) if always_open else EngineConfig()
    watch = {p.basis_key for p in plans} | {p.traded_key for p in plans}
    runner = Replay([v.name for v in chosen], config=PipelineConfig(engine=engine),
                    plugins=plugins or (lambda name: ()), watch=watch)
    schedule_trades(runner, plans, chosen)
    runner.run(recording)
    rows = {}
    for run in runner.runs:
        for trade_id, trade in run.trades.items():
            last = runner.latest.get(trade.key)
            rows[(run.name, trade_id)] = outcome_of(run.name, trade, slippage=Slippage.parse(slippage),
                                                    plan=brokerage_plan(brokerage),
                                                    last_tick_price=None if last is None else last.ltp)
    return rows, runner
