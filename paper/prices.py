"""Prices for every instrument: a seeded random walk for spots, a pricing model for derivatives, each change a `Quote`."""
from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from paper.candles import CANDLE_INTERVALS, CandleRow, Candles, ist_day
from paper.instruments import Instrument, Universe
from paper.pricing import IST, call_put_price, expiry_epoch, future_price, implied_vol, years_to_expiry
from paper.quotes import Depth, Quote, market_depth

__all__ = ["PriceBook", "CANDLE_INTERVALS"]

log = logging.getLogger(__name__)

Listener = Callable[[list[Quote]], None]
SnapshotRow = tuple[str, str, int, int, int, int, int, int, int, int]  # exchange, token, ltp, o, h, l, close, v, adj, as-of

_TRADING_SECONDS_PER_YEAR = 252 * 6.25 * 3600  # the walk's volatility is per trading time


DEPTH_CACHE = 1024  # price levels whose book shape is kept per instrument


@dataclass(slots=True, eq=False)
class _Live:
    """The mutable state behind one instrument's quotes; each change publishes a fresh Quote."""

    instrument: Instrument
    key: tuple[str, str]
    fair: float  # spots: the unrounded walk level, so moves smaller than a tick accumulate
    vol: float  # spots: annualised volatility of the walk
    ltp: int
    open: int
    high: int
    low: int
    close: int
    upper_circuit: int = 0
    lower_circuit: int = 0
    week52_high: int = 0
    week52_low: int = 0
    volume: int = 0
    turnover: int = 0
    last_qty: int = 0
    open_interest: int = 0
    adjustment: int = 0  # derivatives: price set by hand minus the model's price
    band: float = 0.0  # equities: the circuit band as a fraction of the previous close
    twin: _Live | None = None  # BSE equities: the NSE listing whose walk they follow
    expiry_at: float = 0.0
    salt: int = 0
    depth: dict[int, Depth] = field(default_factory=dict)  # the book shown at each price level seen
    sequence: int = 0
    quote: Quote | None = None


def _to_tick(paise: float, tick: int) -> int:
    return max(tick, round(paise / tick) * tick)


def _model_price(instrument: Instrument, expiry_at: float, spot_paise: float, now: float) -> float:
    years = years_to_expiry(expiry_at, now)
    if not instrument.is_option:
        return future_price(spot_paise, years)
    vol = implied_vol(instrument.name)
    return call_put_price(spot_paise, instrument.strike_paise, years, vol, instrument.option_type)  # type: ignore[arg-type]


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=IST)).timestamp()


