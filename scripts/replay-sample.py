"""Regenerate tests/data/replay-sample/: a small generated paper session to replay.

    .venv/bin/python scripts/replay-sample.py [OUT_DIR]

Writes, deterministically (seeded):
    ticks/2026-12-04.parquet   three NSE instruments, 13:30–15:20 IST, a tick a second each, as the
                               recorder files a day (`service.recording.write_day`)
    tickguard.db               a tickguard store (its own schema and write paths) with six trades and
                               their alerts: a target, a trail with activation, a gap through a short's
                               stop, a partial exit, a signal exit and an intraday square-off at 15:15
    alerts.jsonl               the store's alerts as `tickguard export-alerts` writes them
    variants.json              three rule variants

The trades' exits are what tickguard's engine decided on these ticks (it is run once here, as the
guard runs it), each exit filled one tick worse than its trigger, so the store reads like a session.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from service.recording import RecordedTick, write_day  # noqa: E402
from service.replay.alerts import export_alerts  # noqa: E402
from service.replay.plans import plan_from_events  # noqa: E402
from service.replay.run import Replay  # noqa: E402
from service.replay.sources import schedule_trades  # noqa: E402
from service.replay.variants import LIVE, Variant  # noqa: E402
from service.store import Store  # noqa: E402
from service.trades import TradeEvent, TradeRecord, TradeSpec  # noqa: E402
from streams import Tick  # noqa: E402

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
DAY = dt.date(2026, 12, 4)
START = int(dt.datetime(2026, 12, 4, 13, 30, tzinfo=IST).timestamp() * 1000)
END = int(dt.datetime(2026, 12, 4, 15, 20, tzinfo=IST).timestamp() * 1000)
MINUTE = 60_000

# (exchange, token, symbol, start price, [(minutes from 13:30, price)]): the path bends through these
INSTRUMENTS = [
    ("NSE", "3045", "SBIN-EQ", 800.0, [(10, 801), (20, 811), (30, 806), (50, 809), (70, 803), (110, 806)]),
    ("NSE", "2885", "RELIANCE-EQ", 1300.0, [(15, 1301), (35, 1318), (45, 1309), (60, 1306), (110, 1304)]),
    ("NSE", "1594", "INFY-EQ", 1600.0, [(30, 1596), (40, 1594), (40.05, 1612), (60, 1608), (110, 1601)]),
]
VARIANTS = {
    "points5": {"stoploss": {"type": "points", "value": 5}},
    "pct0.8": {"stoploss": {"type": "entry_pct", "value": 0.8}, "target": {"type": "entry_pct", "value": 1.6}},
    "trail-act": {"stoploss": {"type": "points", "value": 6},
                  "trail": {"type": "points", "value": 3, "activation": {"type": "points", "value": 4}}},
}
# (trade id, instrument, side, minutes after 13:30, quantity, alert rules, signal exit minutes or None)
TRADES = [
    (1, 0, "LONG", 12, 50, {"stoploss": {"type": "points", "value": 5}, "target": {"type": "points", "value": 8}}, None),
    (2, 1, "LONG", 16, 20, {"stoploss": {"type": "points", "value": 6},
                            "trail": {"type": "entry_pct", "value": 0.5, "activation": {"type": "entry_pct", "value": 0.5}}}, None),
    (3, 2, "SHORT", 31, 15, {"stoploss": {"type": "entry_pct", "value": 0.4}}, None),
    (4, 0, "LONG", 52, 40, {"stoploss": {"type": "points", "value": 8}}, None),
    (5, 1, "LONG", 46, 25, {"stoploss": {"type": "points", "value": 10}}, 75),
    (6, 2, "LONG", 62, 10, {"stoploss": {"type": "points", "value": 20}}, None),
]
PARTIAL = (4, 60, 15)  # trade 4: 15 units closed by an alert at 14:30


def _path(start: float, bends, rng: random.Random) -> list[int]:
    prices = []
    points = [(0.0, start)] + [(float(m), float(p)) for m, p in bends]
    for second in range((END - START) // 1000):
        minute = second / 60
        while len(points) > 1 and minute > points[1][0]:
            points.pop(0)
        if len(points) > 1:
            (m0, p0), (m1, p1) = points[0], points[1]
            price_at = p0 + (p1 - p0) * (minute - m0) / (m1 - m0)
        else:
            price_at = points[0][1]
        noise = rng.choice((-0.1, -0.05, 0, 0, 0.05, 0.1))
        prices.append(round((price_at + noise) * 20) * 5)
    return prices


def recording(rng: random.Random) -> list[RecordedTick]:
    rows = []
    for n, (exchange, token, _, start, bends) in enumerate(INSTRUMENTS):
        for second, ltp in enumerate(_path(start, bends, rng)):
            stamp = START + second * 1000 + n * 97
            rows.append((stamp + rng.randint(2, 15), Tick(token, exchange, ltp, stamp)))
    rows.sort(key=lambda row: row[0])
    return [RecordedTick(seq, arrival * 1_000_000, tick) for seq, (arrival, tick) in enumerate(rows, start=1)]


def _price_at(ticks: list[RecordedTick], token: str, at_ms: int) -> int:
    last = None
    for row in ticks:
        if row.arrival_ns // 1_000_000 > at_ms:
            break
        if row.tick.token == token:
            last = row.tick.ltp
    assert last is not None
    return last


def _events(ticks: list[RecordedTick]) -> dict[int, list[tuple[int, str, dict]]]:
    """Each trade's events up to its exit: entries, the partial exit, signal exits."""
    events: dict[int, list[tuple[int, str, dict]]] = {}
    for trade_id, which, side, minute, quantity, _, signal in TRADES:
        token = INSTRUMENTS[which][1]
        at = START + minute * MINUTE + 137
        mine = events[trade_id] = [(at, "entry_fill", {"quantity": quantity, "price": _price_at(ticks, token, at),
                                                       "tag": f"tg{trade_id}E1"})]
        if signal is not None:
            mine.append((START + signal * MINUTE + 211, "exit_fired", {"reason": "SIGNAL", "level": None}))
        if trade_id == PARTIAL[0]:
            at = START + PARTIAL[1] * MINUTE + 305
            price = _price_at(ticks, token, at) - 5
            mine += [(at, "partial_exit_fired", {"reason": "SIGNAL", "quantity": PARTIAL[2]}),
                     (at + 45, "exit_fill", {"quantity": PARTIAL[2], "price": price, "tag": f"tg{trade_id}X1"}),
                     (at + 50, "partial_exit_done", {"asked": PARTIAL[2], "quantity": PARTIAL[2]})]
    return events


