"""The cluster's bus: NATS JetStream through nats-py, in the few shapes the roles need.

    subject                 where it lives
    <prefix>.cmd.<login>    stream <SP>_CMD, a work queue (7 days): the executor of that broker login takes
                            each command (`commands`), acknowledges it when done, and has it again after
                            `ack_wait_s` when it does not (no limit on redeliveries)
    <prefix>.evt.>          stream <SP>_EVT, the event log (1 day): `follow` it from a sequence, in order
    <SP>_leases             key-value bucket of the leader leases (`service.cluster.lease`), TTL lease_ttl_s
    anything else           core NATS (`notify`, `listen`): nothing kept, for prices and the like

<SP> is the prefix upper-cased, any character outside [A-Za-z0-9_-] as "_" (`stream_prefix`); clusters
(and tests) share a server under different prefixes. A publish carrying `msg_id` (the `Nats-Msg-Id`
header) is dropped by the server when the same id was stored within the stream's duplicate window (10 min
for commands, 2 min for events): `publish` answers False then.

`connect` creates the streams and the bucket, idempotently: two processes connecting at once both
succeed, and one connecting with other limits (a new `lease_ttl_s`) updates them. The connection
reconnects forever once made; a server that does not answer at first is a `BusError`.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import re
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from service.errors import TickguardError

__all__ = ["Bus", "BusError", "Commands", "Follow", "Handler", "Message", "check_part"]

log = logging.getLogger("tickguard.cluster")

Handler = Callable[["Message"], Awaitable[None] | None]

MSG_ID = "Nats-Msg-Id"
ALREADY_IN_USE = 10058  # JetStream: "stream name already in use with a different configuration"
DAY_S = 86_400.0
CMD_DUPLICATE_WINDOW_S = 600.0
EVT_DUPLICATE_WINDOW_S = 120.0
HEARTBEAT_S = 1.0  # an ordered consumer a restarted server forgot is recreated in 2-4 s (nats-py's default: 10-20)


class BusError(TickguardError):
    """The bus cannot do what it was asked: no server, no JetStream, a stream that cannot be kept."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"NATS at {url}: {reason}")


def check_part(part: str, what: str = "subject part") -> str:
    """`part` when it can stand as one token of a subject (or a key, a consumer name); ValueError otherwise."""
    if not isinstance(part, str) or not part:
        raise ValueError(f"{what} {part!r}: must be a non-empty string")
    bad = sorted({c for c in part if c in ".*>" or c.isspace()})
    if bad:
        raise ValueError(f"{what} {part!r}: must not contain {', '.join(map(repr, bad))}")
    return part


class Message:
    """A message handed out by `Commands.next`, `Bus.follow` or `Bus.listen`.

    `seq` is its stream sequence (0 for a core NATS message) and `deliveries` how often it has been
    delivered (1 the first time). Acknowledging is for commands only: elsewhere it does nothing."""

    __slots__ = ("subject", "data", "headers", "msg_id", "seq", "deliveries", "_msg")

    def __init__(self, msg: Msg, *, jetstream: bool, ackable: bool) -> None:
        self.subject: str = msg.subject
        self.data: bytes = msg.data
        self.headers: dict[str, str] = dict(msg.headers or {})
        self.msg_id: str | None = self.headers.get(MSG_ID)
        meta = msg.metadata if jetstream else None
        self.seq: int = meta.sequence.stream if meta else 0
        self.deliveries: int = meta.num_delivered if meta else 1
        self._msg = msg if ackable else None

    def __repr__(self) -> str:
        return f"Message({self.subject!r}, seq={self.seq}, deliveries={self.deliveries}, msg_id={self.msg_id!r})"

    async def ack(self) -> None:
        """Done with it: the work queue forgets it."""
        if self._msg is not None:
            await self._msg.ack()

    async def nak(self, delay_s: float | None = None) -> None:
        """Not done: deliver it again (after `delay_s`, else at once)."""
        if self._msg is not None:
            await self._msg.nak(delay=delay_s)

    async def in_progress(self) -> None:
        """Still working on it: its ack_wait starts again."""
        if self._msg is not None:
            await self._msg.in_progress()


