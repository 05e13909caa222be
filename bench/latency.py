"""tick→exit: the exchange sends the crossing tick → the exchange receives the exit order, under load.

Three processes: the paper exchange, tickguard (`bench._tickguard`, 10 000 armed trades over 1 000
tokens, 40 of them real instruments that tick) and this one. Background load: price paths on 20 of
those instruments at 1 000 points/s each (20 000 ticks/s on tickguard's socket; the rate tickguard
really saw is printed too), walking within +-0.5 %, never near a seeded stop.

Crossing trades are real: buy alerts through `/opentrade` on 16 other instruments, filled by the paper
exchange and armed, with stops staggered 0.5 % apart so each crossing tick fires exactly one of them.

Half of the crossing trades have a broker-side backup stop (tickguard runs with BROKER_STOP=backup)
and half do not (their strategy says `"broker_stop": false`), alternating instrument by instrument and
step by step, so both kinds are measured in the same run under the same load. A backup trade's exit
is cancel-first: its broker stop is cancelled and the exit waits for the broker's word that it is,
then goes out — the cost of the broker stop on the exit path. Its trigger sits 1 % behind the stop
(BROKER_STOP_BUFFER), out of reach of the crossing tick (0.2 % through the stop), so the exit measured
is always tickguard's own. The 10 000 seeded trades have none (they could not: SmartAPI takes 1 000
orders an hour).
A sample is measured by the exchange itself (`GET /paper/v1/stamps`, one clock): from the moment the
crossing tick's frame was handed to tickguard's socket to the moment placeOrder received the exit
(tagged `tg<id>X1`). For comparison, the same exit timed from outside, on this process's clock, is
printed too: from just before `POST /paper/v1/ticks` to the exit's first order update (AB09) on the
order-update socket — an upper bound that adds the control request's trip in and the update's trip
out. Samples are 0.2 s apart (exits are paced at 10 orders/s per segment).
"""
from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import date

import httpx
from websockets.asyncio.client import connect

from bench import _procs
from bench._blaster import fake_token
from bench.common import Figure
from bench.ingest import service_rate
from paper.instruments import build_universe

TRADES, SEEDED_TOKENS = 10_000, 984
BACKGROUND_PATHS, PATH_RATE = 20, 1_000
CROSSING_TOKENS = 16
SPACING_S = 0.2


def rupees(paise: int) -> float:
    return paise // 5 * 5 / 100


