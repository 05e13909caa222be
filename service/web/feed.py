"""`WS /ws/trades`: the live feed of trades, their events and prices for dashboards and scripts.

One `FeedHub` per app. The runtime's listeners call `on_trade` and `on_event` on the event loop after each stored
change; they only encode and enqueue, so a browser can never slow execution. Each socket has a bounded
queue drained by its own writer task; a client that falls `queue_size` messages behind loses its backlog
and gets a fresh snapshot instead (`"reason": "overflow"`).

Where the messages come from:
- `trade`: every stored trade version, as the journal hands it to `on_trade` (the state of the row).
- `event`: the trade's event rows, read after each change from the store with a cursor on the event id
  (`entry_sent`, `entry_fill`, `armed`, `stop_moved`, `exit_fired`, `exit_sent`, `closed`, `unprotected`
  …); reading the rows keeps what diffing trade versions would lose (an order sent changes no field).
- service events (`alert_accepted`, `alert_refused`, `halt` …) as `event` messages without an id.
- `prices`: a 10 Hz sampler reads the guard's latest tick per token for open trades and sends only the
  trades whose LTP moved; per client, prices not yet written are merged, latest wins. The same sampler
  keeps each open trade's basis price in the desk's bounded history (`service/web/prices.py`).
- `summary`: the desk's strip (`service/web/desk.py`), built once a second while anyone listens and
  sent to a client only when it differs from the last it got; it is the whole desk's, so a client
  with a strategy or account filter gets none. The day's figures are read from the
  store only after a trade changed; open P&L comes from the trades and prices held here.

Every price and P&L is integer paise, as everywhere in tickguard. The schema: `docs/feed.md`.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.store import Store, ist_date
from service.trades import OPEN_STATES, TradeRecord
from service.web import desk
from service.web.dashboard import feed_access
from service.web.prices import PriceHistory
from service.web.views import pnl, trade_view
from streams import Tick

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["PRICE_INTERVAL_S", "QUEUE_SIZE", "SUMMARY_INTERVAL_S", "FeedHub", "trades_feed"]

log = logging.getLogger("tickguard.feed")

QUEUE_SIZE = 256
PRICE_INTERVAL_S = 0.1  # at most ~10 price updates a second per trade
SUMMARY_INTERVAL_S = 1.0  # the desk's summary: at most once a second, and only when it changed
RECENT_TRADES = 50  # closed trades in a snapshot beside every open one
OPEN_LIMIT = 1000
SNAPSHOT_EVENTS = 100
_REMEMBERED = 2000  # finished trades kept to route their late events to filtered clients
_PRICES = object()  # queue marker: write the client's merged prices here

_encode = msgspec.json.Encoder(enc_hook=str).encode


def _text(message: dict[str, Any]) -> str:
    return _encode(message).decode()


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    strategy: str | None
    account: str | None
    queue: collections.deque = field(default_factory=collections.deque)
    prices: dict[int, dict[str, Any]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    resync: str | None = "connect"
    snapshots: int = 0
    summary: str | None = None  # the last summary message queued for it

    def wants(self, strategy: str | None, account: str | None) -> bool:
        """Whether a message about `strategy`/`account` passes this client's filters (None: names none)."""
        return (self.strategy is None or strategy is None or strategy == self.strategy) and \
               (self.account is None or account is None or account == self.account)