class PriceBook:
    """The live market: spots walk, active derivatives follow their model, every change goes to listeners.

    Only spots and active contracts (touched by `quote`, `set_ltp` or `activate`) are kept and repriced, so
    a step costs the same whether the master lists five hundred contracts or fifty thousand.
    """

    def __init__(
        self, universe: Universe, *, seed: int, clock: Callable[[], float], candle_retention_days: float = 30
    ) -> None:
        self.universe = universe
        self._seed = seed
        self._clock = clock
        self._walk = random.Random(f"tickguard-walk:{seed}")
        self._listeners: list[Listener] = []
        self._live: dict[tuple[str, str], _Live] = {}
        self._spots: list[_Live] = []
        self._active: dict[tuple[str, str], list[_Live]] = {}  # by underlying
        self.held: set[tuple[str, str]] = set()  # priced from outside alone (`hold`)
        self._candles = Candles(candle_retention_days * 86400)
        now = clock()
        self._session_day = ist_day(now)
        for instrument in universe.spots:
            rng = self._rng(instrument)
            close = universe.reference_price(instrument.exchange, instrument.token)
            vol = rng.uniform(0.12, 0.18) if instrument.is_index else rng.uniform(0.15, 0.30)
            opening = _to_tick(close * math.exp(rng.gauss(0.0, 0.004)), instrument.tick_paise)
            live = self._new_live(instrument, rng, opening, close, now, vol=vol)
            self._spots.append(live)
        nse = {live.instrument.name: live for live in self._spots if live.key[0] == "NSE" and not live.instrument.is_index}
        for live in self._spots:
            if live.key[0] == "BSE" and not live.instrument.is_index:
                live.twin = nse.get(live.instrument.name)

    # -- reading -----------------------------------------------------------------------------------------

    def quote(self, exchange: str, token: str) -> Quote:
        live = self._live.get((exchange.upper(), str(token))) or self._activate(exchange, token)
        assert live.quote is not None
        return live.quote

    def ltp(self, exchange: str, token: str) -> int:
        return self.quote(exchange, token).ltp

    def activate(self, exchange: str, token: str) -> Quote:
        """Keep a contract live and repriced on every step from now on."""
        return self.quote(exchange, token)

    def is_active(self, exchange: str, token: str) -> bool:
        return (exchange.upper(), str(token)) in self._live

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call `fn` with every batch of changed quotes; returns a function that removes it."""
        self._listeners.append(fn)

        def remove() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)

        return remove

    def hold(self, exchange: str, token: str) -> None:
        """Price an instrument from outside alone (paper.outside): no walk, no model, and no circuit band of
        this exchange's making around a close of its own — the outside market keeps its own bands."""
        key = (exchange.upper(), str(token))
        self.held.add(key)
        if (live := self._live.get(key)) is not None:
            live.upper_circuit = live.lower_circuit = 0

    def candles(self, exchange: str, token: str, interval: str, start: datetime, end: datetime) -> list[list]:
        """SmartAPI candle rows for [start, end] (naive datetimes are IST), including the still-open minute."""
        minutes = CANDLE_INTERVALS.get(interval)
        if minutes is None:
            raise ValueError(f"unknown candle interval {interval!r}; expected one of {', '.join(CANDLE_INTERVALS)}")
        instrument = self._instrument(exchange, token)
        return self._candles.query((instrument.exchange, instrument.token), minutes, _epoch(start), _epoch(end))

    # -- moving ------------------------------------------------------------------------------------------

    def step(self, dt_s: float) -> list[Quote]:
        """Move every spot one random-walk step of `dt_s` seconds and reprice active derivatives."""
        if dt_s < 0:
            raise ValueError(f"step of {dt_s} s: time only moves forward")
        now = self._clock()
        self._roll_session(now)
        scale = math.sqrt(dt_s / _TRADING_SECONDS_PER_YEAR)
        drift_per_vol2 = -0.5 * dt_s / _TRADING_SECONDS_PER_YEAR
        gauss = self._walk.gauss
        changed: list[Quote] = []
        held = self.held
        for live in self._spots:
            if live.key in held:
                continue
            if live.twin is not None:  # one company, one price on both exchanges
                live.fair = live.twin.fair
            else:
                vol = live.vol
                live.fair *= math.exp(vol * scale * gauss(0.0, 1.0) + vol * vol * drift_per_vol2)
            ltp = _to_tick(live.fair, live.instrument.tick_paise)
            if live.instrument.is_index:
                if ltp != live.ltp:
                    changed.append(self._trade(live, ltp, 0, now))
            else:  # an equity prints a trade every step, even at an unchanged price
                qty = 1 + (live.sequence * 7919 + live.salt) % 250
                changed.append(self._trade(live, ltp, qty, now))
        for contracts in self._active.values():
            for live in contracts:
                quote = None if live.key in held else self._reprice(live, now)
                if quote is not None:
                    changed.append(quote)
        self._publish(changed)
        return changed

    def set_ltp(self, exchange: str, token: str, ltp_paise: int, *, on_tick: bool = True) -> list[Quote]:
        """Trade at `ltp_paise` now: the set quote first, then every derivative it moved. A price from
        outside (`on_tick=False`) is taken as it comes, on this universe's tick or not."""
        live = self._live.get((exchange.upper(), str(token))) or self._activate(exchange, token)
        instrument = live.instrument
        if isinstance(ltp_paise, bool) or not isinstance(ltp_paise, int) or ltp_paise <= 0:
            raise ValueError(f"ltp for {instrument.exchange} {instrument.symbol} must be positive integer paise, got {ltp_paise!r}")
        if on_tick and ltp_paise % instrument.tick_paise:
            raise ValueError(
                f"ltp {ltp_paise} paise for {instrument.exchange} {instrument.symbol} is not a multiple of its tick "
                f"{instrument.tick_paise} paise"
            )
        now = self._clock()
        self._roll_session(now)
        qty = 0 if instrument.is_index else instrument.lotsize
        if instrument.is_derivative:
            live.adjustment = ltp_paise - round(self._model(live, now))
            changed = [self._trade(live, ltp_paise, qty, now)]
        else:
            live.fair = float(ltp_paise)
            changed = [self._trade(live, ltp_paise, qty, now)]
            for contract in self._active.get(live.key, []):
                quote = None if contract.key in self.held else self._reprice(contract, now)
                if quote is not None:
                    changed.append(quote)
        self._publish(changed)
        return changed

    # -- persistence -------------------------------------------------------------------------------------

    def drain_closed_candles(self) -> list[CandleRow]:
        """One-minute candles that closed since the last call, for the exchange to store."""
        return self._candles.drain(self._clock())

    def load_candles(self, rows: Iterable[Iterable[int | str]]) -> None:
        """Candles stored earlier; they count as already drained."""
        self._candles.load(rows)

    def snapshot(self) -> list[SnapshotRow]:
        """Per live instrument: exchange, token, ltp, open, high, low, close, volume, adjustment, as-of epoch s."""
        as_of = int(self._clock())
        return [
            (*live.key, live.ltp, live.open, live.high, live.low, live.close, live.volume, live.adjustment, as_of)
            for live in self._live.values()
        ]

    def restore(self, rows: Iterable[Sequence[int | str]]) -> None:
        """Put back a snapshot; one taken on an earlier IST day becomes that session's close.

        Rows for instruments this universe no longer lists (expired contracts) are skipped.
        """
        now = self._clock()
        for row in rows:
            exchange, token, ltp, o, h, lo, close, volume, adjustment = row[:9]
            if self.universe.by_token(str(exchange), str(token)) is None:
                log.warning("snapshot row for unknown instrument %s %s ignored", exchange, token)
                continue
            live = self._live.get((str(exchange), str(token))) or self._activate(str(exchange), str(token))
            ltp, volume = int(ltp), int(volume)
            if len(row) > 9 and ist_day(float(row[9])) < self._session_day:
                o = h = lo = close = ltp
                volume = 0
            live.fair, live.ltp, live.open, live.high, live.low = float(ltp), ltp, int(o), int(h), int(lo)
            live.volume, live.turnover, live.adjustment = volume, volume * ltp, int(adjustment)
            live.week52_high, live.week52_low = max(live.week52_high, live.high), min(live.week52_low, live.low)
            if int(close) != live.close:
                live.close = int(close)
                self._set_bands(live)
            self._publish_quote(live, now, traded=False)

    # -- internals ---------------------------------------------------------------------------------------

    def _instrument(self, exchange: str, token: str) -> Instrument:
        instrument = self.universe.by_token(exchange, token)
        if instrument is None:
            raise KeyError(f"unknown instrument: exchange {exchange!r} token {token!r}")
        return instrument

    def _rng(self, instrument: Instrument) -> random.Random:
        # One stream per instrument, so a contract's seeded details do not depend on activation order.
        return random.Random(f"tickguard-quote:{self._seed}:{instrument.exchange}:{instrument.token}")

    def _new_live(self, instrument: Instrument, rng: random.Random, ltp: int, close: int, now: float, *, vol: float = 0.0) -> _Live:
        key = (instrument.exchange, instrument.token)
        live = _Live(instrument, key, float(ltp), vol, ltp, ltp, ltp, ltp, close, salt=rng.randrange(1 << 30))
        if instrument.is_derivative:
            live.expiry_at = expiry_epoch(instrument.expiry)  # type: ignore[arg-type]
            live.open_interest = instrument.lotsize * rng.randint(20, 4000)
        live.band = 0.10 if instrument.is_derivative or rng.random() < 0.3 else 0.20
        wide = 1.5 if instrument.is_option else 0.3
        deep = 0.95 if instrument.is_option else 0.3
        live.week52_high = max(ltp, _to_tick(close * (1 + rng.uniform(0.05, wide)), instrument.tick_paise))
        live.week52_low = min(ltp, _to_tick(close * (1 - rng.uniform(0.08, deep)), instrument.tick_paise))
        self._set_bands(live)
        self._live[key] = live
        self._publish_quote(live, now, traded=False)
        return live

    def _activate(self, exchange: str, token: str) -> _Live:
        instrument = self._instrument(exchange, token)
        spot = self._live[(instrument.underlying_exchange or "", instrument.underlying_token or "")]
        now = self._clock()
        rng = self._rng(instrument)
        expiry_at = expiry_epoch(instrument.expiry)  # type: ignore[arg-type]
        price = _to_tick(_model_price(instrument, expiry_at, spot.ltp, now), instrument.tick_paise)
        # The previous close is the model a day earlier at the underlying's previous close.
        close = _to_tick(_model_price(instrument, expiry_at, spot.close, now - 86400), instrument.tick_paise)
        live = self._new_live(instrument, rng, price, close, now)
        self._active.setdefault(spot.key, []).append(live)
        return live

    def _model(self, live: _Live, now: float) -> float:
        instrument = live.instrument
        spot = self._live[(instrument.underlying_exchange or "", instrument.underlying_token or "")]
        return _model_price(instrument, live.expiry_at, spot.ltp, now)

    def _reprice(self, live: _Live, now: float) -> Quote | None:
        tick = live.instrument.tick_paise
        price = _to_tick(self._model(live, now) + live.adjustment, tick)
        if price == live.ltp:
            return None
        return self._trade(live, price, live.instrument.lotsize * (1 + (live.sequence + live.salt) % 8), now)

    def _trade(self, live: _Live, price: int, qty: int, now: float) -> Quote:
        live.ltp = price
        live.high, live.low = max(live.high, price), min(live.low, price)
        live.week52_high, live.week52_low = max(live.week52_high, price), min(live.week52_low, price)
        live.last_qty = qty
        live.volume += qty
        live.turnover += qty * price
        if live.instrument.is_derivative and qty:
            lots = qty // live.instrument.lotsize
            live.open_interest = max(live.instrument.lotsize, live.open_interest + (lots if live.sequence % 3 else -lots) * live.instrument.lotsize)
        self._candles.record(live.key, int(now // 60) * 60, price, qty)
        return self._publish_quote(live, now, traded=True)

    def _publish_quote(self, live: _Live, now: float, *, traded: bool) -> Quote:
        live.sequence += 1
        instrument = live.instrument
        ltp = live.ltp
        book = live.depth.get(ltp)
        if book is None:  # the book's shape is a function of the price: built once per price level seen
            if len(live.depth) >= DEPTH_CACHE:
                live.depth.clear()
            book = live.depth[ltp] = market_depth(ltp, instrument.tick_paise, instrument.lotsize, live.salt, instrument.is_index)
        bids, asks, total_buy, total_sell = book
        previous = live.quote
        live.quote = Quote(
            exchange=instrument.exchange,
            token=instrument.token,
            ltp=ltp,
            open=live.open,
            high=live.high,
            low=live.low,
            close=live.close,
            upper_circuit=live.upper_circuit,
            lower_circuit=live.lower_circuit,
            week52_high=live.week52_high,
            week52_low=live.week52_low,
            volume=live.volume,
            last_qty=live.last_qty,
            avg_price=round(live.turnover / live.volume) if live.volume else (0 if instrument.is_index else ltp),
            total_buy_qty=total_buy,
            total_sell_qty=total_sell,
            open_interest=live.open_interest,
            exchange_ts_ms=int(now * 1000),
            last_trade_ts=int(now) if traded or previous is None else previous.last_trade_ts,
            sequence=live.sequence,
            bids=list(bids),
            asks=list(asks),
        )
        return live.quote

    def _set_bands(self, live: _Live) -> None:
        instrument, close = live.instrument, live.close
        tick = instrument.tick_paise
        if instrument.is_index or live.key in self.held:
            live.upper_circuit = live.lower_circuit = 0
        elif instrument.is_option:
            spot = self._live[(instrument.underlying_exchange or "", instrument.underlying_token or "")]
            live.upper_circuit = _to_tick(close + spot.close * 0.10, tick)
            live.lower_circuit = tick
        else:
            live.upper_circuit = math.floor(close * (1 + live.band) / tick) * tick
            live.lower_circuit = max(tick, math.ceil(close * (1 - live.band) / tick) * tick)

    def _roll_session(self, now: float) -> None:
        """At the first change of a new IST day, the last price becomes the previous close."""
        day = ist_day(now)
        if day == self._session_day:
            return
        self._session_day = day
        for live in self._live.values():
            live.close = live.open = live.high = live.low = live.ltp
            live.volume = live.turnover = live.last_qty = 0
            self._set_bands(live)

    def _publish(self, changed: list[Quote]) -> None:
        if not changed:
            return
        for listener in list(self._listeners):
            try:
                listener(changed)
            except Exception:
                # One broken consumer (a dropped socket) must not stop the market or starve the others.
                log.exception("price listener %r failed", listener)
