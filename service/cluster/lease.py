"""Leadership of a name (a guard shard, "guard-0-of-2") with a fencing token, on the bus's key-value bucket.

Why a key with a TTL, not a PostgreSQL advisory lock: a paused process (SIGSTOP, a VM stall, a swap
storm) keeps its TCP connection, so its session keeps the lock, and no standby may take over while the
paused leader guards nothing. A key the holder must rewrite within the TTL lapses on its own when the
rewrites stop, whatever state the holder is in; the server then lets the next `create` have it.

The token is the bucket revision at which the holder created the key: its epoch. Revisions are the
bucket's stream sequence, so every new holder's token is larger than any token before it (for any name).
Renewals rewrite the key (`update` with the last revision) keeping the token; the value is JSON
`{"holder", "token", "at_ms"}`, with token null on the creating write (its revision is not known before it
is written: that revision is the token).

The holder gives up first: `held()` is False once its own monotonic clock says no write succeeded
within the TTL, counted from when that write was *sent*, so it stops acting no later than the server
expires the key, and before any renewal when it wakes from a pause. Still, a holder can act between
waking and looking: that race no lease closes. The executor closes it: every intent carries its token,
and `Fence.admits` refuses a token older than the newest it knows for that lease.

Limits: a Fence learns of a new holder through its watch of the bucket, milliseconds after the key is
created; until then it admits the old token. An executor that restarts learns the current token from
the key itself (`admits` reads it when shown a token newer than any it knows). A token it has never
seen, for a key that is gone, is admitted: nothing newer is known. A `create` whose reply is lost (a
timeout) may have taken the key unknown to us: the key then lapses after the TTL.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.kv import KV_OP, KeyValue

from service.cluster.bus import HEARTBEAT_S, Bus, BusError, check_part

__all__ = ["Fence", "Lease"]

log = logging.getLogger("tickguard.cluster")

KEY = re.compile(r"[-/_=a-zA-Z0-9]+")  # what a key-value key may hold (dots aside: one token)
WRONG_LAST = 10071  # JetStream: "wrong last sequence"


def _kv(bus: Bus) -> KeyValue:
    if bus.kv is None or bus.nc is None or bus.nc.is_closed:
        raise BusError(bus.url, "the bus is not connected")
    return bus.kv


def _token_of(value: bytes | None, revision: int) -> int:
    """The token a write of the key carries; its own revision for the creating write (token null) or one
    no holder wrote (unreadable): a foreign write fences older holders rather than being ignored."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        token = json.loads(value or b"").get("token")
        if isinstance(token, int) and not isinstance(token, bool) and token > 0:
            return token
    return revision


