"""Every trade's life in the log: a line per event, parsed back from the JSON the service writes."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.logs import JsonFormatter, Redactor
from service.store import Store
from service.trade_log import TradeLog
from service.trades import TradeRecord, TradeState
from tests.support.waiting import wait_for

LIFE = ["created", "entry_sent", "entry_fill", "armed", "stop_moved", "stop_moved", "exit_fired", "exit_sent",
        "exit_fill", "closed"]


@pytest.fixture
def trade_lines() -> Iterator[io.StringIO]:
    """`tickguard.trades` as JSON lines, whatever the root logger's level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor()))
    logger = logging.getLogger("tickguard.trades")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_trailed_trade_is_one_line_per_step_from_entry_to_closed(service_factory, trade_lines):
    service = service_factory()
    service.price(800)
    reply = service.alert(price=800, quantity=2, stoploss={"type": "points", "value": 10},
                          trail={"type": "points", "value": 4, "activation": {"type": "points", "value": 2}})
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["stop"] == 79000, what="armed")
    service.price(806)
    service.wait_trade(trade_id, lambda t: t["stop"] == 80200, what="trail to 802")
    service.price(810)
    service.wait_trade(trade_id, lambda t: t["stop"] == 80600, what="trail to 806")
    service.price(805.5)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="trailed stop exit")
    wait_for(lambda: any(line["event"] == "closed" for line in parsed(trade_lines)), "the closed line")

    lines = [line for line in parsed(trade_lines) if line["trade_id"] == trade_id]
    assert [line["event"] for line in lines] == LIFE
    assert all(line["logger"] == "tickguard.trades" and line["symbol"] == "SBIN-EQ" and line["side"] == "LONG"
               and line["exchange"] == "NSE" for line in lines)
    by_event = {line["event"]: line for line in lines}
    assert (by_event["entry_sent"]["quantity"], by_event["entry_fill"]["quantity"]) == (2, 2)
    assert by_event["entry_fill"]["price"] == view["trade"]["entry_price"] / 100
    assert by_event["armed"]["stop"] == 790.0
    assert [line["price"] for line in lines if line["event"] == "stop_moved"] == [802.0, 806.0]
    fired = by_event["exit_fired"]
    assert (fired["reason"], fired["price"], fired["quantity"]) == ("TRAIL", 806.0, 2)
    assert by_event["exit_fill"]["price"] == view["trade"]["exit_price"] / 100
    closed = by_event["closed"]
    assert closed["pnl"] == view["trade"]["realised_pnl"] / 100 and closed["reason"] == "TRAIL"
    assert f"trade {trade_id} closed: 2 SBIN-EQ out at" in closed["msg"] and "P&L +" in closed["msg"]


def test_a_trend_records_a_stop_move_per_new_high_but_logs_them_folded(service_factory, trade_lines):
    service = service_factory()
    service.app.state.runtime.trade_log.stop_line_s = 3600  # every move after the first is folded
    service.price(800)
    reply = service.alert(price=800, quantity=1, stoploss={"type": "points", "value": 10},
                          trail={"type": "points", "value": 4})
    (trade_id,) = reply.json()["trades"]
    service.wait_trade(trade_id, lambda t: t["stop"] is not None, what="armed")
    for step in range(1, 31):  # thirty new highs, a rupee apart
        service.price(800 + step)
    service.wait_trade(trade_id, lambda t: t["stop"] == 82600, what="trail to 826")
    service.price(820)
    view = service.wait_trade(trade_id, lambda t: t["state"] == "CLOSED", what="trailed stop exit")
    wait_for(lambda: any(line["event"] == "closed" for line in parsed(trade_lines)), "the closed line")

    recorded = [e for e in view["events"] if e["kind"] == "stop_moved"]
    logged = [line for line in parsed(trade_lines) if line["event"] == "stop_moved"]
    assert len(recorded) == 30  # the engine records one per new best price
    assert len(logged) == 2  # the first at once, the other 29 folded into the line before the exit
    assert (logged[0]["price"], logged[0]["moves"]) == (797.0, 1)
    assert (logged[1]["price"], logged[1]["moves"]) == (826.0, 29)


def _trade(trade_id: int = 1) -> TradeRecord:
    return TradeRecord(id=trade_id, alert_id=None, account="A", strategy="s", exchange="NSE", token="3045",
                       tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", state=TradeState.OPEN, quantity=1,
                       filled=1)


