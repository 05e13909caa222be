"""The paper exchange's composition: universe, prices, fill engine, GTT rules, sessions, store, simulator."""
from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from paper.auth import PaperLogin, Sessions
from paper.faults import RouteHolds
from paper.gtt import GttBook
from paper.charge_rates import ChargeRates
from paper.instruments import Universe, build_universe
from paper.orders import OrderEngine, OrderEvent
from paper.outside import OutsidePrices
from paper.paths import PathPlayer
from paper.prices import PriceBook
from paper.quotes import Quote
from paper.stamps import Stamps
from paper.static_ips import StaticIps
from paper.store import PaperStore

__all__ = ["PaperConfig", "PaperExchange"]

IST = ZoneInfo("Asia/Kolkata")
QuoteListener = Callable[[list[Quote]], None]
OrderListener = Callable[[OrderEvent], None]


@dataclass(frozen=True)
class PaperConfig:
    logins: tuple[PaperLogin, ...]
    db_path: str | Path = ".tickguard/paper.db"
    seed: int = 7
    opening_cash_paise: int = 100_000_000  # ₹10,00,000
    tick_ms: int = 250  # simulator step; 0 = prices move only through the control API
    fill_latency_ms: int = 0  # 0 = risk checks and fills happen before placeOrder answers
    session_ttl_s: int = 28 * 3600
    rate_limits: bool = False
    control_api: bool = True  # the /paper/v1 control API; refused when tickguard runs live
    today: date | None = None  # the universe's "today"; default: today in IST
    # The static-IP rule (paper.static_ips): client code -> the only address its orders may come from.
    # Empty: not enforced.
    static_ips: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PaperExchange:
    config: PaperConfig
    clock: Callable[[], float] = time.time
    quote_listeners: list[QuoteListener] = field(default_factory=list)
    order_listeners: list[OrderListener] = field(default_factory=list)
    reset_hooks: list[Callable[[], None]] = field(default_factory=list)  # run after a reset
    sockets: Any = None  # (market feed, order-update hub) once the socket routes are mounted
    served: Counter[str] = field(default_factory=Counter)  # every request's path, counted (paper.app.Served)

    def __post_init__(self) -> None:
        today = self.config.today or datetime.fromtimestamp(self.clock(), IST).date()
        self.universe: Universe = build_universe(today, self.config.seed)
        self.store = PaperStore(self.config.db_path)
        self._build()
        self.paths = PathPlayer(lambda exchange, token, ltp: self.prices.set_ltp(exchange, token, ltp))
        self.stamps = Stamps(self.clock)
        self.holds = RouteHolds()  # routes left unanswered on purpose (control API: /paper/v1/holds)
        self.static_ips = StaticIps(self.config.static_ips)  # who may send orders from where; what came from where
        self.outside = OutsidePrices(self)  # instruments priced by an outside feed (tickguard's live market data)
        self.reset_hooks.append(self.outside.reset)
        self._simulator: asyncio.Task | None = None
        self._persist_every_s = 5.0

    def _build(self) -> None:
        self.prices = PriceBook(self.universe, seed=self.config.seed, clock=self.clock)
        self.charge_rates = ChargeRates()  # estimateCharges: its own copy of the rates
        self.engine = OrderEngine(
            self.universe, self.prices, clock=self.clock, opening_cash=lambda _code: self.config.opening_cash_paise
        )
        self.gtt = GttBook(self.universe, self.prices, self.engine, clock=self.clock)
        self.prices.add_listener(self._on_quotes)
        self.engine.add_listener(self._on_order_event)
        self.gtt.add_listener(self.store.put_rule)

    # Life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        state = await asyncio.to_thread(self.store.load)
        key = state.meta.get("signing_key")
        if key is None:
            key = secrets.token_hex(32)
        self.sessions = Sessions(
            self.config.logins, key, ttl_s=self.config.session_ttl_s, clock=self.clock, revoked=set(state.revoked)
        )
        self.prices.load_candles(state.candles)
        self.prices.restore(state.quotes)
        self.engine.restore_rows(state.orders, state.trades)
        self.gtt.restore_rows(state.rules)
        self.store.start()
        self.store.put_meta("signing_key", key)
        if self.config.tick_ms > 0:
            self._simulator = asyncio.create_task(self._simulate(), name="paper-simulator")

    async def stop(self) -> None:
        self.paths.stop_all()
        if self._simulator is not None:
            self._simulator.cancel()
            try:
                await self._simulator
            except asyncio.CancelledError:
                pass
            self._simulator = None
        self.persist_prices()
        await asyncio.to_thread(self.store.close)

    def reset(self) -> None:
        """Forget every order, trade, GTT rule and price move; sessions stay logged in."""
        self.store.clear()
        self._build()
        for hook in self.reset_hooks:
            hook()

    # Simulation and persistence ------------------------------------------------------------------
    async def _simulate(self) -> None:
        step_s = self.config.tick_ms / 1000
        last_persist = self.clock()
        while True:
            await asyncio.sleep(step_s)
            self.prices.step(step_s)
            if self.clock() - last_persist >= self._persist_every_s:
                self.persist_prices()
                last_persist = self.clock()

    def persist_prices(self) -> None:
        self.store.put_candles(self.prices.drain_closed_candles())
        self.store.put_quotes(self.prices.snapshot())

    def _on_quotes(self, quotes: list[Quote]) -> None:
        played = self.stamps.tick_played
        for quote in quotes:
            played(quote.exchange, quote.token, quote.ltp)
        self.engine.on_quotes(quotes)
        self.gtt.on_quotes(quotes)  # after the engine: an order a rule places meets this quote on arrival
        for listener in self.quote_listeners:
            listener(quotes)

    def _on_order_event(self, event: OrderEvent) -> None:
        self.store.put_order(event.clientcode, event.row)
        if event.fill is not None:
            self.store.add_trade(event.clientcode, event.fill)
        for listener in self.order_listeners:
            listener(event)