def _record(trade_id: int, which: int, side: str, minute: int, quantity: int, alert_rules: dict) -> TradeRecord:
    exchange, token, symbol, *_ = INSTRUMENTS[which]
    rules = {"stop": None, "target": None, "trail": None}
    for field, engine in (("stoploss", "stop"), ("target", "target")):
        if field in alert_rules:
            rules[engine] = {k: str(v) for k, v in alert_rules[field].items()}
    if "trail" in alert_rules:
        trail = alert_rules["trail"]
        rules["trail"] = {"type": trail["type"], "value": str(trail["value"]),
                          "activation": {k: str(v) for k, v in trail["activation"].items()}}
    at = START + minute * MINUTE
    return TradeRecord(id=trade_id, alert_id=trade_id, account="paper", strategy="demo", exchange=exchange, token=token,
                       tradingsymbol=symbol, side=side, product="INTRADAY", quantity=quantity,
                       spec=TradeSpec(rules=rules, rule_source="alert", tick_size=5, fund=10_000_000),
                       created_ms=at, updated_ms=at)


def _exits(ticks, records, events) -> dict[int, tuple[int, dict, int]]:
    """What the engine decides on these ticks for each trade: (at_ms, exit_fired data, fill price)."""
    plans = []
    for trade_id, record in records.items():
        raw = [{"at_ms": record.created_ms, "kind": "created", "data": {"trade": msgspec.to_builtins(record)}}]
        raw += [{"at_ms": at, "kind": kind, "data": data} for at, kind, data in events[trade_id]]
        plans.append(plan_from_events(raw))
    replay = Replay([LIVE], watch=())
    schedule_trades(replay, plans, [Variant(LIVE)])
    replay.run(ticks)
    out = {}
    for trade_id, run in replay.runs[0].trades.items():
        intent, tick = run.exit.intent, run.exit.intent.tick
        fired = {"reason": str(intent.reason), "level": intent.level, "tick_ltp": tick.ltp if tick else None,
                 "tick_ts_ms": tick.exchange_ts_ms if tick else None, "source": ""}
        worse = run.exit.traded.ltp + (5 if not run.record.long else -5)
        out[trade_id] = (run.exit.at_ms, fired, worse)
    return out