class FeedHub:
    def __init__(self, runtime: Runtime, *, queue_size: int = QUEUE_SIZE, price_interval_s: float = PRICE_INTERVAL_S,
                 summary_interval_s: float = SUMMARY_INTERVAL_S) -> None:
        self.runtime = runtime
        self.queue_size = queue_size
        self.price_interval_s = price_interval_s
        self.summary_interval_s = summary_interval_s
        self.history = PriceHistory()
        self._figures: desk.DayFigures | None = None  # the day's figures as last read from the store
        self._changes = 0  # trade changes heard; the figures are stale once it moves past `_figures_at`
        self._figures_at = -1
        self.clients: set[Client] = set()
        self._open: dict[int, TradeRecord] = {}
        self._watched: collections.Counter[tuple[str, str]] = collections.Counter()  # basis instruments of _open
        self._sampled: dict[tuple[str, str], Tick] = {}  # the tick each watched instrument's history last took
        self._finished: collections.OrderedDict[int, TradeRecord] = collections.OrderedDict()
        self._sent_ltp: dict[int, int] = {}
        self._cursor = 0  # last event row id fed
        self._cursor_behind = False  # events came while nobody listened: the cursor is read afresh before use
        self._events_due = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.overflows = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    # Life cycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        store = self.runtime.store
        for trade in await store.trades(states=OPEN_STATES, limit=100_000):
            self._hold(trade)
        self._cursor = await store.last_event_id()
        self.runtime.listeners.trade.append(self.on_trade)
        self.runtime.listeners.event.append(self.on_event)
        self._tasks = [asyncio.create_task(self._pump_events(), name="feed-events"),
                       asyncio.create_task(self._sample_prices(), name="feed-prices"),
                       asyncio.create_task(self._sample_history(), name="feed-history"),
                       asyncio.create_task(self._push_summary(), name="feed-summary")]

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.runtime.listeners.trade.remove(self.on_trade)
        with contextlib.suppress(ValueError):
            self.runtime.listeners.event.remove(self.on_event)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # Listeners (on the loop; never await, never block) -----------------------------------------
    def _hold(self, trade: TradeRecord) -> None:
        if self._open.setdefault(trade.id, trade) is trade:
            self._watched[trade.basis_key] += 1
        self._open[trade.id] = trade

    def _release(self, trade_id: int) -> None:
        held = self._open.pop(trade_id, None)
        if held is not None:
            key = held.basis_key
            self._watched[key] -= 1
            if self._watched[key] <= 0:
                del self._watched[key]
                self._sampled.pop(key, None)

    def on_trade(self, trade: TradeRecord) -> None:
        if trade.state in OPEN_STATES:
            self._hold(trade)
        else:
            self._release(trade.id)
            self._sent_ltp.pop(trade.id, None)
            self._finished[trade.id] = trade
            self._finished.move_to_end(trade.id)
            while len(self._finished) > _REMEMBERED:
                self._finished.popitem(last=False)
        self._changes += 1  # realised P&L and exits may have moved
        self._events_due.set()
        if self.clients:
            self._broadcast({"type": "trade", "trade": self.view(trade)}, trade.strategy, trade.account)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if not self.clients:
            return
        alert = data.get("alert") if isinstance(data.get("alert"), dict) else {}
        strategy = data.get("strategy") or alert.get("strategyname")
        account = data.get("account") or alert.get("account")
        message = {"type": "event", "id": None, "kind": kind, "trade_id": None, "at_ms": self.runtime.now_ms(), "data": data}
        self._broadcast(message, strategy, account)

    def _broadcast(self, message: dict[str, Any], strategy: str | None, account: str | None) -> None:
        text: str | None = None
        for client in self.clients:
            if client.wants(strategy, account):
                text = text or _text(message)  # encoded once, shared by every client
                self._offer(client, text)

    def _offer(self, client: Client, item: Any) -> None:
        if client.resync == "overflow":
            return  # dropping everything until the fresh snapshot is written
        if len(client.queue) >= self.queue_size:
            # A backlog this long is stale by the time it would be read: a snapshot replaces it.
            self.overflows += 1
            client.resync = "overflow"
            client.queue.clear()
            client.prices.clear()
        else:
            client.queue.append(item)
        client.wake.set()

    # Views ------------------------------------------------------------------------------------------
    def ltp(self, trade: TradeRecord) -> int | None:
        return self.runtime.guard.last_price(trade.exchange, trade.token)

    def view(self, trade: TradeRecord) -> dict[str, Any]:
        ltp = self.ltp(trade)
        view = trade_view(trade, self.runtime.trader.stops.view(trade), ltp, self.runtime.charging)
        view["pnl"] = pnl(trade, ltp) if trade.state in OPEN_STATES else trade.realised_pnl
        return view

    async def snapshot(self, client: Client, reason: str) -> dict[str, Any]:
        store = self.runtime.store
        await self._catch_up()  # the events from here on go out after the snapshot
        open_trades = await store.trades(states=OPEN_STATES, strategy=client.strategy, account=client.account,
                                         limit=OPEN_LIMIT)
        recent = await store.trades(strategy=client.strategy, account=client.account, limit=RECENT_TRADES)
        trades = {t.id: t for t in recent} | {t.id: t for t in open_trades}
        ids = sorted(trades, reverse=True)
        events = [_event_row(r) for r in await store.recent_events(ids, SNAPSHOT_EVENTS)]
        return {"type": "snapshot", "reason": reason, "at_ms": self.runtime.now_ms(), "halted": self.runtime.halted,
                "halts": await self.runtime.halts.view(), "plugins": self.runtime.plugins.views(),
                "filters": {"strategy": client.strategy, "account": client.account},
                "trades": [self.view(trades[i]) for i in ids], "events": events}

    # Producers ----------------------------------------------------------------------------------
    async def _pump_events(self) -> None:
        while True:
            await self._events_due.wait()
            self._events_due.clear()
            store = self.runtime.store
            try:
                if not self.clients:  # nobody to tell: no read at all (one per trade change, with no browser open)
                    self._cursor_behind = True
                    continue
                await self._catch_up()
                rows = [_event_row(r) for r in await store.events_after(self._cursor, _EVENT_BATCH)]
                unknown = {r["trade_id"] for r in rows} - self._open.keys() - self._finished.keys()
                found = await store.db.read(lambda db: {i: Store.load_trade(db, i) for i in unknown}) if unknown else {}
            except sqlite3.Error:
                log.exception("feed: reading new events failed")
                await asyncio.sleep(1)
                self._events_due.set()
                continue
            for row in rows:
                self._cursor = max(self._cursor, row["id"])
                trade = self._open.get(row["trade_id"]) or self._finished.get(row["trade_id"]) or found.get(row["trade_id"])
                if self.clients and trade is not None:
                    self._broadcast({"type": "event", **row}, trade.strategy, trade.account)
            if len(rows) == _EVENT_BATCH:
                self._events_due.set()

    async def _catch_up(self) -> None:
        """After a time with nobody listening: the cursor to the newest event, so none before it goes out."""
        if self._cursor_behind:
            self._cursor_behind = False
            self._cursor = max(self._cursor, await self.runtime.store.last_event_id())

    async def _sample_prices(self) -> None:
        while True:
            await asyncio.sleep(self.price_interval_s)
            if not self.clients:
                continue  # no reader; a client that joins gets every price in its snapshot
            moved: list[tuple[TradeRecord, dict[str, Any]]] = []
            for trade in self._open.values():
                ltp = self.ltp(trade)
                if ltp is None or self._sent_ltp.get(trade.id) == ltp:
                    continue
                self._sent_ltp[trade.id] = ltp
                moved.append((trade, {"trade_id": trade.id, "ltp": ltp, "pnl": pnl(trade, ltp)}))
            for client in self.clients:
                for trade, price in moved:
                    if not client.wants(trade.strategy, trade.account):
                        continue
                    if not client.prices:  # no price message pending: queue one; later samples merge into it
                        self._offer(client, _PRICES)
                    if client.resync == "overflow":
                        break
                    client.prices[trade.id] = price

    async def _sample_history(self) -> None:
        while True:
            await asyncio.sleep(self.price_interval_s)  # a price held back by the gap is offered again soon
            await self._keep_history()

    async def _keep_history(self) -> None:
        """The price of each instrument open trades watch into the desk's history, once per instrument
        however many trades watch it (kept even when nobody listens). An instrument with no tick since its
        last price was taken costs a look-up; the rest go in slices, the loop served between them (3 000
        instruments in one go held it, and the ticks waiting, for several ms)."""
        last_tick, sample, taken = self.runtime.guard.last_tick, self.history.sample, self._sampled
        now = self.runtime.now_ms()
        watched = list(self._watched)
        for start in range(0, len(watched), HISTORY_SLICE):
            if start:
                await asyncio.sleep(0)
            for key in watched[start:start + HISTORY_SLICE]:
                tick = last_tick(*key)
                if tick is None or taken.get(key) is tick:
                    continue
                if sample(key[0], key[1], now, tick.ltp):
                    taken[key] = tick

    async def summary(self) -> dict[str, Any]:
        """The desk's summary from the trades and prices held here; the day's figures re-read only when stale."""
        day = ist_date(self.runtime.now_ms())
        figures = self._figures
        if figures is None or figures.day != day or self._figures_at != self._changes:
            changes = self._changes  # a trade that changes during the read leaves them stale for the next
            figures = self._figures = await desk.read_figures(self.runtime.store, day, self.runtime.charging)
            self._figures_at = changes
        return desk.summary(self.runtime, figures, self._open.values(), self.ltp)

    async def _push_summary(self) -> None:
        while True:
            await asyncio.sleep(self.summary_interval_s)
            if not any(c.strategy is None and c.account is None for c in self.clients):
                continue
            try:
                text = _text({"type": "summary", **await self.summary()})
            except Exception:
                log.exception("feed: building the summary failed")
                continue
            for client in list(self.clients):
                if client.strategy is None and client.account is None and client.summary != text:  # the whole desk's
                    client.summary = text
                    self._offer(client, text)

    # Sockets ------------------------------------------------------------------------------------
    def join(self, websocket: WebSocket, strategy: str | None, account: str | None) -> Client:
        client = Client(websocket, strategy or None, account or None)
        client.wake.set()
        self.clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    async def write(self, client: Client) -> None:
        """Drain `client`'s queue to its socket until it closes; a resync becomes a fresh snapshot."""
        send = client.websocket.send_text
        while True:
            await client.wake.wait()
            client.wake.clear()
            while True:
                if client.resync is not None:
                    reason, client.resync = client.resync, None
                    client.queue.clear()
                    client.prices.clear()
                    client.summary = None  # the next summary goes out again after the snapshot
                    client.snapshots += 1
                    await send(_text(await self.snapshot(client, reason)))
                    continue
                if not client.queue:
                    break
                item = client.queue.popleft()
                if item is _PRICES:
                    item = _text({"type": "prices", "at_ms": self.runtime.now_ms(), "prices": list(client.prices.values())})
                    client.prices.clear()
                await send(item)


