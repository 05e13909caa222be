"""The crash campaign: SIGKILL tickguard at random points of a trade's life, move the market while it
is down, restart, and check the invariants against the paper exchange's order book and positions.

Kill points (each followed by a random delay): `alert` (the POST in flight), `ack` (just after the
202), `entry` (the entry at the exchange), `armed` (the stop armed), `exit_sent` (the exit at the
exchange), `exit_filled` (the exit filled at the exchange, maybe not yet confirmed). Some rounds kill
again during the restart's recovery.
"""
from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path

import httpx

from tests.faults.full.procs import BrokerView, Paper, Tickguard
from tests.faults.full.tally import Tally

POINTS = ("alert", "ack", "entry", "armed", "exit_sent", "exit_filled")
SETTLED = {"CLOSED", "EXPIRED", "REJECTED"}
FIRED = {"EXITING", "CLOSED", "UNPROTECTED"}
QTY, ENTRY, STOP, THROUGH = 5, 800, 790, 789
TAG = re.compile(r"^tg([0-9a-z]+?)([EX])\d+$")


def until(predicate, timeout: float, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


class Campaign:
    def __init__(self, workdir: Path, tally: Tally, rounds: int, seed: int) -> None:
        self.tally = tally
        self.rounds = rounds
        self.rng = random.Random(seed)
        self.paper = Paper(workdir, PAPER_FILL_LATENCY_MS="150").start()
        self.broker = BrokerView(self.paper)
        self.tg = Tickguard(workdir, self.paper.url, EXIT_CHASE_MS="1500", STREAM_STALL_S="30")
        self.paper.price(ENTRY)
        self.tg.start()

    def close(self) -> None:
        self.tg.stop()
        self.paper.stop()

    # -- views ---------------------------------------------------------------------------------------
    def trades(self, strategy: str) -> list[dict]:
        return self.tg.get(f"/trades?strategy={strategy}&limit=1000")["trades"]

    def tagged(self, trade_id: int, kind: str) -> list[dict]:
        return [o for o in self.broker.orders() if (m := TAG.match(o.get("ordertag", "")))
                and int(m[1], 36) == trade_id and m[2] == kind]

    def watch_net(self) -> None:
        net = self.broker.net()
        if net < 0:
            self.tally.bad("positions flipped", f"SBIN net {net} at the exchange")

    # -- one round -----------------------------------------------------------------------------------
    def alert_body(self, n: int) -> dict:
        return {"symbolname": "SBIN", "signal": "buy", "price": ENTRY, "type": "equity", "strategyname": f"crash{n}",
                "id": f"crash-{n}", "quantity": QTY, "stoploss": {"type": "points", "value": ENTRY - STOP}}

    def post(self, body: dict, replies: list) -> None:
        try:
            replies.append(self.tg.http.post("/opentrade", json=body, timeout=10))
        except httpx.HTTPError as exc:
            replies.append(exc)

    def kill(self, why: str) -> None:
        self.tg.kill()
        self.tally.add("SIGKILLs")
        self.tally.add("faults injected")

    def round(self, n: int) -> None:
        point = self.rng.choice(POINTS)
        delay = self.rng.choice((0, 0, self.rng.uniform(0, 0.05), self.rng.uniform(0, 0.3)))
        body = self.alert_body(n)
        replies: list = []
        self._acked, self._crossed = False, False
        self.paper.price(ENTRY)
        if point == "alert":
            sender = threading.Thread(target=self.post, args=(body, replies))
            sender.start()
            time.sleep(self.rng.uniform(0, 0.03))
            self.kill(point)
            sender.join()
        else:
            self.post(body, replies)
            trade_ids = self.acknowledged(replies, n)
            tid = trade_ids[0] if trade_ids else None
            if tid is None:
                self.tally.bad("alerts lost", f"round {n}: the alert was not acknowledged: {replies}")
                self.summary = "not acknowledged"
                return
            if point in ("exit_sent", "exit_filled"):
                until(lambda: self.tg.trade(tid)["trade"]["stop"] is not None, 10)
                if self.rng.random() < 0.5:
                    self.paper.control("POST", "/faults", json={"kind": "open", "count": 1})
                    self.tally.add("faults injected")
                self.paper.price(THROUGH)
            reached = {
                "ack": lambda: True,
                "entry": lambda: self.tagged(tid, "E"),
                "armed": lambda: self.tg.trade(tid)["trade"]["stop"] is not None,
                "exit_sent": lambda: self.tagged(tid, "X"),
                "exit_filled": lambda: self.broker.net() == 0 and self.tagged(tid, "X"),
            }[point]
            if not until(reached, 15):
                print(f"  round {n}: {point} not reached; killing anyway", flush=True)
            time.sleep(delay)
            self.kill(point)
        self.while_down(n)
        self.restart(n)
        if point == "alert":
            self.post(body, replies)  # the sender's retry, same id
            self.acknowledged(replies, n)
        self.settle(n, point)

    def acknowledged(self, replies: list, n: int) -> list[int]:
        ids: list[int] = []
        for reply in replies:
            if isinstance(reply, httpx.Response):
                if reply.status_code >= 500:
                    self.tally.bad("5xx seen", f"round {n}: {reply.status_code} {reply.text[:200]}")
                if reply.status_code == 202:
                    self.tally.add("alerts acknowledged")
                if reply.status_code in (200, 202):
                    self._acked = True
                    ids.extend(reply.json().get("trades") or [])
        return ids

    def while_down(self, n: int) -> None:
        """Let the entry fill or not, then sometimes move the price through the stop (and back)."""
        time.sleep(self.rng.uniform(0, 0.4))
        until(lambda: not [o for o in self.broker.orders() if o["status"] in ("open", "open pending", "trigger pending")
                           and o.get("transactiontype") == "BUY"], 2)
        self.watch_net()
        if self.rng.random() < 0.5 and self.broker.net() == QTY:
            self._crossed = True
            self.paper.price(THROUGH - self.rng.randint(0, 5))
            if self.rng.random() < 0.5:
                self.paper.price(ENTRY + self.rng.randint(0, 3))
        self.watch_net()

    def restart(self, n: int) -> None:
        self.tg.start()
        if self.rng.random() < 0.2:  # killed again in the middle of its recovery
            time.sleep(self.rng.uniform(0, 0.3))
            self.kill("recovery")
            self.tg.start()
        self.restarted_at = time.monotonic()

    def settle(self, n: int, point: str) -> None:
        strategy = f"crash{n}"
        crossed_while_down = self.last_low_below_stop()
        if crossed_while_down:
            # The stop was crossed while tickguard was down: every filled trade must fire from the candles.
            def fired() -> bool:
                return all(t["state"] in FIRED | {"EXPIRED", "REJECTED"} or not t["filled"] for t in self.trades(strategy))
            self.tally.add("stop crossings checked")
            if not until(fired, max(0.0, self.restarted_at + 1.0 - time.monotonic())):
                self.tally.bad("stops missed", f"round {n} ({point}): crossed while down, still {self.brief(strategy)} "
                                               f"1 s after restart")
        # Finish what is open: once the entries are done, cross the lowest stop live.
        until(lambda: all(t["state"] != "PENDING_ENTRY" for t in self.trades(strategy)), 5)
        stops = [t["stop"] for t in self.trades(strategy) if t["stop"]]
        self.paper.price(min(stops) / 100 - 1 if stops else THROUGH)
        if not until(lambda: all(t["state"] in SETTLED for t in self.trades(strategy)), 20, every=0.1):
            self.tally.bad("trades not settled", f"round {n} ({point}): {self.brief(strategy)}")
        self.check(n, point, strategy)
        self.summary = f"{point}, crossed while down: {crossed_while_down}, trades {self.brief(strategy)}"
        self.paper.price(ENTRY)

    def last_low_below_stop(self) -> bool:
        return self._crossed

    def brief(self, strategy: str) -> list:
        return [(t["id"], t["state"], t["filled"], t["exited"]) for t in self.trades(strategy)]

    def check(self, n: int, point: str, strategy: str) -> None:
        trades = self.trades(strategy)
        if self._acked and not trades:
            self.tally.bad("alerts lost", f"round {n} ({point}): alert acknowledged, no trade")
        if len(trades) > 1:
            self.tally.bad("duplicate orders", f"round {n} ({point}): {len(trades)} trade sets for one alert id", len(trades) - 1)
        for trade in trades:
            for kind in "EX":
                orders = self.tagged(trade["id"], kind)
                if len(orders) > 1:
                    self.tally.bad("duplicate orders", f"round {n} ({point}): trade {trade['id']} has {len(orders)} "
                                   f"{kind} orders {[(o['ordertag'], o['status']) for o in orders]}", len(orders) - 1)
            if trade["state"] == "CLOSED" and trade["exited"] != trade["filled"]:
                self.tally.bad("trades not settled", f"round {n}: CLOSED with filled {trade['filled']} exited {trade['exited']}")
        self.paper.price(ENTRY)  # back where the next round starts: a forgotten resting exit fills here
        time.sleep(0.3)
        working = [o for o in self.broker.orders() if o["status"] in ("open", "open pending", "trigger pending", "modified")]
        net = self.broker.net()
        if net < 0:
            self.tally.bad("positions flipped", f"round {n} ({point}): SBIN net {net} after the round; "
                                                f"orders {[(o['ordertag'], o['transactiontype'], o['status']) for o in self.broker.orders()[-4:]]}")
        elif net > 0:
            self.tally.bad("trades not settled", f"round {n} ({point}): SBIN net {net} left open at the exchange; {self.brief(strategy)}")
            self.flatten(net)
        elif net < 0:
            self.flatten(net)
        for order in working:  # leave the next round a clean book
            self.tally.findings.append(f"round {n} ({point}): order {order['ordertag']} still working after the round, cancelled")
            self.broker.http.post("/order/v1/cancelOrder", json={"variety": "NORMAL", "orderid": order["orderid"]})
    def flatten(self, net: int) -> None:
        """Leave the next round a flat book (what the trader would do by hand)."""
        body = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "transactiontype": "SELL" if net > 0 else "BUY",
                "exchange": "NSE", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY",
                "quantity": str(abs(net)), "ordertag": "manualflat"}
        self.broker.http.post("/order/v1/placeOrder", json=body)


def run(workdir: Path, tally: Tally, rounds: int = 55, seed: int = 11) -> None:
    campaign = Campaign(workdir, tally, rounds, seed)
    started = time.monotonic()
    try:
        for n in range(1, rounds + 1):
            campaign.round(n)
            print(f"crash round {n}/{rounds}: {tally.figures['SIGKILLs']} kills, {time.monotonic() - started:.0f} s; {campaign.summary}", flush=True)
    finally:
        campaign.close()