def test_stop_moves_are_at_most_one_line_per_interval_per_trade(trade_lines):
    now = [100.0]
    trade_log = TradeLog(store=None, stop_line_s=5, clock=lambda: now[0])  # type: ignore[arg-type]
    for stop in range(79000, 79100, 5):  # twenty moves in one instant
        trade_log.event(_trade(), "stop_moved", {"stop": stop})
    trade_log.event(_trade(2), "stop_moved", {"stop": 10000})  # another trade has its own interval
    assert [(line["trade_id"], line["moves"]) for line in parsed(trade_lines)] == [(1, 1), (2, 1)]
    now[0] += 5
    trade_log.event(_trade(), "stop_moved", {"stop": 79100})
    assert [(line["trade_id"], line["price"], line["moves"]) for line in parsed(trade_lines)][2:] == [(1, 791.0, 20)]
    trade_log.event(_trade(), "stop_moved", {"stop": 79105})
    trade_log.event(_trade(), "exit_fired", {"reason": "TRAIL", "level": 79105})
    assert [(line["event"], line.get("moves")) for line in parsed(trade_lines)][3:] == [("stop_moved", 1),
                                                                                         ("exit_fired", None)]


def test_a_new_trade_reaches_the_listeners_as_stored_and_the_log_does_not_read_it_back(service_factory, trade_lines):
    """The alert's trades are handed to the listeners (the feed, the trade log) once committed, so the
    trade log's `created` line needs no read of the store."""
    service = service_factory()
    runtime = service.app.state.runtime
    heard: list[TradeRecord] = []
    runtime.listeners.trade.append(heard.append)
    reads: list[int] = []
    real_trade = runtime.store.trade

    async def counted(trade_id: int, *args, **kwargs):
        reads.append(trade_id)
        return await real_trade(trade_id, *args, **kwargs)

    runtime.store.trade = counted
    service.price(800)
    (trade_id,) = service.alert(price=800, quantity=2).json()["trades"]
    wait_for(lambda: any(line["event"] == "created" and line["trade_id"] == trade_id for line in parsed(trade_lines)),
             "the created line")
    first = next(trade for trade in heard if trade.id == trade_id)
    # the trade as the alert stored it, before its entry was sized or sent
    assert (first.state, first.version, first.quantity) == (TradeState.PENDING_ENTRY, 0, 0)
    assert trade_id not in reads


async def test_a_burst_of_events_of_trades_not_at_hand_costs_one_read_per_batch(monkeypatch):
    """Events of trades the log never heard of (armed in bulk at start, say) are described from their stored
    rows, read together for the batch, not one read an event; a held trade's own copy serves, and a closed
    one's stored row."""
    def trade(trade_id: int, state: TradeState) -> TradeRecord:
        return TradeRecord(id=trade_id, alert_id=None, account="A1", strategy="s", exchange="NSE", token="3045",
                           tradingsymbol="SBIN-EQ", side="LONG", product="INTRADAY", state=state)

    stored = {i: trade(i, TradeState.OPEN) for i in range(1, 6)} | {9: trade(9, TradeState.CLOSED)}
    rows = [(n, 0, trade_id, kind, "{}") for n, (trade_id, kind) in enumerate(
        [(1, "created"), (2, "created"), (1, "armed"), (3, "armed"), (9, "armed"), (9, "closed")], start=1)]

    class Db:
        reads: list[set[int]] = []

        async def read(self, work):
            asked: set[int] = set()
            monkeypatch.setattr(Store, "load_trade", lambda db, i: asked.add(i) or stored.get(i))
            result = work(self)
            self.reads.append(asked)
            return result

    class FakeStore:
        db = Db()

        async def events_after(self, cursor: int, limit: int):
            return [row for row in rows if row[0] > cursor][:limit]

    log = TradeLog(FakeStore())  # type: ignore[arg-type]
    log.on_trade(trade(9, TradeState.OPEN))  # held, but its closing figures are the stored row's
    seen: list[tuple[int, str, TradeState]] = []
    monkeypatch.setattr(log, "event", lambda t, kind, data: seen.append((t.id, kind, t.state)))
    await log._drain()
    assert Db.reads == [{1, 2, 3, 9}]
    assert seen == [(1, "created", TradeState.OPEN), (2, "created", TradeState.OPEN), (1, "armed", TradeState.OPEN),
                    (3, "armed", TradeState.OPEN), (9, "armed", TradeState.OPEN), (9, "closed", TradeState.CLOSED)]
