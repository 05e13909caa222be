"""The smart-stream socket's bytes split into frames: tick frames straight to the stream, every other
frame, whole and in order, to `websockets`.

A tick is one small unfragmented binary frame (a LTP packet is 51 bytes, SNAP_QUOTE 379). Parsing it
with `websockets` (its generator-based reader, a `Frame` object, the protocol's checks, an event) costs
about half of what tickguard spends on a tick at saturation (docs/bench.md, the tick path's profile);
this takes the frame head itself: two bytes (four with a 16-bit length), a length check and a slice.

Only the commonest frame is taken: FIN set, no RSV bit, opcode binary, not masked, no longer than the
connection's `max_size`, and only while no fragmented message is in progress. Everything else — text
(pongs, error replies), control frames (ping, pong, close), fragments and their continuations, and
anything malformed — goes to `websockets` exactly as it arrived, so its checks, its automatic replies
and its closing handshake are its own. Frames keep their order: a run of other frames is handed over
before the next tick frame is taken. A frame split across reads waits for the rest.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

__all__ = ["FrameSplitter", "TickConnection", "dropped"]

_BINARY_FIN = 0x82
_MASKED = 0x80


class FrameSplitter:
    """`feed(data)` per socket read: tick frames' payloads to `on_binary`, other frames' bytes to
    `on_other`, which answers whether splitting may go on (False once the connection is no longer open:
    from then on every byte goes to `on_other`, as it comes)."""

    __slots__ = ("_fragmented", "_rest", "bypass", "max_size", "on_binary", "on_other")

    def __init__(self, on_binary: Callable[[bytes], None], on_other: Callable[[bytes], bool],
                 max_size: int | None) -> None:
        self.on_binary = on_binary
        self.on_other = on_other
        self.max_size = max_size if max_size is not None else 1 << 62
        self.bypass = False  # everything to on_other from now on
        self._rest = b""
        self._fragmented = False  # a fragmented data message has begun and not ended

    def feed(self, data: bytes) -> None:
        if self._rest:
            data = self._rest + data
            self._rest = b""
        if self.bypass:
            self.on_other(data)
            return
        on_binary, max_size = self.on_binary, self.max_size
        size = len(data)
        at = 0
        other = -1  # where the run of frames for on_other began, if one is open
        while size - at >= 2:
            first, second = data[at], data[at + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - at < 4:
                    break
                length = (data[at + 2] << 8) | data[at + 3]
                head = 4
            elif length == 127:
                if size - at < 10:
                    break
                length = int.from_bytes(data[at + 2:at + 10], "big")
                head = 10
            if second & _MASKED:
                head += 4
            if length > max_size:  # websockets refuses it from its head: no waiting for a body never read
                self.bypass = True
                self.on_other(data[other if other >= 0 else at:])
                return
            end = at + head + length
            if end > size:
                break  # the frame's rest is on its way
            if first == _BINARY_FIN and not second & _MASKED and not self._fragmented:
                if other >= 0:
                    if not self._hand_over(data[other:at], data[at:]):
                        return
                    other = -1
                on_binary(data[at + head:end])
            else:
                opcode = first & 0x0F
                if opcode in (0x1, 0x2):
                    self._fragmented = not first & 0x80
                elif opcode == 0x0 and first & 0x80:
                    self._fragmented = False
                if other < 0:
                    other = at
            at = end
        if other >= 0 and not self._hand_over(data[other:at], data[at:]):
            return
        if at < size:
            self._rest = data[at:]

    def _hand_over(self, frames: bytes, after: bytes) -> bool:
        """`frames` to on_other; if the connection is no longer open, `after` too, and bypass from now."""
        if self.on_other(frames):
            return True
        self.bypass = True
        if after:
            self.on_other(after)
        return False


class TickConnection(ClientConnection):
    """The smart-stream client connection: every binary message goes to `on_binary` as soon as it is
    read (inside `data_received`), in order, instead of queueing for `recv`.

    Taking a tick packet off a `recv` queue costs a few coroutine steps, as much as the engine's work
    on it; handed over this way, a packet costs one call, and a read's worth of frames is handled
    before the loop runs anything else. Once the handshake is done, a read's bytes go through a
    `FrameSplitter`: tick frames straight to `on_binary`, the rest to `websockets` (text messages —
    pongs, error replies — take the usual path to `recv`; control frames, fragments and the closing
    handshake are its own). `on_binary` must not raise (an exception here would end the connection).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = [size for size in (self.protocol.max_message_size, self.protocol.max_fragment_size) if size is not None]
        self._splitter = FrameSplitter(dropped, self._to_protocol, min(limits) if limits else None)
        self._fragments: list[bytes | bytearray] | None = None  # a fragmented binary message so far
        self._yielding = False
        self._tail = b""  # the handshake's last bytes read, until its reply head has ended
        self._splitting = False

    @property
    def on_binary(self) -> Callable[[bytes | bytearray], None]:
        return self._splitter.on_binary

    @on_binary.setter
    def on_binary(self, handler: Callable[[bytes | bytearray], None]) -> None:
        self._splitter.on_binary = handler

    def data_received(self, data: bytes) -> None:
        """Handle one read, then let the loop serve everything else before the next: a socket that is
        never empty (a burst) would otherwise keep the loop reading it, and REST replies — an exit's
        own — would wait behind it (uvloop reads a busy socket many times per turn)."""
        if self._splitting:
            self._splitter.feed(data)
        else:
            self._handshake(data)
        transport = self.transport
        if not self._yielding and not transport.is_closing():
            self._yielding = True
            transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._read_on)

    def _handshake(self, data: bytes) -> None:
        """Until the handshake reply's head has ended, bytes go to `websockets` alone; what follows it in
        the same read starts the splitting (or, if the handshake failed, goes to `websockets` too)."""
        joined = self._tail + data
        end = joined.find(b"\r\n\r\n")
        if end < 0:
            self._tail = joined[-3:]
            ClientConnection.data_received(self, data)
            return
        cut = end + 4 - len(self._tail)
        self._tail = b""
        ClientConnection.data_received(self, data[:cut])
        self._splitting = True
        if self.protocol.state is not State.OPEN:
            self._splitter.bypass = True  # a refused handshake: its body, and all after, is websockets' to read
        if cut < len(data):
            self._splitter.feed(data[cut:])

    def _to_protocol(self, data: bytes) -> bool:
        ClientConnection.data_received(self, data)
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


def dropped(_: bytes | bytearray) -> None:
    return None  # a frame that arrives while no session reads the connection (it is closing)