class Lease:
    """Leadership of one name with a fencing token, on the bus's bucket (TTL = bus.lease_ttl_s)."""

    def __init__(self, bus: Bus, name: str, holder: str, *, renew_every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_part(name, "lease name")
        if not KEY.fullmatch(name):
            raise ValueError(f"lease name {name!r}: letters, digits and - / _ = only")
        self.bus, self.name, self.holder = bus, name, holder
        self.ttl_s = bus.lease_ttl_s
        self.renew_every_s = self.ttl_s / 3 if renew_every_s is None else float(renew_every_s)
        if not 0 < self.renew_every_s < self.ttl_s:
            raise ValueError(f"renew_every_s {renew_every_s!r}: must be above 0 and below the TTL ({self.ttl_s} s)")
        self.clock = clock
        self.token: int | None = None
        self.lost = asyncio.Event()
        self._revision: int | None = None  # of our last write of the key
        self._written_at: float | None = None  # clock() when that write was sent
        self._renewal: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, holder={self.holder!r}, token={self.token}, held={self.held()})"

    def held(self) -> bool:
        """Ours now: acquired, not lost, and written within the TTL by our own clock (False at once on waking
        from a pause longer than the TTL, before any renewal is tried)."""
        return (self.token is not None and not self.lost.is_set() and self._written_at is not None
                and self.clock() - self._written_at < self.ttl_s)

    async def try_acquire(self) -> int | None:
        """Create the key, which succeeds only when it is absent (expired, deleted): the token, or None
        when another holds it. Renewing starts at once."""
        if self.held():
            return self.token
        await self._stop_renewing()
        if self.token is not None:
            self._lose("no renewal within the TTL")
        sent = self.clock()
        try:
            revision = await _kv(self.bus).create(self.name, self._value(None))
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            return None  # held by another (or lapsing as we looked: the next try will tell)
        self.token = self._revision = revision
        self._written_at = sent
        self.lost.clear()
        self._renewal = asyncio.create_task(self._renew(), name=f"lease {self.name} renewal")
        return revision

    async def acquire(self, *, poll_s: float = 0.2) -> int:
        """Wait until held (trying every `poll_s`); the token. A bus that is reconnecting is waited out."""
        while True:
            try:
                token = await self.try_acquire()
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("lease %s: acquiring failed (%r); trying again", self.name, exc)
                token = None
            if token is not None:
                return token
            await asyncio.sleep(poll_s)

    async def release(self) -> None:
        """Stop renewing and delete the key if it is still ours, so a standby need not wait out the TTL."""
        await self._stop_renewing()
        ours = self.token is not None and not self.lost.is_set()
        if ours:
            await self._delete_if_ours()
        self.token = None
        self.lost.set()

    async def _renew(self) -> None:
        try:
            await self._keep_renewing(_kv(self.bus))
        except Exception as exc:  # never a silent death: whoever waits on `lost` hears of it
            log.exception("lease %s: renewing failed", self.name)
            self._lose(f"renewing failed: {exc!r}")

    async def _keep_renewing(self, kv: KeyValue) -> None:
        while True:
            await asyncio.sleep(self.renew_every_s)
            assert self._written_at is not None and self._revision is not None
            if self.clock() - self._written_at >= self.ttl_s:
                await self._delete_if_ours()  # our last write may still stand: free it for a standby now
                self._lose("no renewal within the TTL")
                return
            sent = self.clock()
            try:
                self._revision = await kv.update(self.name, self._value(self.token), last=self._revision)
                self._written_at = sent
            except nats.js.errors.KeyWrongLastSequenceError:
                if not await self._adopt_our_last_write(kv):
                    self._lose("the key moved on or is gone")
                    return
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("lease %s: renewal failed (%r); trying again", self.name, exc)

    async def _adopt_our_last_write(self, kv: KeyValue) -> bool:
        """After a renewal whose reply was lost, the key may hold our own write: take its revision (not its
        time, which is unknown: the TTL still counts from the last write we know of)."""
        try:
            entry = await kv.get(self.name)
        except (nats.errors.Error, asyncio.TimeoutError):
            return False
        if entry.revision is None or _token_of(entry.value, entry.revision) != self.token:
            return False
        self._revision = entry.revision
        return True

    async def _delete_if_ours(self) -> None:
        try:
            await _kv(self.bus).delete(self.name, last=self._revision)
        except nats.js.errors.APIError as exc:
            if getattr(exc, "err_code", None) != WRONG_LAST:
                log.warning("lease %s: deleting the key failed (%r); it lapses after the TTL", self.name, exc)
        except (nats.errors.Error, asyncio.TimeoutError, BusError) as exc:
            log.warning("lease %s: deleting the key failed (%r); it lapses after the TTL", self.name, exc)

    def _lose(self, reason: str) -> None:
        if self.token is not None:
            log.warning("lease %s: %s lost token %d: %s", self.name, self.holder, self.token, reason)
        self.token = None
        self.lost.set()

    async def _stop_renewing(self) -> None:
        task, self._renewal = self._renewal, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _value(self, token: int | None) -> bytes:
        return json.dumps({"holder": self.holder, "token": token, "at_ms": int(time.time() * 1000)}).encode()


class Fence:
    """What an executor asks before acting on an intent: is its token the newest for that lease?"""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._newest: dict[str, int] = {}
        self._sub: Subscription | None = None

    async def start(self, timeout_s: float = 5.0) -> None:
        """Watch the bucket: the latest write of every key, then each new one. Returns once the former are in.
        (Not `kv.watch`: its consumer would take 10-20 s to notice a restarted server, this one 2-4 s.)"""
        if self._sub is not None:
            return
        _kv(self.bus)
        assert self.bus.js is not None
        keys, caught_up = f"$KV.{self.bus.lease_bucket}.", asyncio.Event()

        async def on_write(msg: Msg) -> None:
            meta = msg.metadata
            if not (msg.headers or {}).get(KV_OP):  # a write: deletes and purges forget nothing
                self._note(msg.subject[len(keys):], _token_of(msg.data, meta.sequence.stream))
            if meta.num_pending == 0:
                caught_up.set()

        self._sub = await self.bus.js.subscribe(
            f"{keys}>", stream=f"KV_{self.bus.lease_bucket}", cb=on_write, ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S, deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
        info = await self._sub.consumer_info()
        if info.num_pending == 0 and (info.delivered is None or info.delivered.consumer_seq == 0):
            caught_up.set()  # an empty bucket
        try:
            async with asyncio.timeout(timeout_s):
                await caught_up.wait()
        except TimeoutError:
            await self.stop()
            raise BusError(self.bus.url, f"the lease bucket's watch did not catch up within {timeout_s:g} s") from None

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    def newest(self, name: str) -> int | None:
        """The highest token seen for `name` (kept after the key is deleted or expires)."""
        return self._newest.get(name)

    async def admits(self, name: str, token: int) -> bool:
        """False when a token newer than `token` is known for `name`. A token newer than any known sends
        one read of the key first (an executor that restarted learns the current holder there). Raises
        the bus's error when that read cannot reach the server: no answer is not a yes."""
        known = self._newest.get(name)
        if known is not None and known > token:
            return False
        if known is None or token > known:
            try:
                entry = await _kv(self.bus).get(name)
            except nats.js.errors.KeyNotFoundError:  # gone (expired, deleted): nothing newer is known
                return True
            if entry.revision is not None:
                self._note(name, _token_of(entry.value, entry.revision))
            known = self._newest.get(name)
        return known is None or known <= token

    def _note(self, name: str, token: int) -> None:
        if token > self._newest.get(name, 0):
            self._newest[name] = token