class Commands:
    """The durable work-queue consumer of one broker login (`Bus.commands`)."""

    def __init__(self, sub: JetStreamContext.PullSubscription, login: str, consumer: str) -> None:
        self._sub = sub
        self.login = login
        self.consumer = consumer

    async def next(self, batch: int = 64, timeout_s: float = 1.0) -> list[Message]:
        """Up to `batch` commands, waiting at most `timeout_s` for the first; [] when none came."""
        try:
            msgs = await self._sub.fetch(batch, timeout=timeout_s)
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            return []
        return [Message(msg, jetstream=True, ackable=True) for msg in msgs]

    async def pending(self) -> int:
        """Commands for this login not yet acknowledged: waiting, or delivered and unacknowledged."""
        info = await self._sub.consumer_info()
        return info.num_pending + info.num_ack_pending

    async def close(self) -> None:
        """Stop pulling; the durable consumer, and its unacknowledged commands, stay on the server."""
        with contextlib.suppress(nats.errors.Error, ValueError):
            await self._sub.unsubscribe()


class Follow:
    """A running `follow` or `listen`."""

    def __init__(self, sub: Subscription) -> None:
        self._sub: Subscription | None = sub

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()


class Bus:
    def __init__(self, url: str = "nats://127.0.0.1:4222", prefix: str = "tickguard", *,
                 lease_ttl_s: float = 1.5, name: str = "tickguard", connect_timeout_s: float = 2.0) -> None:
        for token in prefix.split(".") if isinstance(prefix, str) else [prefix]:
            check_part(token, "prefix part")
        for what, seconds in (("lease_ttl_s", lease_ttl_s), ("connect_timeout_s", connect_timeout_s)):
            if not seconds > 0:
                raise ValueError(f"{what} {seconds!r}: must be above 0")
        self.url, self.prefix, self.name = url, prefix, name
        self.lease_ttl_s, self.connect_timeout_s = float(lease_ttl_s), float(connect_timeout_s)
        self.stream_prefix = re.sub(r"[^A-Za-z0-9_-]", "_", prefix.upper())
        self.cmd_stream = f"{self.stream_prefix}_CMD"
        self.evt_stream = f"{self.stream_prefix}_EVT"
        self.lease_bucket = f"{self.stream_prefix}_leases"
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.kv: KeyValue | None = None
        self._last_error: BaseException | None = None
        self._connecting = False
        self._pulls: list[Commands] = []  # unsubscribed before draining: nothing reads what their queues hold

    async def connect(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            return
        nc = Client()
        self._connecting = True
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await nc.connect(
                    self.url, name=self.name, connect_timeout=self.connect_timeout_s, reconnect_time_wait=0.25,
                    max_reconnect_attempts=-1, drain_timeout=2, error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
                )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await nc.close()
            cause = self._last_error or exc
            raise BusError(self.url, f"no answer within {self.connect_timeout_s:g} s ({cause!r}); "
                                     "scripts/ensure-nats starts a local server") from exc
        finally:
            self._connecting = False
        self._last_error = None
        self.nc, self.js = nc, nc.jetstream()
        try:
            await self._ensure_streams()
            self.kv = await self._ensure_leases()
        except BaseException:
            await nc.close()
            raise

    async def close(self) -> None:
        """Drain and close; does nothing before `connect` or when closed already."""
        nc = self.nc
        if nc is None or nc.is_closed:
            return
        pulls, self._pulls = self._pulls, []
        for commands in pulls:
            await commands.close()
        try:
            await nc.drain()
        except (nats.errors.Error, asyncio.TimeoutError):
            pass
        finally:
            if not nc.is_closed:
                await nc.close()

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if not self._connecting:  # connect reports its own failure
            log.warning("NATS at %s: %r", self.url, exc)

    async def _on_disconnected(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            log.warning("NATS at %s: disconnected; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        log.warning("NATS at %s: reconnected", self.url)

    def _connection(self) -> Client:
        if self.nc is None or self.nc.is_closed:
            raise BusError(self.url, "the bus is not connected")
        return self.nc

    def _jetstream(self) -> JetStreamContext:
        self._connection()
        assert self.js is not None
        return self.js

    async def _ensure_streams(self) -> None:
        try:
            await self._ensure_stream(api.StreamConfig(
                name=self.cmd_stream, subjects=[f"{self.prefix}.cmd.>"],
                retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
                duplicate_window=CMD_DUPLICATE_WINDOW_S, max_age=7 * DAY_S))
            await self._ensure_stream(api.StreamConfig(
                name=self.evt_stream, subjects=[f"{self.prefix}.evt.>"],
                retention=api.RetentionPolicy.LIMITS, storage=api.StorageType.FILE,
                duplicate_window=EVT_DUPLICATE_WINDOW_S, max_age=DAY_S))
        except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError) as exc:
            raise BusError(self.url, "JetStream does not answer (is the server started with -js?)") from exc

    async def _ensure_stream(self, wanted: api.StreamConfig) -> None:
        js = self._jetstream()
        try:
            await js.add_stream(wanted)
            return
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != ALREADY_IN_USE:
                raise
        current = (await js.stream_info(wanted.name)).config
        if (current.retention, current.storage) != (wanted.retention, wanted.storage):
            raise BusError(self.url, f"stream {wanted.name} exists with retention {current.retention}, storage "
                                     f"{current.storage} (wanted {wanted.retention}, {wanted.storage}): delete it")
        updated = dataclasses.replace(current, subjects=wanted.subjects, max_age=wanted.max_age,
                                      duplicate_window=wanted.duplicate_window)
        if updated != current:
            log.warning("stream %s: updating its subjects/limits to %s, max_age %s s, duplicate_window %s s",
                        wanted.name, wanted.subjects, wanted.max_age, wanted.duplicate_window)
            await js.update_stream(updated)

    async def _ensure_leases(self) -> KeyValue:
        js = self._jetstream()
        try:
            return await js.create_key_value(bucket=self.lease_bucket, ttl=self.lease_ttl_s, history=1)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != ALREADY_IN_USE:
                raise
        stream = f"KV_{self.lease_bucket}"
        current = (await js.stream_info(stream)).config
        updated = dataclasses.replace(current, max_age=self.lease_ttl_s, max_msgs_per_subject=1,
                                      duplicate_window=min(self.lease_ttl_s, 120.0))
        if updated != current:
            log.warning("lease bucket %s: TTL %s s -> %s s", self.lease_bucket, current.max_age, self.lease_ttl_s)
            await js.update_stream(updated)
        return await js.key_value(self.lease_bucket)

    def subject(self, *parts: str) -> str:
        """`<prefix>.<part>.<part>…`; every part one token (non-empty; no '.', '*', '>' or white space)."""
        if not parts:
            raise ValueError("a subject needs at least one part after the prefix")
        for part in parts:
            check_part(part)
        return f"{self.prefix}.{'.'.join(parts)}"

    async def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None,
                      headers: dict[str, str] | None = None) -> bool:
        """Store `payload` on its stream and wait for the server's acknowledgement: True when stored, False
        when dropped as a duplicate of `msg_id`."""
        js = self._jetstream()
        sent = dict(headers or {})
        if msg_id is not None:
            if not isinstance(msg_id, str) or not msg_id.strip():
                raise ValueError(f"msg_id {msg_id!r}: must be a non-empty string")
            sent[MSG_ID] = msg_id
        try:
            ack = await js.publish(subject, payload, headers=sent or None)
        except nats.js.errors.NoStreamResponseError as exc:
            raise BusError(self.url, f"no stream stores {subject!r} (streams take {self.prefix}.cmd.> and "
                                     f"{self.prefix}.evt.>)") from exc
        return not ack.duplicate

    async def notify(self, subject: str, payload: bytes) -> None:
        """Core NATS: whoever listens now gets it; nothing is kept."""
        await self._connection().publish(subject, payload)

    async def commands(self, login: str, *, ack_wait_s: float = 30.0, max_ack_pending: int = 1000) -> Commands:
        """The executor's consumer of `<prefix>.cmd.<login>`: durable (named `executor-<login>`, so a
        restarted executor takes up where it stopped), explicit acknowledgement, redelivered without limit."""
        js = self._jetstream()
        check_part(login, "login")
        if not ack_wait_s > 0 or max_ack_pending < 1:
            raise ValueError(f"ack_wait_s {ack_wait_s!r} and max_ack_pending {max_ack_pending!r}: must be above 0")
        consumer = f"executor-{login}"
        await js.add_consumer(self.cmd_stream, api.ConsumerConfig(  # made, or updated to these settings
            name=consumer, durable_name=consumer, filter_subject=self.subject("cmd", login),
            deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=ack_wait_s,
            max_deliver=-1, max_ack_pending=max_ack_pending))
        commands = Commands(await js.pull_subscribe_bind(durable=consumer, stream=self.cmd_stream), login, consumer)
        self._pulls.append(commands)
        return commands

    async def last_seq(self, stream: str = "EVT") -> int:
        """The last sequence stored on <SP>_EVT (or <SP>_CMD): snapshot, then `follow(after_seq=…)` it."""
        names = {"EVT": self.evt_stream, "CMD": self.cmd_stream}
        if stream not in names:
            raise ValueError(f"stream {stream!r}: must be 'EVT' or 'CMD'")
        info = await self._jetstream().stream_info(names[stream])
        return info.state.last_seq

    async def follow(self, subject_filter: str, handler: Handler, *, after_seq: int | None = None) -> Follow:
        """Call `handler` with every event on `subject_filter` (wildcards allowed) stored after `after_seq`
        (None: from now on), in stream order, one at a time. An ordered consumer: nothing to acknowledge,
        and it recreates itself after a gap or a reconnect. An exception from `handler` is logged and the
        next event follows. Events the log no longer keeps (older than a day) are not delivered."""
        js = self._jetstream()
        evt = f"{self.prefix}.evt."
        if (not isinstance(subject_filter, str) or not subject_filter.startswith(evt)
                or "" in subject_filter.split(".") or any(c.isspace() for c in subject_filter)):
            raise ValueError(f"subject filter {subject_filter!r}: must be a subject (wildcards allowed) under {evt}")
        if after_seq is None:
            after_seq = await self.last_seq("EVT")
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise ValueError(f"after_seq {after_seq!r}: must be a sequence (an int >= 0) or None")
        seen = after_seq
        call = _as_coroutine(handler)

        async def deliver(msg: Msg) -> None:
            nonlocal seen
            message = Message(msg, jetstream=True, ackable=False)
            if message.seq <= seen:  # a recreated consumer may start over: never twice, never backwards
                return
            seen = message.seq
            try:
                await call(message)
            except Exception:
                log.exception("follow %s: the handler failed on %r", subject_filter, message)

        sub = await js.subscribe(subject_filter, stream=self.evt_stream, cb=deliver, ordered_consumer=True,
                                 idle_heartbeat=HEARTBEAT_S, config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                                                           opt_start_seq=after_seq + 1))
        # nats-py recreates an ordered consumer from the last stream sequence it delivered, 0 before the
        # first: without this it would start over from the log's beginning after an early gap.
        jsi = getattr(getattr(sub, "_sub", None), "_jsi", None)
        if jsi is not None and getattr(jsi, "_sseq", None) == 0:
            jsi._sseq = after_seq
        return Follow(sub)

    async def listen(self, subject: str, handler: Handler) -> Follow:
        """Core NATS subscription: `handler` gets what is published from now on, while connected."""
        nc = self._connection()
        call = _as_coroutine(handler)

        async def deliver(msg: Msg) -> None:
            message = Message(msg, jetstream=False, ackable=False)
            try:
                await call(message)
            except Exception:
                log.exception("listen %s: the handler failed on %r", subject, message)

        return Follow(await nc.subscribe(subject, cb=deliver))


def _as_coroutine(handler: Handler) -> Callable[[Message], Awaitable[None]]:
    if not callable(handler):
        raise TypeError(f"handler {handler!r}: must be callable")

    async def call(message: Message) -> None:
        result = handler(message)
        if inspect.isawaitable(result):
            await result
    return call
