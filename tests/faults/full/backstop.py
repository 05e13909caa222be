"""The broker-stop campaign (BROKER_STOP=backup): SIGKILL tickguard while the price crosses its trades'
stops, move the market while it is down, restart, and check the broker's books by tag.

Each round opens 1-3 SBIN trades at ₹800 (1, 3 or 5 shares, stops 10, 12 or 15 points away: the
broker stops sit at different distances), then one of:

- `before`: killed with the price still at ₹800: as the broker shows the entries filled (tickguard
  may not have armed them yet), 0-0.3 s after they armed (the broker stop being placed), or 2-3 s
  after (it must be working); while down the price moves to a level between tickguard's stop and the
  broker's trigger, between the trigger and the limit (the broker stop triggers and fills) or below
  the limit (it triggers and rests), or not at all;
- `gap`: killed 2-3 s after arming; while down the price gaps through both stops, below every limit,
  and then stays there, comes back above the limits before the restart (the resting stops fill), or
  comes back during the restart, racing the recovery's cancels;
- `racing`: the price crosses live (tickguard's stop only, both, or a gap) and tickguard is killed
  0-0.4 s later, while its exit is in flight and its cancel-first withdrawal races the broker's
  stop; half of these rounds hold the broker's `cancelOrder` route first, so the cancel is in
  flight at the kill (some released just before it); while down the price may gap or come back.

In 30 % of the `before` and `racing` rounds the trades trail: the price goes to ₹806 first, the stops
trail to ₹802 and the broker stops are modified after them (every level and move shifted by ₹12), so a
kill can meet a modification in flight. A fifth of the restarts are killed again mid-recovery. At the end of a round every trade must settle
(the lowest open stop is crossed live if needed), and the books are read by tag: the broker-stop
(`tg<id>B<n>`) and exit (`tg<id>X<n>`) fills of a trade never exceed its entry fills, the net
position never goes short, tickguard's `exited` is what the broker filled, and no order is left
working for a settled trade (checked at ₹800, where a forgotten resting stop-limit would fill).
"""
from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.trades import parse_tag
from tests.faults.full.crash import until
from tests.faults.full.procs import BrokerView, Paper, Tickguard
from tests.faults.full.tally import Tally

ENTRY = 800
SETTLED = {"CLOSED", "EXPIRED", "REJECTED"}
FIRED = {"EXITING", "CLOSED", "UNPROTECTED"}
LIVE = ("open", "open pending", "trigger pending", "modified")
GRACE_MS = 2_000  # a trade armed this long before the kill must have its broker stop at the broker
DOWN_MOVES = (None, 789.5, 788.0, 787.0, 785.0, 783.0, 780.0)
LIVE_CROSSES = (789.5, 787.0, 780.0)
TRAIL_TO, TRAILED, TRAIL_SHIFT = 806.0, 80_200, 12.0  # a trailing round: the price to, the stop it trails to, the moves' shift
UNCOVERED = "stops crossed while down, armed >= 2 s before the kill, no broker stop"


@dataclass
class Guarded:
    """A trade of the round as seen just before the kill."""

    id: int
    stop: int | None = None  # paise
    armed_ms: int | None = None


KINDS = ("before", "before", "gap", "racing", "racing")


