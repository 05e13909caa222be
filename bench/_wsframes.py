"""The little of RFC 6455 the benchmark's stream sources need: the upgrade reply, and reading one
client frame (unmasked here). Kept by hand so nothing sits between a frame and its time stamp."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

__all__ = ["accept_upgrade", "read_frame"]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_upgrade(writer: asyncio.StreamWriter, key: bytes) -> None:
    """Answer a WebSocket upgrade whose Sec-WebSocket-Key is `key`."""
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, payload) of the next client frame."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
