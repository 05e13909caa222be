"""The missed-stop sweep: many trades over several tokens, fast price paths through their stops while the
feed is faulted (garbage frames, a dropped socket, a stall past STREAM_STALL_S) or a 100 k-tick burst
plays on another token. A missed stop is a crossed trade not EXITING/CLOSED/UNPROTECTED within 1 s of
the crossing tick (of the reconnection, for a long stall; plus the first reconnect backoff for a drop).

One resting trade per token, the burst's included (its stop 100 points away, never crossed), keeps the
tokens subscribed for the whole sweep, and a slow pulse on the burst token keeps the stream from ever
going quiet for STREAM_STALL_S: otherwise the watchdog takes a still paper price for a stall and the
reconnect backoff grows until the wave runs on REST prices alone, with no socket for its fault to hit.
Each wave starts once the paper exchange shows tickguard's socket subscribed and the trade feed shows
tickguard holding the reset prices: a trade armed earlier would meet the previous wave's low price.

The crossing time is the paper exchange's own stamp of the first tick at or below the stop sent to a
socket during the wave (`GET /paper/v1/stamps`, epoch ms, the clock of tickguard's `exit_fired`
event). A crossing tick that never left for a socket (the socket dropped, the feed stalled, an outbox
dropped for overflow) is timed by the exchange's stamp of when its price book played it; only with
neither is it estimated from the path's progress, a lower bound, which only makes the check stricter. Each wave also prints the slowest crossing -> exit order received by the exchange
(both stamped by the exchange, on its perf_counter clock).
"""
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from websockets.sync.client import connect

from tests.faults.full.procs import HEADERS, Paper, Tickguard
from tests.faults.full.tally import Tally

TOKENS = {"3045": 800, "2885": 1400, "1594": 1500}  # SBIN, RELIANCE, INFY
BURST_TOKEN, BURST_PRICE = "11536", 3100  # TCS
PRICES = {**TOKENS, BURST_TOKEN: BURST_PRICE}
SYMBOLS = {"3045": "SBIN", "2885": "RELIANCE", "1594": "INFY", BURST_TOKEN: "TCS"}
PULSE_RATE = 20  # ticks a second on the burst token, between and during waves
STALL_S, BACKOFF_S = 1.0, 0.5
ALLOWED = {"none": 1.0, "garbage": 1.0, "drop": 1.0 + BACKOFF_S, "stall": STALL_S + 1.0 + 1.0, "burst": 1.0}
RATE = 40  # path points a second, one rupee apart
DROP = 35  # rupees each path falls
HOLD_DISTANCE = 100  # the resting trades' stop, in points: never crossed by a path
FIRED = {"EXITING", "CLOSED", "UNPROTECTED"}
WAVES = ["none", "garbage", "drop", "stall", "burst", "garbage", "drop", "burst"]


def run(workdir: Path, tally: Tally, trades_per_wave: int = 24, seed: int = 11) -> None:
    rng = random.Random(seed)
    paper = Paper(workdir).start()
    tg = Tickguard(workdir, paper.url, STREAM_STALL_S=str(STALL_S), EXIT_CHASE_MS="200").start()
    serial = iter(range(10**9))
    try:
        holders = post_alerts(tg, tally, [(token, HOLD_DISTANCE, f"sweephold{token}") for token in PRICES])
        wait_armed(tg, tally, holders, "the resting trades")
        pulse = paper.control("POST", "/paths", json={"exchange": "NSE", "token": BURST_TOKEN, "rate": PULSE_RATE,
                                                      "points": [BURST_PRICE, BURST_PRICE + 0.5], "repeat": 10**6})
        for wave, fault in enumerate(WAVES):
            for token, price in TOKENS.items():
                paper.price(price, token)
            wait_connected(paper, tally, wave)
            wait_seen(tg, tally, holders, wave)
            specs = [(list(TOKENS)[n % len(TOKENS)], rng.randint(2, 30), f"sweep{next(serial)}")
                     for n in range(trades_per_wave)]
            opened = post_alerts(tg, tally, specs)
            wait_armed(tg, tally, opened, f"sweep wave {wave}")
            figures = wave_check(paper, tg, tally, rng, fault, opened, keep=pulse.json()["path_id"])
            print(f"sweep wave {wave} ({fault}): {len(opened)} trades, {figures}, "
                  f"{tally.figures['stops missed']} missed so far", flush=True)
        for trade_id in holders:
            tg.http.post(f"/trades/{trade_id}/close")
        wait_settled(tg, tally, holders, "the resting trades")
    finally:
        tg.stop()
        paper.stop()