class Campaign:
    def __init__(self, workdir: Path, tally: Tally, seed: int, kinds: tuple[str, ...] = KINDS,
                 fire_within_s: float = 1.0) -> None:
        self.tally = tally
        self.rng = random.Random(seed)
        self.kinds = kinds  # drawn from at random, each round (a stream of their own: the same seed, the same kinds)
        self.kind_rng = random.Random(seed)
        self.fire_within_s = fire_within_s  # a stop crossed while down fires this soon after the restart
        self.paper = Paper(workdir, PAPER_FILL_LATENCY_MS="150").start()
        self.broker = BrokerView(self.paper)
        self.tg = Tickguard(workdir, self.paper.url, EXIT_CHASE_MS="1500", STREAM_STALL_S="30",
                            BROKER_STOP="backup", BROKER_STOP_MIN_S="1")
        self.paper.price(ENTRY)
        self.tg.start()
        self.summary = ""
        self.ltp = float(ENTRY)
        self.shift = 0.0  # a trailing round's levels and moves sit this many rupees higher
        self.crossed: list[Guarded] = []
        self.restarted_at = time.monotonic()
        self.alert_stop: dict[int, int] = {}  # paise, as the alert set it (before tickguard armed the trade)

    def close(self) -> None:
        self.paper.control("DELETE", "/holds")
        self.broker.http.close()
        self.tg.stop()
        self.paper.stop()

    # -- views ---------------------------------------------------------------------------------------
    def price(self, ltp: float) -> None:
        self.ltp = ltp
        self.paper.price(ltp)

    def view(self, trade_id: int) -> dict:
        return self.tg.trade(trade_id)

    def by_trade(self, orders: list[dict]) -> dict[int, dict[str, list[dict]]]:
        """The broker's orders of each trade, by role letter (E, X, B)."""
        found: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for order in orders:
            parsed = parse_tag(order.get("ordertag", ""))
            if parsed is not None:
                found[parsed[0]][{"entry": "E", "exit": "X", "broker_stop": "B"}[parsed[1]]].append(order)
        return found

    @staticmethod
    def filled(orders: list[dict]) -> int:
        return sum(int(o.get("filledshares") or 0) for o in orders)

    # -- one round -----------------------------------------------------------------------------------
    def round(self, n: int) -> None:
        kind = self.kind_rng.choice(self.kinds)
        self.paper.control("DELETE", "/holds")
        self.price(ENTRY)
        self.crossed = []
        trail = kind != "gap" and self.rng.random() < 0.3
        ids = self.open_trades(n, trail)
        if not ids:
            self.summary = "no trade opened"
            return
        self.shift = 0.0
        if trail:  # the stops trail to ₹802 and the broker stops follow (or are being moved at the kill)
            self.armed(ids)
            self.price(TRAIL_TO)
            self.shift = TRAIL_SHIFT
            until(lambda: all(self.view(i)["trade"]["stop"] == TRAILED for i in ids), 5)
            kind += "+trail"
        if kind.startswith("racing"):
            self.race(ids)
        else:
            self.quiet(ids, gap=kind == "gap")
        self.settle(n, kind, ids)

    def open_trades(self, n: int, trail: bool) -> list[int]:
        ids = []
        for i in range(self.rng.choice((1, 2, 2, 3))):
            body = {"symbolname": "SBIN", "signal": "buy", "price": ENTRY, "type": "equity", "strategyname": f"bs{n}x{i}",
                    "id": f"bs-{n}-{i}", "quantity": self.rng.choice((1, 3, 5)),
                    "stoploss": {"type": "points", "value": self.rng.choice((10, 12, 15))}}
            if trail:
                body["trail"] = {"type": "points", "value": 4, "activation": {"type": "points", "value": 2}}
            try:
                reply = self.tg.http.post("/opentrade", json=body, timeout=10)
            except httpx.HTTPError as exc:
                self.tally.bad("alerts lost", f"round {n}: {exc!r}")
                continue
            if reply.status_code >= 500:
                self.tally.bad("5xx seen", f"round {n}: {reply.status_code} {reply.text[:200]}")
            if reply.status_code != 202:
                self.tally.bad("alerts lost", f"round {n}: {reply.status_code} {reply.text[:200]}")
                continue
            self.tally.add("alerts acknowledged")
            for trade_id in reply.json().get("trades") or []:
                ids.append(trade_id)
                self.alert_stop[trade_id] = (ENTRY - body["stoploss"]["value"]) * 100
        return ids

    def armed(self, ids: list[int]) -> None:
        for trade_id in ids:
            if not until(lambda: self.view(trade_id)["trade"]["stop"] is not None, 10):
                print(f"  trade {trade_id} not armed in 10 s: {self.view(trade_id)['trade']['state']}", flush=True)

    def entered(self, ids: list[int]) -> bool:
        """The broker shows every entry filled (tickguard may not know yet)."""
        books = self.by_trade(self.broker.orders())
        return all(any(o["status"] == "complete" for o in books[i]["E"]) for i in ids)

    def stops_placed(self, ids: list[int]) -> bool:
        books = self.by_trade(self.broker.orders())
        return all(any(o["status"] == "trigger pending" for o in books[i]["B"]) for i in ids)

    def snapshot(self, ids: list[int]) -> list[Guarded]:
        seen = []
        for trade_id in ids:
            view = self.view(trade_id)
            armed = [e["at_ms"] for e in view.get("events", []) if e["kind"] == "armed"]
            seen.append(Guarded(trade_id, view["trade"]["stop"] or self.alert_stop[trade_id], min(armed) if armed else None))
        return seen

    def kill(self) -> int:
        at_ms = int(time.time() * 1000)
        self.tg.kill()
        for name in ("SIGKILLs", "faults injected", "backstop SIGKILLs"):
            self.tally.add(name)
        return at_ms

    def quiet(self, ids: list[int], gap: bool) -> None:
        """Killed with the price still; the market moves while tickguard is down."""
        when = "settled" if gap else self.rng.choice(("settled", "settled", "entered", "armed"))
        if when == "settled":  # the broker stop must be working by the kill
            self.armed(ids)
            until(lambda: self.stops_placed(ids), 10)
            armed = [g.armed_ms for g in self.snapshot(ids) if g.armed_ms]
            wait_ms = (max(armed) if armed else 0) + GRACE_MS + self.rng.uniform(0, 1000) - time.time() * 1000
            time.sleep(max(0.0, wait_ms / 1000))
        elif when == "armed":  # the broker stop on its way, or just placed
            self.armed(ids)
            time.sleep(self.rng.uniform(0, 0.3))
        else:  # the entries filled at the broker, tickguard arming them (or not yet told)
            until(lambda: self.entered(ids), 10)
            time.sleep(self.rng.choice((0.0, self.rng.uniform(0, 0.2))))
        guarded = self.snapshot(ids)
        kill_ms = self.kill()
        time.sleep(self.rng.uniform(0, 0.3))
        target = 780.0 if gap else self.rng.choice(DOWN_MOVES)
        if target is not None:
            self.cross_while_down(guarded, kill_ms, target + self.shift)
        come_back = self.rng.choice(("stay", "before", "during")) if gap else "stay"
        if come_back == "before":
            self.price(786.0 + self.shift)
        self.watch_net("while down")
        timer = None
        if come_back == "during":
            timer = threading.Timer(self.rng.uniform(0, 1.5), self.price, args=(786.0 + self.shift,))
            timer.start()
        self.restart()
        if timer is not None:
            timer.join()

    def cross_while_down(self, guarded: list[Guarded], kill_ms: int, target: float) -> None:
        books = self.by_trade(self.broker.orders())
        for trade in guarded:
            if trade.stop is None or round(target * 100) > trade.stop:
                continue
            orders = books[trade.id]
            position = self.filled(orders["E"]) - self.filled(orders["X"]) - self.filled(orders["B"])
            covered = sum(int(o["quantity"]) - int(o.get("filledshares") or 0)
                          for o in orders["B"] if o["status"] in LIVE)
            self.crossed.append(trade)
            self.tally.add("stops crossed while down")
            if position <= 0 or covered >= position:
                continue
            detail = (f"trade {trade.id} ({position} open, {covered} covered at the broker), armed "
                      f"{(kill_ms - trade.armed_ms) / 1000 if trade.armed_ms else '?'} s before the kill; "
                      f"B orders {[(o['ordertag'], o['status']) for o in orders['B']]}")
            if trade.armed_ms is not None and kill_ms - trade.armed_ms >= GRACE_MS:
                self.tally.bad(UNCOVERED, detail)
            else:
                self.tally.add("stops crossed while down, armed < 2 s before the kill, no broker stop yet")
        self.price(target)
        time.sleep(0.05)
        books = self.by_trade(self.broker.orders())
        for trade in guarded:
            if any(int(o.get("filledshares") or 0) for o in books[trade.id]["B"]):
                self.tally.add("broker stops filled while down")

    def race(self, ids: list[int]) -> None:
        """The price crosses live; killed while the exit and the withdrawal of the broker stop race."""
        self.armed(ids)
        until(lambda: self.stops_placed(ids), 10)
        held = self.rng.random() < 0.5
        if held:
            self.paper.control("POST", "/holds", json={"route": "cancelOrder"})
            self.tally.add("faults injected")
        self.price(self.rng.choice(LIVE_CROSSES) + self.shift)
        time.sleep(self.rng.choice((0.0, self.rng.uniform(0, 0.05), self.rng.uniform(0, 0.4))))
        if held and self.rng.random() < 0.3:
            self.paper.control("DELETE", "/holds")
            time.sleep(self.rng.uniform(0, 0.1))
        if held and self.paper.control("GET", "/state").json()["holds"].get("cancelOrder"):
            self.tally.add("kills with a broker-stop cancel held in flight")
        self.kill()
        self.paper.control("DELETE", "/holds")  # the dead process's held cancels are dropped
        time.sleep(self.rng.uniform(0, 0.3))
        move = self.rng.choice((None, None, 780.0, 786.0, float(ENTRY)))
        if move is not None:
            self.price(move + self.shift)
        self.watch_net("while down")
        self.restart()

    def restart(self) -> None:
        self.tg.start()
        if self.rng.random() < 0.2:  # killed again in the middle of its recovery
            time.sleep(self.rng.uniform(0, 0.3))
            self.kill()
            self.tg.start()
        self.restarted_at = time.monotonic()

    # -- the end of a round ----------------------------------------------------------------------------
    def settle(self, n: int, kind: str, ids: list[int]) -> None:
        crossed = self.crossed  # tickguard's stop crossed while it was down: fired (or closed) soon after the restart
        if crossed and not until(lambda: all(self.view(t.id)["trade"]["state"] in FIRED for t in crossed),
                                 max(0.0, self.restarted_at + self.fire_within_s - time.monotonic())):
            late = [(t.id, self.view(t.id)["trade"]["state"]) for t in crossed]
            self.tally.bad("stops missed", f"backstop round {n} ({kind}): crossed while down, {late} "
                                           f"{self.fire_within_s:g} s after restart")
        until(lambda: all(self.view(i)["trade"]["state"] != "PENDING_ENTRY" for i in ids), 5)
        stops = [v["stop"] for i in ids if (v := self.view(i)["trade"])["state"] == "OPEN" and v["stop"]]
        if stops and self.ltp * 100 > min(stops) - 100:
            self.price(min(stops) / 100 - 1)  # finish what is still open: cross the lowest stop live
        if not until(lambda: all(self.view(i)["trade"]["state"] in SETTLED for i in ids), 20, every=0.1):
            self.tally.bad("trades not settled", f"backstop round {n} ({kind}): {self.brief(ids)}")
        self.check(n, kind, ids)
        self.summary = f"{kind}, crossed while down {len(self.crossed)}, trades {self.brief(ids)}"

    def brief(self, ids: list[int]) -> list:
        return [(t["id"], t["state"], t["reason"], t["filled"], t["exited"]) for t in (self.view(i)["trade"] for i in ids)]

    def check(self, n: int, kind: str, ids: list[int]) -> None:
        self.price(ENTRY)  # where the next round starts: a forgotten resting stop-limit or exit fills here
        time.sleep(0.3)
        orders = self.broker.orders()
        books = self.by_trade(orders)
        for trade_id in ids:
            trade = self.view(trade_id)["trade"]
            mine = books[trade_id]
            entered, stopped, exited = (self.filled(mine[k]) for k in "EBX")
            if stopped + exited > entered:
                self.tally.bad("double exits", f"backstop round {n} ({kind}): trade {trade_id} entered {entered}, "
                                               f"broker stop filled {stopped}, exits filled {exited}")
            if trade["state"] == "CLOSED" and not (trade["exited"] == trade["filled"] == entered == stopped + exited):
                self.tally.bad("trades not settled", f"backstop round {n} ({kind}): trade {trade_id} CLOSED with filled "
                               f"{trade['filled']} exited {trade['exited']}; the broker: entered {entered}, "
                               f"broker stop {stopped}, exits {exited}")
            if trade["state"] == "CLOSED" and trade["reason"] == "BROKER_STOP":
                self.tally.add("trades closed BROKER_STOP")
            left = [o for k in "EBX" for o in mine[k] if o["status"] in LIVE]
            if trade["state"] in SETTLED and left:
                self.tally.bad("broker orders left live for settled trades", f"backstop round {n} ({kind}): trade "
                               f"{trade_id} {trade['state']}: {[(o['ordertag'], o['status']) for o in left]}", len(left))
        self.watch_net(f"after backstop round {n} ({kind})")
        net = self.broker.net()
        if net > 0:
            self.tally.bad("trades not settled", f"backstop round {n} ({kind}): SBIN net {net} left open at the exchange")
        if net:
            self.flatten(net)
        for order in (o for o in orders if o["status"] in LIVE):  # leave the next round a clean book
            self.tally.findings.append(f"backstop round {n} ({kind}): order {order['ordertag']} still working, cancelled")
            self.broker.http.post("/order/v1/cancelOrder", json={"variety": order.get("variety") or "NORMAL",
                                                                 "orderid": order["orderid"]})

    def watch_net(self, when: str) -> None:
        net = self.broker.net()
        if net < 0:
            orders = [(o["ordertag"], o["transactiontype"], o["status"], o.get("filledshares")) for o in self.broker.orders()[-6:]]
            self.tally.bad("double exits", f"{when}: the position flipped, SBIN net {net}; last orders {orders}")

    def flatten(self, net: int) -> None:
        """Leave the next round a flat book (what the trader would do by hand)."""
        body = {"variety": "NORMAL", "tradingsymbol": "SBIN-EQ", "symboltoken": "3045", "transactiontype": "SELL" if net > 0 else "BUY",
                "exchange": "NSE", "ordertype": "MARKET", "producttype": "INTRADAY", "duration": "DAY",
                "quantity": str(abs(net)), "ordertag": "manualflat"}
        self.broker.http.post("/order/v1/placeOrder", json=body)


def run(workdir: Path, tally: Tally, rounds: int = 30, seed: int = 11, kinds: tuple[str, ...] = KINDS,
        fire_within_s: float = 1.0) -> None:
    campaign = Campaign(workdir, tally, seed, kinds, fire_within_s)
    started = time.monotonic()
    try:
        for n in range(1, rounds + 1):
            campaign.round(n)
            tally.add("backstop rounds")
            print(f"backstop round {n}/{rounds}: {tally.figures['backstop SIGKILLs']} kills, "
                  f"{time.monotonic() - started:.0f} s; {campaign.summary}", flush=True)
    finally:
        campaign.close()
