"""tickguard for the benchmarks: the app `tickguard serve` runs (with PAPER_URL), plus trades armed at start.

`python -m bench._tickguard --port N`. With BENCH_SEED_TRADES=N and BENCH_SEED_TOKENS=file.json
(`[[exchange, token, tradingsymbol, price_paise], ...]`) it stores N filled trades over those
instruments, once the app is up, and arms each through `Guard.arm` — the call an entry fill makes —
then writes BENCH_SEEDED_FILE (`seconds to store and arm`, `seconds until their armed events are stored`).
The trades are stored in one transaction and armed in one pass. Ten thousand trades cannot arrive
through real entries: SmartAPI allows 1 000 orders an hour. Half are long, half short; stops 1-5 % from the entry, targets twice as far,
every tenth trade trailing 1 % once 2 % in profit (the engine benchmark's trades). None has a
broker-side backup stop (their strategy's word, whatever BROKER_STOP says): 10 000 of them could not
be placed either.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import time
from pathlib import Path

from service.settings import SECRET_FIELDS, load_settings
from service.store import Store
from service.trades import TradeRecord, TradeSpec, TradeState


def seeded_trades(count: int, instruments: list[list], account: str, now_ms: int) -> list[TradeRecord]:
    rng = random.Random(7)
    trades = []
    for n in range(count):
        exchange, token, symbol, price = instruments[n % len(instruments)]
        stop_pct = rng.randint(100, 500) / 100
        rules: dict = {"stop": {"type": "entry_pct", "value": str(stop_pct)},
                       "target": {"type": "entry_pct", "value": str(stop_pct * 2)}}
        if n % 10 == 9:
            rules["trail"] = {"type": "entry_pct", "value": "1", "activation": {"type": "entry_pct", "value": "2"}}
        spec = TradeSpec(rules=rules, rule_source="bench", tick_size=5, lot_size=1, alert_price=price,
                         fund=100_000_000, login=None, broker_stop=False, broker_stop_from="strategy")
        trades.append(TradeRecord(id=0, alert_id=None, account=account, strategy=f"seed{n % 100}", exchange=exchange,
                            token=token, tradingsymbol=symbol, side="LONG" if n % 2 == 0 else "SHORT",
                            product="INTRADAY", state=TradeState.OPEN, quantity=1, filled=1, entry_price=price,
                            entry_value=price, created_ms=now_ms, updated_ms=now_ms, spec=spec))
    return trades


async def seed(store: Store, guard, trades: list[TradeRecord]) -> list[TradeRecord]:
    """Store `trades` in one transaction (each row as the fold of created, sized and an entry fill of 1 at
    the price), then arm them all in one pass, with no await between two armings; returns them stored."""

    def work(db) -> list[TradeRecord]:
        return [Store.insert_trade(db, trade) for trade in trades]

    stored = await store.db.write(work)
    for trade in stored:
        assert trade.state is TradeState.OPEN
        guard.arm(trade)
    return stored


async def serve(port: int) -> None:
    import uvicorn

    from service.web.app import create_app
    from service.runtime import Runtime

    settings = load_settings()
    desk = Runtime(settings)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, desk), host="127.0.0.1", port=port, access_log=False,
                                           log_config=None, log_level=settings.log_level.lower(), proxy_headers=False))
    task = asyncio.create_task(server.serve())
    count = int(os.environ.get("BENCH_SEED_TRADES") or 0)
    if count:
        deadline = time.monotonic() + 120
        while not server.started:
            if task.done():
                await task
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the app did not start within 120 s")
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        instruments = json.loads(Path(os.environ["BENCH_SEED_TOKENS"]).read_text())
        await seed(desk.store, desk.guard, seeded_trades(count, instruments, desk.settings.demo_account, desk.now_ms()))
        stored = time.perf_counter()
        deadline = time.monotonic() + 240  # the armed events of the seeded trades are stored before measuring starts
        while any(job.get_name().startswith("armed-") for job in desk.trader._tasks):
            if time.monotonic() > deadline:
                raise TimeoutError("the seeded trades' armed events were not all stored within 240 s")
            await asyncio.sleep(0.05)
        desk.heap.settle()  # what the desk's minutely freeze would have done by now (service.gc_tuning)
        Path(os.environ["BENCH_SEEDED_FILE"]).write_text(f"{stored - started:.3f} {time.perf_counter() - started:.3f}")
    await task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings()
    from service.logs import configure_logging

    secrets = [getattr(settings, name) for name in sorted(SECRET_FIELDS)]
    configure_logging(settings.log_level, secrets=[s for s in secrets if s and isinstance(s, str)])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from service.cli import run

    run(serve(args.port), settings.event_loop)


if __name__ == "__main__":
    main()
