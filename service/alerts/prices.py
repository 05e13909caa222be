"""The alert price check: an alert's price against the live price (PRICE_SANITY_PCT, PRICE_SOURCE).

An alert that would open a trade is refused (422, field `price`) when its price is more than
PRICE_SANITY_PCT away from the live price — the underlying's for an option, whose alert prices the
underlying. With PRICE_SOURCE=live the trade is planned at the live price instead of the alert's.

The live price of an instrument is the last tick held for it when fresher than STALE_TICK_S, else one
getLtpData read through the broker's pacer, waited for at most READ_WAIT_S. Alerts asking while a read
is out share it, and its answer serves like a tick for STALE_TICK_S; a read that answers late still
serves the alerts after it. An alert served a read past REFRESH_AFTER of its life starts the next read
without waiting for it, so a steady flow of alerts on an instrument never waits on one. Outside the instrument's session, or when neither answers in time (or the
read fails), there is no live price: the check is skipped and the alert records `price_checked: false`.
So the alert path waits at most READ_WAIT_S on it, and reads at most one price per instrument per
STALE_TICK_S.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.alerts.parse import Alert
from service.broker.errors import BrokerError

__all__ = ["LivePrices", "PriceCheck", "READ_WAIT_S", "UNCHECKED", "judge", "off_by", "opens_nothing"]

log = logging.getLogger("tickguard.alerts")

READ_WAIT_S = 0.3  # the longest an alert waits for a getLtpData read
REFRESH_AFTER = 0.75  # of STALE_TICK_S: a read this old is read again in the background
KEPT_LIMIT = 4096  # reads kept; past this the stale ones are dropped

LastTick = Callable[[str, str], "tuple[int, int] | None"]  # (exchange, token) -> (price paise, at epoch ms)
ReadLtp = Callable[[str, str, str], Awaitable[int]]  # (exchange, tradingsymbol, token) -> paise


@dataclass(frozen=True)
class PriceCheck:
    """What the check found for one alert."""

    checked: bool  # a live price was had and the alert's price judged against it
    live: int | None = None  # paise
    used: str = "alert"  # the price the trade is planned at: alert | live
    refusal: str = ""  # why the price is refused, or ""

    def stored(self) -> dict[str, Any]:
        """What the alert row records beside the alert's own fields."""
        fields: dict[str, Any] = {"price_checked": self.checked}
        if self.live is not None:
            fields["live_price"] = self.live / 100
            fields["price_used"] = self.used
        return fields


UNCHECKED = PriceCheck(False)


def off_by(price: Decimal, live: int, pct: Decimal) -> bool:
    """The alert's `price` (rupees) is more than `pct` percent away from `live` (paise); pct 0: never."""
    if pct <= 0 or live <= 0:
        return False
    return abs(price * 100 - live) * 100 > pct * live


def opens_nothing(alert: Alert) -> bool:
    """An alert that can only close (`exit`, `cover`, `position_size` 0): its price plans nothing."""
    return alert.signal.value == "exit" or alert.position_size == 0 or (alert.signal.value == "buy" and alert.chartink_word)


def judge(alert: Alert, live: int | None, pct: Decimal, source: str, label: str) -> PriceCheck:
    """The check of `alert` against `live` (paise, None: none to be had) of the instrument `label`."""
    if live is None:
        return UNCHECKED
    used = "live" if source == "live" else "alert"
    if used == "alert" and off_by(alert.price, live, pct):
        away = abs(alert.price * 100 - live) * 100 / live
        return PriceCheck(True, live, used, f"{alert.price:f} is {away:.2f}% away from the live price "
                                            f"{live / 100:.2f} of {label} (PRICE_SANITY_PCT {pct.normalize():f}%)")
    return PriceCheck(True, live, used)


class LivePrices:
    """The live price of an instrument for the check: a fresh tick, else one shared, paced read."""

    def __init__(self, *, last_tick: LastTick, read: ReadLtp, session_open: Callable[[str], bool], stale_ms: int,
                 clock: Callable[[], float] = time.time, wait_s: float = READ_WAIT_S) -> None:
        self.last_tick = last_tick
        self.read = read
        self.session_open = session_open
        self.stale_ms = stale_ms
        self.clock = clock
        self.wait_s = wait_s
        self.kept: dict[tuple[str, str], tuple[int, int]] = {}  # (exchange, token) -> (paise, read at ms)
        self._reads: dict[tuple[str, str], asyncio.Task] = {}

    def _fresh(self, seen: tuple[int, int] | None, now_ms: int) -> int | None:
        if seen is None or now_ms - seen[1] > self.stale_ms:
            return None
        return seen[0]

    async def price(self, exchange: str, tradingsymbol: str, token: str) -> int | None:
        """Paise, or None: outside the session, or no fresh tick and no read in time."""
        if not self.session_open(exchange):
            return None
        now_ms = int(self.clock() * 1000)
        key = (exchange, token)
        live = self._fresh(self.last_tick(exchange, token), now_ms)
        if live is not None:
            return live
        kept = self.kept.get(key)
        live = self._fresh(kept, now_ms)
        if live is not None:
            if kept is not None and now_ms - kept[1] > self.stale_ms * REFRESH_AFTER:
                self._reading(key, tradingsymbol)
            return live
        task = self._reading(key, tradingsymbol)
        done, _ = await asyncio.wait({task}, timeout=self.wait_s)
        return task.result() if done else None

    def _reading(self, key: tuple[str, str], tradingsymbol: str) -> asyncio.Task:
        """The read of `key` out now, started if none is."""
        task = self._reads.get(key)
        if task is None:
            task = self._reads[key] = asyncio.create_task(self._read(key, tradingsymbol), name=f"ltp-{key[0]}-{key[1]}")
        return task

    async def _read(self, key: tuple[str, str], tradingsymbol: str) -> int | None:
        exchange, token = key
        try:
            price = await self.read(exchange, tradingsymbol, token)
        except Exception as exc:  # noqa: BLE001 - no live price, whatever the reason: the check is skipped
            reason = exc.message if isinstance(exc, BrokerError) else repr(exc)
            log.info("no live price for the alert check", extra={"exchange": exchange, "token": token, "error": reason})
            return None
        finally:
            self._reads.pop(key, None)
        if len(self.kept) >= KEPT_LIMIT:
            now_ms = int(self.clock() * 1000)
            self.kept = {k: v for k, v in self.kept.items() if now_ms - v[1] <= self.stale_ms}
        self.kept[key] = (price, int(self.clock() * 1000))
        return price
