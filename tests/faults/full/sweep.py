"""The missed-stop sweep: many trades over several tokens, fast price paths through their stops while the
feed is faulted (garbage frames, a dropped socket, a stall past STREAM_STALL_S) or a 100 k-tick burst
plays on another token. A missed stop is a crossed trade not EXITING/CLOSED/UNPROTECTED within 1 s of
the crossing tick (of the reconnection, for a long stall; plus the first reconnect backoff for a drop).

The crossing time is a lower bound: the path's start plus the crossing point's index over the rate,
raised to the last moment the exchange was seen not to have played that point yet. The firing time is
the trade's `exit_fired` event (both wall clock, one machine).
"""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tests.faults.full.procs import Paper, Tickguard
from tests.faults.full.tally import Tally

TOKENS = {"3045": 800, "2885": 1400, "1594": 1500}  # SBIN, RELIANCE, INFY
BURST_TOKEN, BURST_PRICE = "11536", 3100  # TCS
STALL_S, BACKOFF_S = 1.0, 0.5
ALLOWED = {"none": 1.0, "garbage": 1.0, "drop": 1.0 + BACKOFF_S, "stall": STALL_S + 1.0 + 1.0, "burst": 1.0}
RATE = 40  # path points a second, one rupee apart
FIRED = {"EXITING", "CLOSED", "UNPROTECTED"}


def run(workdir: Path, tally: Tally, trades_per_wave: int = 24, seed: int = 11) -> None:
    rng = random.Random(seed)
    paper = Paper(workdir).start()
    tg = Tickguard(workdir, paper.url, STREAM_STALL_S=str(STALL_S), EXIT_CHASE_MS="200").start()
    serial = iter(range(10**9))
    try:
        for wave, fault in enumerate(["none", "garbage", "drop", "stall", "burst", "garbage", "drop", "burst"]):
            for token, price in TOKENS.items():
                paper.price(price, token)
            opened: dict[int, tuple[str, int]] = {}  # trade id -> (token, stop paise)
            for n in range(trades_per_wave):
                token = list(TOKENS)[n % len(TOKENS)]
                distance = rng.randint(2, 30)
                body = {"symbolname": {"3045": "SBIN", "2885": "RELIANCE", "1594": "INFY"}[token], "signal": "buy",
                        "price": TOKENS[token], "type": "equity", "strategyname": f"sweep{next(serial)}", "quantity": 1,
                        "stoploss": {"type": "points", "value": distance}}
                reply = tg.http.post("/opentrade", json=body)
                if reply.status_code >= 500:
                    tally.bad("5xx seen", f"sweep alert {reply.status_code} {reply.text[:200]}")
                if reply.status_code == 202:
                    tally.add("alerts acknowledged")
                    opened[reply.json()["trades"][0]] = (token, (TOKENS[token] - distance) * 100)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                views = [tg.trade(i)["trade"] for i in opened]
                if all(v["state"] == "OPEN" and v["stop"] is not None for v in views):
                    break
                time.sleep(0.1)
            else:
                tally.bad("trades not settled", f"sweep wave {wave}: not all {len(opened)} trades armed: "
                          f"{[(v['id'], v['state'], v['stop']) for v in views if v['state'] != 'OPEN' or v['stop'] is None]}")
            wave_check(paper, tg, tally, rng, fault, opened)
            print(f"sweep wave {wave} ({fault}): {len(opened)} trades, {tally.figures['stops missed']} missed so far",
                  flush=True)
    finally:
        tg.stop()
        paper.stop()


def wave_check(paper: Paper, tg: Tickguard, tally: Tally, rng: random.Random, fault: str, opened: dict) -> None:
    stop_noise = threading.Event()
    noise = None
    if fault == "garbage":
        def garbage() -> None:
            while not stop_noise.is_set():
                kind = rng.choice(["truncated", "binary", "text"])
                body = {"kind": kind, "exchange": "NSE", "token": "3045"} if kind == "truncated" else {"kind": kind}
                paper.control("POST", "/feed/garbage", json=body)
                time.sleep(0.02)
        noise = threading.Thread(target=garbage)
        noise.start()
    if fault == "burst":
        points = [BURST_PRICE + (i % 2) for i in range(1000)]
        paper.control("POST", "/paths", json={"exchange": "NSE", "token": BURST_TOKEN, "points": points, "rate": 100_000,
                                              "repeat": 100})
        tally.add("faults injected")
    if fault == "drop":
        paper.control("POST", "/feed/drop", json={"socket": "market", "how": rng.choice(["close", "abort"])})
        tally.add("faults injected")
    if fault == "stall":
        paper.control("POST", "/feed/stall")
        tally.add("faults injected")
    # Every token ramps down 35 rupees, one rupee a point: each stop is crossed at a known index.
    paths: dict[str, tuple[str, float, list[int]]] = {}
    for token, price in TOKENS.items():
        prices = [price - i for i in range(36)]
        started = time.time()
        path_id = paper.control("POST", "/paths", json={"exchange": "NSE", "token": token, "points": prices,
                                                        "rate": RATE}).json()["path_id"]
        paths[token] = (path_id, started, [p * 100 for p in prices])
    seen_before: dict[str, dict[int, float]] = {token: {} for token in paths}  # token -> played -> last time seen
    end = time.monotonic() + 36 / RATE + ALLOWED[fault] + 3
    resumed = False
    while time.monotonic() < end:
        now = time.time()
        for running in paper.control("GET", "/paths").json()["running"]:
            for token, (path_id, _, _) in paths.items():
                if running["path_id"] == path_id:
                    seen_before[token][running["played"]] = now
        if fault == "stall" and not resumed and time.monotonic() > end - ALLOWED[fault] - 1.5:
            paper.control("POST", "/feed/resume")
            resumed = True
        time.sleep(0.02)
    if not resumed and fault == "stall":
        paper.control("POST", "/feed/resume")
    stop_noise.set()
    if noise is not None:
        noise.join()
        tally.add("faults injected")
    for trade_id, (token, stop) in opened.items():
        _, started, prices = paths[token]
        index = next(i for i, p in enumerate(prices) if p <= stop)
        crossed = max([started + index / RATE] + [t for played, t in seen_before[token].items() if played <= index])
        view = tg.trade(trade_id)
        fired = next((e["at_ms"] / 1000 for e in view["events"] if e["kind"] == "exit_fired"), None)
        tally.add("stop crossings checked")
        if view["trade"]["state"] not in FIRED or fired is None or fired - crossed > ALLOWED[fault]:
            took = "never" if fired is None else f"{fired - crossed:.2f} s"
            tally.bad("stops missed", f"{fault}: trade {trade_id} on {token} stop {stop / 100} fired {took} after the "
                                      f"crossing (allowed {ALLOWED[fault]} s); state {view['trade']['state']}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(tg.trade(i)["trade"]["state"] in ("CLOSED", "UNPROTECTED") for i in opened):
            break
        time.sleep(0.2)
    else:
        tally.bad("trades not settled", f"sweep {fault}: exits not all confirmed")
    for running in paper.control("GET", "/paths").json()["running"]:
        paper.control("DELETE", f"/paths/{running['path_id']}")