def post_alerts(tg: Tickguard, tally: Tally, specs: list[tuple[str, int, str]]) -> dict[int, tuple[str, int]]:
    """One buy alert per (token, stop distance in points, strategy); returns trade id -> (token, stop paise)."""
    opened: dict[int, tuple[str, int]] = {}
    for token, distance, strategy in specs:
        body = {"symbolname": SYMBOLS[token], "signal": "buy", "price": PRICES[token], "type": "equity",
                "strategyname": strategy, "quantity": 1, "stoploss": {"type": "points", "value": distance}}
        reply = tg.http.post("/opentrade", json=body)
        if reply.status_code >= 500:
            tally.bad("5xx seen", f"sweep alert {reply.status_code} {reply.text[:200]}")
        if reply.status_code == 202:
            tally.add("alerts acknowledged")
            opened[reply.json()["trades"][0]] = (token, (PRICES[token] - distance) * 100)
    return opened


def wait_armed(tg: Tickguard, tally: Tally, trades: dict, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        views = [tg.trade(i)["trade"] for i in trades]
        if all(v["state"] == "OPEN" and v["stop"] is not None for v in views):
            return
        time.sleep(0.1)
    tally.bad("trades not settled", f"{what}: not all {len(trades)} trades armed: "
              f"{[(v['id'], v['state'], v['stop']) for v in views if v['state'] != 'OPEN' or v['stop'] is None]}")


def wait_settled(tg: Tickguard, tally: Tally, trades: dict, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(tg.trade(i)["trade"]["state"] in ("CLOSED", "UNPROTECTED") for i in trades):
            return
        time.sleep(0.2)
    tally.bad("trades not settled", f"{what}: exits not all confirmed")


def wait_connected(paper: Paper, tally: Tally, wave: int) -> None:
    """Until tickguard's market socket is up at the paper exchange with every resting trade's token."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        market = paper.control("GET", "/feed").json()["market"]
        if any(c["subscriptions"] == len(PRICES) and not c["closing"] for c in market):
            return
        time.sleep(0.05)
    tally.bad("trades not settled", f"sweep wave {wave}: tickguard's market socket not up: {market}")


def wait_seen(tg: Tickguard, tally: Tally, holders: dict[int, tuple[str, int]], wave: int) -> None:
    """Until the trade feed shows each resting trade's LTP at its token's reset price."""
    wanted = {trade_id: TOKENS[token] * 100 for trade_id, (token, _) in holders.items() if token in TOKENS}
    seen: dict[int, int | None] = {}
    url = tg.url.replace("http://", "ws://") + "/ws/trades"
    deadline = time.monotonic() + 10
    with connect(url, additional_headers=HEADERS, open_timeout=10, close_timeout=1) as ws:
        while any(seen.get(i) != price for i, price in wanted.items()):
            left = deadline - time.monotonic()
            if left <= 0:
                tally.bad("trades not settled", f"sweep wave {wave}: tickguard's prices {seen} after the reset to {wanted}")
                return
            try:
                message = json.loads(ws.recv(timeout=left))
            except TimeoutError:
                continue
            if message["type"] == "snapshot":
                seen.update({t["id"]: t["ltp"] for t in message["trades"] if t["id"] in wanted})
            elif message["type"] == "prices":
                seen.update({p["trade_id"]: p["ltp"] for p in message["prices"] if p["trade_id"] in wanted})


def inject(paper: Paper, tally: Tally, rng: random.Random, fault: str) -> Callable[[], None]:
    """Start the wave's fault; returns what ends it (the garbage frames, a stall)."""
    if fault == "none":
        return lambda: None
    tally.add("faults injected")
    if fault == "garbage":
        quiet = threading.Event()

        def garbage() -> None:
            while not quiet.is_set():
                kind = rng.choice(["truncated", "binary", "text"])
                body = {"kind": kind, "exchange": "NSE", "token": "3045"} if kind == "truncated" else {"kind": kind}
                paper.control("POST", "/feed/garbage", json=body)
                time.sleep(0.02)
        noise = threading.Thread(target=garbage)
        noise.start()
        return lambda: (quiet.set(), noise.join())
    if fault == "burst":
        points = [BURST_PRICE + (i % 2) for i in range(1000)]
        paper.control("POST", "/paths", json={"exchange": "NSE", "token": BURST_TOKEN, "points": points, "rate": 100_000,
                                              "repeat": 100})
    elif fault == "drop":
        paper.control("POST", "/feed/drop", json={"socket": "market", "how": rng.choice(["close", "abort"])})
    elif fault == "stall":
        paper.control("POST", "/feed/stall")
        return lambda: paper.control("POST", "/feed/resume")
    return lambda: None


def wave_check(paper: Paper, tg: Tickguard, tally: Tally, rng: random.Random, fault: str, opened: dict,
               keep: str) -> str:
    """Play the wave's paths under `fault`, then check every trade's crossing; returns the wave's figures."""
    end_fault = inject(paper, tally, rng, fault)
    # Every token ramps down DROP rupees, one rupee a point: each stop is crossed at a known index.
    paths: dict[str, tuple[str, float, list[int]]] = {}
    since_ns = time.perf_counter_ns()  # the stamps of this wave's ticks are later than this
    for token, price in TOKENS.items():
        rupees = [price - i for i in range(DROP + 1)]
        started = time.time()
        path_id = paper.control("POST", "/paths", json={"exchange": "NSE", "token": token, "points": rupees,
                                                        "rate": RATE}).json()["path_id"]
        paths[token] = (path_id, started, [p * 100 for p in rupees])
    seen_before: dict[str, dict[int, float]] = {token: {} for token in paths}  # token -> played -> last time seen
    end = time.monotonic() + (DROP + 1) / RATE + ALLOWED[fault] + 3
    ended = False
    while time.monotonic() < end:
        now = time.time()
        for running in paper.control("GET", "/paths").json()["running"]:
            for token, (path_id, _, _) in paths.items():
                if running["path_id"] == path_id:
                    seen_before[token][running["played"]] = now
        if fault == "stall" and not ended and time.monotonic() > end - ALLOWED[fault] - 1.5:
            end_fault()  # the stall lasts past STREAM_STALL_S, then the feed resumes
            ended = True
        time.sleep(0.02)
    if not ended:
        end_fault()
    stamps = {token: paper.control("GET", "/stamps", params={"exchange": "NSE", "token": token}).json() for token in paths}
    crossings: dict[int, tuple[float, int | None, str]] = {}  # trade id -> (epoch s, perf_counter ns, how known)
    for trade_id, (token, stop) in opened.items():
        _, started, prices = paths[token]
        index = next(i for i, p in enumerate(prices) if p <= stop)
        for how in ("ticks", "played"):
            tick = crossing_tick([t for t in stamps[token][how] if t[1] >= since_ns], prices[index], stop)
            if tick is not None:
                crossings[trade_id] = (tick[2] / 1000, tick[1], how)
                break
        else:
            estimate = max([started + index / RATE] + [t for n, t in seen_before[token].items() if n <= index])
            crossings[trade_id] = (estimate, None, "estimated")
    fired = {trade_id: check_fired(tg, tally, fault, trade_id, *opened[trade_id], crossings[trade_id])
             for trade_id in opened}
    wait_settled(tg, tally, opened, f"sweep {fault}")
    for running in paper.control("GET", "/paths").json()["running"]:
        if running["path_id"] != keep:
            paper.control("DELETE", f"/paths/{running['path_id']}")
    to_order = [exit_received(paper, tg, trade_id, *crossings[trade_id][:2]) for trade_id in opened]
    known = Counter(how for _, _, how in crossings.values())
    return (f"crossings {known['ticks']} sent, {known['played']} played only, {known['estimated']} estimated; "
            f"crossing -> exit_fired {spread(list(fired.values()))}; "
            f"crossing -> exit order at the exchange {spread(to_order)}")


def spread(seconds: list[float | None]) -> str:
    known = sorted(s for s in seconds if s is not None)
    if not known:
        return "none"
    return f"median {known[len(known) // 2]:.3f} s, slowest {known[-1]:.3f} s" + \
        (f" ({len(seconds) - len(known)} unknown)" if len(known) < len(seconds) else "")


def crossing_tick(ticks: list[list[int]], crossing_ltp: int, stop: int) -> list[int] | None:
    """The stamp (ltp, ns, epoch ms) of the crossing tick among the first at or below the stop, or None."""
    first = next((tick for tick in ticks if tick[0] <= stop), None)
    return first if first is not None and first[0] == crossing_ltp else None


def check_fired(tg: Tickguard, tally: Tally, fault: str, trade_id: int, token: str, stop: int,
                crossing: tuple[float, int | None, str]) -> float | None:
    """Counts the crossing (missed or not); returns seconds from the crossing to `exit_fired`, if it fired."""
    crossed, _, how = crossing
    view = tg.trade(trade_id)
    fired = next((e["at_ms"] / 1000 for e in view["events"] if e["kind"] == "exit_fired"), None)
    tally.add("stop crossings checked")
    if view["trade"]["state"] not in FIRED or fired is None or fired - crossed > ALLOWED[fault]:
        took = "never" if fired is None else f"{fired - crossed:.3f} s"
        tally.bad("stops missed", f"{fault}: trade {trade_id} on {token} stop {stop / 100} fired {took} after the "
                                  f"crossing ({how} at {crossed:.3f}; allowed {ALLOWED[fault]} s); "
                                  f"state {view['trade']['state']}")
    return None if fired is None else fired - crossed


def exit_received(paper: Paper, tg: Tickguard, trade_id: int, crossed: float, crossed_ns: int | None) -> float | None:
    """Seconds from the crossing to the exchange receiving the trade's first exit order (None: no exit sent)."""
    tag = next((e["data"]["tag"] for e in tg.trade(trade_id)["events"] if e["kind"] == "exit_sent"), None)
    received = None if tag is None else paper.control("GET", "/stamps", params={"tag": tag}).json()["order"]
    if received is None:
        return None
    return (received[0] - crossed_ns) / 1e9 if crossed_ns is not None else received[1] / 1000 - crossed