async def _store(path: Path, ticks: list[RecordedTick]) -> None:
    records = {t[0]: _record(*t[:6]) for t in TRADES}
    events = _events(ticks)
    exits = _exits(ticks, records, events)
    store = Store(path, synchronous="OFF")
    store.open()

    def work(db):
        for trade_id, which, side, minute, quantity, alert_rules, signal in TRADES:
            record = records[trade_id]
            body = {"symbolname": record.tradingsymbol.removesuffix("-EQ"), "signal": "buy" if side == "LONG" else "short",
                    "price": events[trade_id][0][2]["price"] / 100, "type": "equity", "strategyname": "demo",
                    "quantity": quantity, **alert_rules}
            alert_id = Store.insert_alert(db, now_ms=record.created_ms - 80, source="webhook", dedup_key=f"a{trade_id}",
                                          dedup_until_ms=record.created_ms, body=body, status="accepted")
            Store.insert_trade(db, record)
            Store.set_alert_trades(db, alert_id, [trade_id])
            for at, kind, data in events[trade_id]:
                if kind == "exit_fired":
                    continue  # the full exit below, as the engine fired it
                Store.apply(db, trade_id, TradeEvent(kind=kind, at_ms=at, data=data))
            at, fired, price = exits[trade_id]
            if signal is not None:
                exit_body = {"symbolname": body["symbolname"], "signal": "exit", "price": price / 100, "type": "equity",
                             "strategyname": "demo"}
                exit_alert = Store.insert_alert(db, now_ms=at - 30, source="webhook", dedup_key=f"x{trade_id}",
                                                dedup_until_ms=at, body=exit_body, status="accepted")
                Store.set_alert_trades(db, exit_alert, [trade_id])
            left = records[trade_id].quantity - sum(d["quantity"] for _, k, d in events[trade_id] if k == "exit_fill")
            Store.apply(db, trade_id, TradeEvent(kind="exit_fired", at_ms=at, data=fired))
            Store.apply(db, trade_id, TradeEvent(kind="exit_fill", at_ms=at + 60,
                                                 data={"quantity": left, "price": price, "tag": f"tg{trade_id}X2"}))
            Store.apply(db, trade_id, TradeEvent(kind="closed", at_ms=at + 61, data={}))

    await store.db.write(work)
    await store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    db.execute("VACUUM")
    db.close()


def main(out: Path) -> None:
    rng = random.Random(20261204)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "tickguard.db", out / "tickguard.db-wal", out / "tickguard.db-shm"):
        stale.unlink(missing_ok=True)
    ticks = recording(rng)
    write_day(out / "ticks", DAY.isoformat(), ticks)
    asyncio.run(_store(out / "tickguard.db", ticks))
    export_alerts(out / "tickguard.db", str(out / "alerts.jsonl"))
    (out / "variants.json").write_text(json.dumps(VARIANTS, indent=2) + "\n")
    sizes = {p.name: p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    print(f"{len(ticks)} ticks; " + ", ".join(f"{name} {size:,} B" for name, size in sizes.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "replay-sample")
