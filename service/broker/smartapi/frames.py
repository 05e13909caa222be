"""The smart-stream socket's reader: tick frames cut from the bytes as they arrive.

    FrameSplitter   cuts a server's frame stream: whole, unmasked binary frames go straight to a
                    callback, every other frame's bytes to the WebSocket protocol, in order
    TickConnection  the smart-stream client connection, reading its frames with a FrameSplitter

Why: a tick packet is a 2-byte-header binary frame of 51–379 bytes. `websockets` parses each one with
a generator per frame, builds a `Frame` and an event for it, then hands it over: several times the
engine's own work on the tick. The splitter reads the two header bytes, slices the payload and calls
`on_binary` — nothing else for a tick frame. Everything else (text replies, pings, pongs, a close,
fragmented messages, frames with reserved bits, masked or oversized frames — protocol errors the
library reports) goes to `websockets` whole, so its protocol handling, its answers and its errors are
unchanged. Order across both paths is the order on the wire: the bytes of other frames are handed
over before the next tick frame is.

Until the handshake reply's head has ended, bytes go to `websockets` alone; the splitter takes over
right after the head's blank line, at a frame boundary, even when frames came in the same read. A
refused handshake (its body too) stays `websockets`' to read. After a close frame, a frame longer than
`max_size` (refused from its head, its body never waited for), or anything that leaves the protocol
no longer open, every byte goes to the protocol as it would without the splitter.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

__all__ = ["FrameSplitter", "TickConnection", "frame_end", "ignore_frame"]

_TICK_FRAME = 0x82  # FIN, no reserved bits, opcode BINARY
_CLOSE = 0x8
NO_LIMIT = 1 << 63


def frame_end(buf: bytes, pos: int) -> int:
    """Where the frame that starts at `pos` ends (an index into `buf`), or -1 if it is not all there."""
    n = len(buf)
    if n - pos < 2:
        return -1
    second = buf[pos + 1]
    length = second & 0x7F
    head = 2
    if length == 126:
        if n - pos < 4:
            return -1
        length, head = (buf[pos + 2] << 8) | buf[pos + 3], 4
    elif length == 127:
        if n - pos < 10:
            return -1
        length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
    if second & 0x80:
        head += 4  # a masking key: from a server, a protocol error the protocol reports
    end = pos + head + length
    return end if end <= n else -1


class FrameSplitter:
    """Feeds on a server's frame bytes (any cuts): `on_binary(payload)` for each whole binary frame
    that is unmasked, has no reserved bits, is within `max_size` and is not inside a fragmented
    message; `passthrough(bytes)` with every other frame's bytes, whole frames, in order. `passthrough`
    answers whether the protocol is still open; once it is not (a close, an error), the splitter hands
    it everything that is left and `open` turns false."""

    __slots__ = ("on_binary", "passthrough", "max_size", "open", "_pending", "_fragmented")

    def __init__(self, on_binary: Callable[[bytes], None], passthrough: Callable[[bytes], bool],
                 max_size: int | None = None) -> None:
        self.on_binary = on_binary
        self.passthrough = passthrough
        self.max_size = NO_LIMIT if max_size is None else max_size
        self.open = True
        self._pending = b""  # the start of a frame not all here yet
        self._fragmented = False  # inside a fragmented message: its frames are the protocol's

    def feed(self, data: bytes) -> None:
        if not self.open:
            self.passthrough(data)
            return
        buf = self._pending + data if self._pending else data
        pos, start = 0, -1  # start: where the bytes not yet handed to the protocol begin (-1: none)
        max_size = self.max_size
        n = len(buf)
        while n - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if second < 126:  # unmasked, a payload under 126 bytes: a tick's frame, most likely
                end = pos + 2 + second
                if end > n:
                    break
                if first == _TICK_FRAME and not self._fragmented and second <= max_size:
                    if start >= 0:
                        if not self.passthrough(buf[start:pos]):
                            self._close(buf, pos)
                            return
                        start = -1
                    self.on_binary(buf[pos + 2:end])  # looked up each time: a callback may replace it
                    pos = end
                    continue
            else:
                end = frame_end(buf, pos)
                if end < 0:
                    if _declared_length(buf, pos) > max_size:  # refused from its head: nothing to wait for
                        self._close(buf, start if start >= 0 else pos)
                        return
                    break
                if first == _TICK_FRAME and second < 0x80 and not self._fragmented:  # unmasked, 16/64-bit length
                    head = 4 if second == 126 else 10
                    if end - pos - head <= max_size:
                        if start >= 0:
                            if not self.passthrough(buf[start:pos]):
                                self._close(buf, pos)
                                return
                            start = -1
                        self.on_binary(buf[pos + head:end])
                        pos = end
                        continue
            # Not a tick frame: the protocol's, in order with the rest.
            opcode = first & 0x0F
            if start < 0:
                start = pos
            if opcode == _CLOSE:
                self._close(buf, start)
                return
            self._fragmented = _still_fragmented(self._fragmented, first, opcode)
            pos = end
        if start >= 0 and not self.passthrough(buf[start:pos]):
            self._close(buf, pos)
            return
        self._pending = buf[pos:] if pos < n else b""

    def _close(self, buf: bytes, start: int) -> None:
        """From `start` on, everything is the protocol's."""
        self.open = False
        self._pending = b""
        if start < len(buf):
            self.passthrough(buf[start:])


