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

Execution reports each of its orders by tag (`place`, `fill`, `settle`): the book keeps, per order,
whether it is working and what of it is still reserved, and from those the per-instrument counts a
snapshot and `held()` read. `held()` is None where the book cannot answer; `exitable()` then asks the
broker. A book may be given a `resnapshot_s`: after news of another's order, or a question it could
not answer, it takes a fresh snapshot that long after. `Books` keeps one book per login.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.broker import BrokerError, Position

__all__ = ["Books", "Key", "PositionBook", "RESNAPSHOT_S"]

log = logging.getLogger("tickguard.positions")
Key = tuple[str, str, str]  # exchange, token, product
Fetch = Callable[[], Awaitable[list[Position]]]
RESNAPSHOT_S = 1.0  # a login's book is snapshotted again this long after news it cannot account for


@dataclass
class _Ours:
    """One of our orders as the book counts it."""

    key: Key
    working: bool  # counted in `_working` of its instrument
    reserved: int = 0  # signed units of an exit, not filled yet


class PositionBook:
    def __init__(self, fetch: Fetch, *, resnapshot_s: float | None = None) -> None:
        self._fetch = fetch
        self._resnapshot_s = resnapshot_s
        self._orders: dict[str, _Ours] = {}  # our orders by tag
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

    async def exitable(self, key: Key, long: bool, wanted: int) -> int:
        """At most `wanted` units, capped by the net position in the trade's direction less our exits
        on their way: from the book, or asked of the broker where the book cannot say or says less."""
        held = self.held(key, long)
        if held is not None and held >= wanted:
            return wanted
        try:
            positions = await self._fetch()
        except BrokerError:
            return wanted if held is None else held  # the broker's own RMS still refuses a flip for a net-zero position
        self._resnapshot()
        net = sum(p.net_quantity for p in positions if (p.exchange, p.token, p.product) == key)
        return max(0, min(wanted, self.after_exits(key, net, long)))

    # What execution reports, order by order -------------------------------------------------------
    def place(self, tag: str, key: Key, *, reserve: int = 0, working: bool = True) -> None:
        """Our order `tag` on `key`: about to be sent, or found again after a restart (working unless
        it is finished); a working exit reserves `reserve` signed units until they fill."""
        order = self._orders[tag] = _Ours(key, working)
        if working:
            self._working[key] = self._working.get(key, 0) + 1
            self._touch(key)
            self._reserve(order, reserve)

    def knows(self, tag: str) -> bool:
        return tag in self._orders

    def working_tags(self, key: Key) -> list[str]:
        """Our orders still working on `key`."""
        return [tag for tag, order in self._orders.items() if order.working and order.key == key]

    def fill(self, tag: str, signed: int) -> None:
        """Our order `tag` filled `signed` more units (buy > 0, sell < 0): into the net, out of its reservation."""
        order = self._orders[tag]
        self._net[order.key] = self._net.get(order.key, 0) + signed
        self._touch(order.key)
        if order.reserved:
            step = min(abs(signed), abs(order.reserved))
            self._reserve(order, step if order.reserved < 0 else -step)

    def settle(self, tag: str) -> None:
        """Our order `tag` is finished: no longer working, and what it did not fill no longer reserved."""
        order = self._orders.get(tag)
        if order is None or not order.working:
            return
        order.working = False
        left = self._working.get(order.key, 0) - 1
        if left > 0:
            self._working[order.key] = left
        else:
            self._working.pop(order.key, None)
        self._reserve(order, -order.reserved)

    def _reserve(self, order: _Ours, signed: int) -> None:
        if not signed:
            return
        order.reserved += signed
        key = order.key
        self._reserved[key] = self._reserved.get(key, 0) + signed
        if self._reserved[key] == 0:
            del self._reserved[key]

    # What else the book hears ---------------------------------------------------------------------
    def foreign(self, key: Key) -> None:
        """News of an order that is not ours filled on `key`: unknown until a quiet snapshot."""
        self._unknown.add(key)
        self._touch(key)
        self._resnapshot()

    def forget(self) -> None:
        """The order-update stream went down: nothing is known until it is back and a snapshot taken."""
        self._snapshot = False
        self._unknown.clear()

    # Snapshots --------------------------------------------------------------------------------------
    def _resnapshot(self) -> None:
        if self._resnapshot_s is not None:
            self.refresh_soon(self._resnapshot_s)

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


class Books:
    """One position book per login ("" the default one), and the book each of our orders is in."""

    def __init__(self, fetch_for: Callable[[str], Fetch]) -> None:
        self._fetch_for = fetch_for  # a login's positions (getPosition), by its client code
        self.books: dict[str, PositionBook] = {}
        self._by_tag: dict[str, PositionBook] = {}

    def book(self, login: str | None) -> PositionBook:
        code = str(login or "").upper()
        book = self.books.get(code)
        if book is None:
            book = self.books[code] = PositionBook(self._fetch_for(code), resnapshot_s=RESNAPSHOT_S)
        return book

    def place(self, tag: str, login: str | None, key: Key, *, reserve: int = 0, working: bool = True) -> None:
        book = self._by_tag[tag] = self.book(login)
        book.place(tag, key, reserve=reserve, working=working)

    def knows(self, tag: str) -> bool:
        return tag in self._by_tag

    def fill(self, tag: str, signed: int) -> None:
        self._by_tag[tag].fill(tag, signed)

    def settle(self, tag: str) -> None:
        book = self._by_tag.get(tag)
        if book is not None:
            book.settle(tag)