_EVENT_BATCH = 500
# Instruments sampled into the price history per turn of the loop. Slices of 250 took 0.44 ms p50 and up
# to 1.5 ms (20 000 ticks/s over 3 000 instruments) and put ~1 ms on tick->exit p99; 64 keeps each short.
HISTORY_SLICE = 64


def _event_row(row: sqlite3.Row | tuple) -> dict[str, Any]:
    data = json.loads(row[4])
    if row[3] == "created":
        data = {}  # the whole trade: the `trade` message carries it
    return {"id": row[0], "at_ms": row[1], "trade_id": row[2], "kind": row[3], "data": data}


async def trades_feed(websocket: WebSocket) -> None:
    hub: FeedHub = websocket.app.state.feed
    if await feed_access(websocket) is None:
        await websocket.close(code=1008)  # before accept: the handshake is answered 403
        return
    await websocket.accept()
    query = websocket.query_params
    client = hub.join(websocket, query.get("strategy"), query.get("account"))
    writer = asyncio.create_task(hub.write(client), name="feed-writer")
    reader = asyncio.create_task(_read_until_closed(websocket), name="feed-reader")
    try:
        done, _ = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.leave(client)
        for task in (writer, reader):
            task.cancel()
        results = await asyncio.gather(writer, reader, return_exceptions=True)
    error = results[0]
    if writer in done and isinstance(error, Exception) and not isinstance(error, (WebSocketDisconnect, OSError)):
        log.error("feed writer failed", extra={"error": repr(error)})
        with contextlib.suppress(Exception):
            await websocket.close(code=1011)


async def _read_until_closed(websocket: WebSocket) -> None:
    """The feed takes no input; reading is how a closed socket is noticed."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
