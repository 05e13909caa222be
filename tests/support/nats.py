"""NATS for tests: each test's bus on a prefix of its own (its own streams, subjects and lease bucket),
deleted after it.

The server is the one `make test` makes sure answers (`scripts/ensure-nats`): 127.0.0.1:4222 with
JetStream. `TEST_NATS_URL` points elsewhere. `own_server` runs a server of the test's own, for tests that
stop and restart it."""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors

from service.cluster.bus import Bus
from tests.support.waiting import until

__all__ = ["NATS_URL", "bus", "drop", "free_port", "own_server", "unique_prefix"]

NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")


def unique_prefix() -> str:
    """A subject prefix no other test uses (its streams are named after it)."""
    return f"t{uuid.uuid4().hex[:12]}"


async def drop(the_bus: Bus) -> None:
    """Delete the bus's streams and lease bucket (those already gone are fine), on a connection of its own:
    the bus may have been closed by the test."""
    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream()
        for stream in (the_bus.cmd_stream, the_bus.evt_stream, f"KV_{the_bus.lease_bucket}"):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
    finally:
        await nc.close()


@contextlib.asynccontextmanager
async def bus(prefix: str | None = None, **options: Any) -> AsyncIterator[Bus]:
    """A connected Bus on `prefix` (a fresh one by default); its streams and bucket deleted on the way out."""
    the_bus = Bus(NATS_URL, prefix or unique_prefix(), **options)
    await the_bus.connect()
    try:
        yield the_bus
    finally:
        try:
            await the_bus.close()
        finally:
            await drop(the_bus)


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    """Whether something accepts connections on the loopback `port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.asynccontextmanager
async def own_server(port: int, store: Path | None) -> AsyncIterator[asyncio.subprocess.Process]:
    """A nats-server of the test's own on `port` (JetStream, stored in `store`, when given)."""
    jetstream = ["-js", "-sd", str(store)] if store else []
    server = await asyncio.create_subprocess_exec(
        "/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", str(port), *jetstream,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await until(lambda: answers(port), f"nats-server on port {port}", timeout=15, every=0.05)
        yield server
    finally:
        if server.returncode is None:
            server.terminate()
            await server.wait()
