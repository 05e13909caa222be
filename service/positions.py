"""One login's net positions, known without asking the broker on the exit path.

An exit is never larger than the broker's net position in the trade's direction (trading-semantics §5),
but SmartAPI answers getPosition once a second: a cluster of stops would queue behind it. So the book
is a snapshot plus what happened since:

- a snapshot (getPosition) replaces the net of every instrument that was quiet while it was taken —
  none of our orders working on it and no order news about it during the request — since only then is
  it certain which fills the snapshot already counts;
- the fills of our own orders are added as they are reported (each order's cumulative fill, so a fill
  is counted once);
- news of an order that is not ours (a manual trade, the broker's own square-off) makes that
  instrument unknown until the next quiet snapshot; so does the order-update stream going down, for
  every instrument: what it would have reported is not known;
- exits we sent and that have not filled yet are reserved, so two trades on one position never sell
  the same units.

`held()` is None where the book cannot answer; the caller then asks the broker as before.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from service.broker import BrokerError, Position

__all__ = ["PositionBook"]

log = logging.getLogger("tickguard.positions")
Key = tuple[str, str, str]  # exchange, token, product


class PositionBook:
    def __init__(self, fetch: Callable[[], Awaitable[list[Position]]]) -> None:
        self._fetch = fetch
        self._net: dict[Key, int] = {}
        self._snapshot = False  # a snapshot has been taken: an instrument missing from it is flat
        self._unknown: set[Key] = set()
        self._working: dict[Key, int] = {}  # our orders not finished, per instrument
        self._reserved: dict[Key, int] = {}  # signed quantity of our exits sent and not filled yet
        self._touched: list[set[Key]] = []  # per snapshot being taken: instruments with order news meanwhile
        self._refreshing: asyncio.Task | None = None

    # What the exit path asks ----------------------------------------------------------------------
    def held(self, key: Key, long: bool) -> int | None:
        """Units held in the trade's direction, net of exits already sent; None when not known."""
        if not self._snapshot or key in self._unknown:
            return None
        return max(0, self.after_exits(key, self._net.get(key, 0), long))

    def after_exits(self, key: Key, net: int, long: bool) -> int:
        """What `net` leaves in the trade's direction once our exits in flight have filled."""
        left = net + self._reserved.get(key, 0)
        return left if long else -left

    # What execution reports -----------------------------------------------------------------------
    def working(self, key: Key) -> None:
        """One of our orders on `key` is about to be sent."""
        self._working[key] = self._working.get(key, 0) + 1
        self._touch(key)

    def finished(self, key: Key) -> None:
        left = self._working.get(key, 0) - 1
        if left > 0:
            self._working[key] = left
        else:
            self._working.pop(key, None)

    def reserve(self, key: Key, signed: int) -> None:
        self._reserved[key] = self._reserved.get(key, 0) + signed
        if self._reserved[key] == 0:
            del self._reserved[key]

    def filled(self, key: Key, signed: int) -> None:
        """Our own order on `key` filled `signed` more units (buy > 0, sell < 0)."""
        self._net[key] = self._net.get(key, 0) + signed
        self._touch(key)

    def foreign(self, key: Key) -> None:
        """News of an order that is not ours: `key` is unknown until a quiet snapshot."""
        self._unknown.add(key)
        self._touch(key)

    def forget(self) -> None:
        """The order-update stream went down: nothing is known until it is back and a snapshot taken."""
        self._snapshot = False
        self._unknown.clear()

    # Snapshots --------------------------------------------------------------------------------------
    def refresh_soon(self, delay_s: float = 0.0) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_after(delay_s), name="positions-refresh")

    async def _refresh_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.refresh()

    async def refresh(self) -> bool:
        """Take a snapshot; True when every instrument in it could be taken from it."""
        busy = {key for key, count in self._working.items() if count > 0}
        touched: set[Key] = set()
        self._touched.append(touched)  # snapshots may overlap (startup and a scheduled one): each has its own
        try:
            positions = await self._fetch()
        except BrokerError as exc:
            log.warning("positions snapshot failed", extra={"error": exc.message})
            return False
        finally:
            self._touched.remove(touched)
        busy |= touched | {key for key, count in self._working.items() if count > 0}
        snapshot = {}
        for p in positions:
            key = (p.exchange, p.token, p.product)
            snapshot[key] = snapshot.get(key, 0) + p.net_quantity
        keys = set(snapshot) | set(self._net) | self._unknown
        if not self._snapshot:
            self._unknown = set(busy)  # without an earlier snapshot a busy instrument has no known net
            self._net = {}
        for key in keys - busy:
            self._net[key] = snapshot.get(key, 0)
            self._unknown.discard(key)
        self._snapshot = True
        return not busy

    def _touch(self, key: Key) -> None:
        for touched in self._touched:
            touched.add(key)