def instruments() -> tuple[list, list]:
    equities = [i for i in build_universe(date.today(), 7).instruments if i.exchange == "NSE" and i.instrumenttype == ""]
    universe = build_universe(date.today(), 7)
    priced = [(i, universe.reference_price("NSE", i.token) // 5 * 5) for i in equities]
    return priced[:CROSSING_TOKENS], priced[CROSSING_TOKENS:]


def walk(price: int, count: int, rng: random.Random) -> list[float]:
    return [rupees(price + rng.randint(-price // 200, price // 200)) for _ in range(count)]


async def order_updates(url: str, headers: dict[str, str], arrivals: dict[str, float]) -> None:
    async with connect(url.replace("http", "ws", 1) + "/smart-order-update", additional_headers=headers) as ws:
        async for message in ws:
            now = time.perf_counter()
            try:
                tag = json.loads(message).get("orderData", {}).get("ordertag", "")
            except (ValueError, AttributeError):
                continue
            arrivals.setdefault(tag, now)


async def _trade(client: httpx.AsyncClient, trade_id: int) -> dict:
    return (await client.get(f"/trades/{trade_id}")).json()["trade"]


async def _armed(service: httpx.AsyncClient, trades: list[tuple[int, bool]]) -> None:
    """Until every trade is armed and, for a backup trade, its broker stop is working at the exchange."""
    deadline = time.monotonic() + 60
    for trade_id, backup in trades:
        while True:
            trade = await _trade(service, trade_id)
            if trade["stop"] is not None and (not backup or (trade.get("broker_stop") or {}).get("status") == "trigger pending"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"trade {trade_id} was never armed (with its broker stop: {backup}): {trade}")
            await asyncio.sleep(0.05)


def _strategy(n: int, step: int, backup: bool) -> str:
    return f"cross{n}-{step}" + ("" if backup else "-off")


def strategies(per_token: int) -> dict[str, dict]:
    """STRATEGIES_FILE: the crossing trades without a broker stop say so."""
    return {_strategy(n, step, False): {"broker_stop": False}
            for n in range(CROSSING_TOKENS) for step in range(1, per_token + 1)}


@dataclass
class Samples:
    """Seconds from the crossing tick sent to the exit received, by the exchange's clock, per kind."""

    plain: list[float] = field(default_factory=list)
    backup: list[float] = field(default_factory=list)
    outside: list[float] = field(default_factory=list)  # plain trades, from this process's clock
    round_trips: list[float] = field(default_factory=list)
    background: float = 0.0


async def measure(paper_url: str, service_url: str, crossing: list, per_token: int, rate_s: float = 3.0) -> Samples:
    headers = _procs.login(paper_url)
    arrivals: dict[str, float] = {}
    listener = asyncio.create_task(order_updates(paper_url, {"Authorization": headers["Authorization"]}, arrivals))
    control = httpx.AsyncClient(base_url=f"{paper_url}/paper/v1", timeout=10)
    service = httpx.AsyncClient(base_url=service_url, headers=_procs.HEADERS, timeout=10)
    try:
        trades = []  # (trade id, instrument, with a broker stop), step k has its stop k * 0.5 % below the entry
        for step in range(1, per_token + 1):  # a step's entries go out within ENTRY_TTL_S at 10 orders/s
            batch = []
            for n, (instrument, _) in enumerate(crossing):
                backup = (n + step) % 2 == 1
                body = {"symbolname": f"NSE:{instrument.name}", "signal": "buy", "price": 100, "type": "equity",
                        "strategyname": _strategy(n, step, backup), "quantity": 1,
                        "stoploss": {"type": "entry_pct", "value": 0.5 * step}}
                reply = await service.post("/opentrade", json=body)
                assert reply.status_code == 202, reply.text
                batch.append((reply.json()["trades"][0], instrument, backup))
            await _armed(service, [(trade_id, backup) for trade_id, _, backup in batch])
            trades += batch
        samples = Samples()
        last = 0.0
        for trade_id, instrument, backup in trades:
            stop = (await _trade(service, trade_id))["stop"]
            await asyncio.sleep(max(0.0, last + SPACING_S - time.perf_counter()))
            tag = f"tg{base36(trade_id)}X1"
            crossing_ltp = stop - stop // 500
            started = time.perf_counter()
            reply = await control.post("/ticks", json={"exchange": "NSE", "token": instrument.token,
                                                        "ltp": rupees(crossing_ltp)})
            if not backup:
                samples.round_trips.append(time.perf_counter() - started)
            assert reply.status_code == 200, reply.text
            last = started
            while tag not in arrivals:
                if time.perf_counter() - started > 10:
                    raise TimeoutError(f"no exit {tag} at the exchange")
                await asyncio.sleep(0.0005)
            if not backup:
                samples.outside.append(arrivals[tag] - started)
            stamps = (await control.get("/stamps", params={"exchange": "NSE", "token": instrument.token,
                                                           "tag": tag})).json()
            received_ns = stamps["order"][0]
            sent_ns = max(ns for ltp, ns, _ in stamps["ticks"] if ltp == crossing_ltp // 5 * 5 and ns < received_ns)
            (samples.backup if backup else samples.plain).append((received_ns - sent_ns) / 1e9)
        samples.background = await asyncio.to_thread(service_rate, service_url, rate_s)
        return samples
    finally:
        listener.cancel()
        await control.aclose()
        await service.aclose()


def base36(n: int) -> str:
    digits, text = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        n, r = divmod(n, 36)
        text = digits[r] + text
        if n == 0:
            return text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run(quick: bool) -> list[Figure]:
    # Half of the samples with a broker stop: 16 (64) of each kind. More would not fit SmartAPI's 500 orders
    # a minute, which entries, broker stops, their cancels and exits share: the pacer would hold exits back.
    per_token = 1 if quick else 8
    crossing, seeded_real = instruments()
    rng = random.Random(3)
    with _procs.Scratch() as scratch:
        seeds = [["NSE", i.token, i.symbol, price] for i, price in seeded_real]
        seeds += [["NSE", fake_token(n), f"BENCH{n}-EQ", 50_000 + n * 200] for n in range(SEEDED_TOKENS - len(seeds))]
        (scratch / "seed_tokens.json").write_text(json.dumps(seeds))
        (scratch / "strategies.json").write_text(json.dumps(strategies(per_token)))
        seeded = scratch / "seeded"
        with _procs.paper(scratch) as paper:
            ticks = [{"exchange": "NSE", "token": i.token, "ltp": rupees(p)} for i, p in crossing + seeded_real]
            assert httpx.post(f"{paper.url}/paper/v1/ticks", json={"ticks": ticks}, timeout=10).status_code == 200
            service = _procs.tickguard(scratch, paper.url, seed_trades=TRADES, seed_tokens=str(scratch / "seed_tokens.json"),
                                       BENCH_SEEDED_FILE=str(seeded), BROKER_STOP="backup", BROKER_STOP_BUFFER="1%",
                                       PRICE_SANITY_PCT="0",  # the crossing alerts' price is nominal
                                       STRATEGIES_FILE=str(scratch / "strategies.json"))
            with service:
                _procs.wait_for(seeded.exists, "10 000 trades armed", 300)
                for instrument, price in seeded_real[:BACKGROUND_PATHS]:
                    body = {"exchange": "NSE", "token": instrument.token, "points": walk(price, 1_000, rng),
                            "rate": PATH_RATE, "repeat": 1_000}
                    reply = httpx.post(f"{paper.url}/paper/v1/paths", json=body, timeout=10)
                    assert reply.status_code in (200, 201, 202), reply.text
                samples = asyncio.run(measure(paper.url, service.url, crossing, per_token, 1.0 if quick else 3.0))
    ms = [s * 1000 for s in samples.plain]
    backup = [s * 1000 for s in samples.backup]
    plain_p50, plain_p99 = statistics.median(ms), percentile(ms, 0.99)
    return [
        Figure(f"background ticks seen by tickguard ({len(ms)} + {len(backup)} samples)", samples.background, "ticks/s"),
        Figure("tick->exit p50 (exchange stamps)", plain_p50, "ms", None, "<= 1 ms"),
        Figure("tick->exit p99 (exchange stamps)", plain_p99, "ms", None, "<= 5 ms"),
        Figure("tick->exit max (exchange stamps)", max(ms), "ms"),
        Figure("tick->exit p50, broker stop cancelled first", statistics.median(backup), "ms", plain_p50),
        Figure("tick->exit p99, broker stop cancelled first", percentile(backup, 0.99), "ms", plain_p99),
        Figure("tick->exit max, broker stop cancelled first", max(backup), "ms", max(ms)),
        Figure("tick->exit p50 from outside (upper bound)", statistics.median(samples.outside) * 1000, "ms"),
        Figure("control POST /ticks round trip p50 (in the above)", statistics.median(samples.round_trips) * 1000, "ms"),
    ]