def _declared_length(buf: bytes, pos: int) -> int:
    """The payload length a frame's head at `pos` declares; 0 while the head is not all there."""
    length = buf[pos + 1] & 0x7F
    if length == 126:
        return (buf[pos + 2] << 8) | buf[pos + 3] if len(buf) - pos >= 4 else 0
    if length == 127:
        return int.from_bytes(buf[pos + 2:pos + 10], "big") if len(buf) - pos >= 10 else 0
    return length


def _still_fragmented(fragmented: bool, first: int, opcode: int) -> bool:
    """Whether a fragmented message is still open after a frame with this first byte."""
    if opcode in (0x1, 0x2):  # TEXT, BINARY: a message begins; it is fragmented unless FIN
        return not first & 0x80
    if opcode == 0x0:  # CONTINUATION: FIN ends the message
        return fragmented and not first & 0x80
    return fragmented  # control frames may come between fragments


class TickConnection(ClientConnection):
    """The smart-stream client connection: once the handshake is done, a `FrameSplitter` reads the
    bytes, so every tick frame goes to `on_binary` inside `data_received`, in order, without the
    protocol's per-frame parse or a `recv` queue; a packet costs one call, and a read's worth of
    frames is handled before the loop runs anything else. Text messages (pongs, error replies) and
    control frames take the usual path, and binary messages the protocol parses (those that came with
    the handshake's reply, fragmented ones) are handed to `on_binary` as well. `on_binary` must not
    raise (an exception here would end the connection)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._splitter: FrameSplitter | None = None
        self._on_binary: Callable[[bytes | bytearray], None] = ignore_frame
        self._fragments: list[bytes | bytearray] | None = None  # a fragmented binary message so far
        self._yielding = False
        self._tail = b""  # the handshake's last bytes read, until its reply head has ended

    @property
    def on_binary(self) -> Callable[[bytes | bytearray], None]:
        return self._on_binary

    @on_binary.setter
    def on_binary(self, callback: Callable[[bytes | bytearray], None]) -> None:
        self._on_binary = callback
        if self._splitter is not None:
            self._splitter.on_binary = callback

    def data_received(self, data: bytes) -> None:
        """Handle one read, then let the loop serve everything else before the next: a socket that is
        never empty (a burst) would otherwise keep the loop reading it, and REST replies — an exit's
        own — would wait behind it (uvloop reads a busy socket many times per turn)."""
        splitter = self._splitter
        if splitter is not None:
            splitter.feed(data)
        else:
            self._handshake(data)
        transport = self.transport
        if not self._yielding and not transport.is_closing():
            self._yielding = True
            transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._read_on)

    def _handshake(self, data: bytes) -> None:
        """Until the reply's head has ended, bytes go to `websockets` alone; what follows the head in the
        same read is the splitter's (or, if the handshake was refused, `websockets`' too)."""
        joined = self._tail + data
        end = joined.find(b"\r\n\r\n")
        if end < 0:
            self._tail = joined[-3:]
            super().data_received(data)
            return
        cut = end + 4 - len(self._tail)
        self._tail = b""
        super().data_received(data[:cut])
        splitter = self._splitter = FrameSplitter(self._on_binary, self._passthrough, _max_frame_size(self.protocol))
        if self.protocol.state is not State.OPEN:
            splitter.open = False  # a refused handshake: its body, and all after, is websockets' to read
        if cut < len(data):
            splitter.feed(data[cut:])

    def _passthrough(self, data: bytes) -> bool:
        super().data_received(data)
        return self.protocol.state is State.OPEN

    def _read_on(self) -> None:
        self._yielding = False
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def process_event(self, event: Any) -> None:
        if type(event) is Frame:
            opcode = event.opcode
            if opcode is Opcode.BINARY:
                if event.fin:
                    self.on_binary(event.data)
                else:
                    self._fragments = [event.data]
                return
            if opcode is Opcode.CONT and self._fragments is not None:
                self._fragments.append(event.data)
                if event.fin:
                    message, self._fragments = b"".join(self._fragments), None
                    self.on_binary(message)
                return
        super().process_event(event)


def _max_frame_size(protocol: Any) -> int | None:
    """The most a frame may carry: the smaller of the message and fragment limits (websockets 15 on),
    or `max_size` before."""
    if not hasattr(protocol, "max_message_size"):
        return getattr(protocol, "max_size", None)
    limits = [size for size in (protocol.max_message_size, protocol.max_fragment_size) if size is not None]
    return min(limits) if limits else None


def ignore_frame(_: bytes | bytearray) -> None:
    """`on_binary` while no session reads the connection."""
    return None  # a frame that arrives while no session reads the connection (it is closing)
