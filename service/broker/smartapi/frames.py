"""The smart-stream socket: `TickConnection`, a `websockets` client connection that hands every binary
message (a tick packet) to `on_binary` as the protocol parses it, instead of queueing it for `recv`.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode

__all__ = ["TickConnection", "dropped"]


class TickConnection(ClientConnection):
    """The smart-stream client connection: every binary message goes to `on_binary` as soon as the
    protocol has parsed it (inside `data_received`), in order, instead of queueing for `recv`.

    Taking a tick packet off a `recv` queue costs a few coroutine steps, as much as the engine's work
    on it; handed over this way, a packet costs one call, and a read's worth of frames is handled
    before the loop runs anything else. Text messages (pongs, error replies) and control frames take
    the usual path; `on_binary` must not raise (an exception here would end the connection).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_binary: Callable[[bytes | bytearray], None] = dropped
        self._fragments: list[bytes | bytearray] | None = None  # a fragmented binary message so far
        self._yielding = False

    def data_received(self, data: bytes) -> None:
        """Handle one read, then let the loop serve everything else before the next: a socket that is
        never empty (a burst) would otherwise keep the loop reading it, and REST replies — an exit's
        own — would wait behind it (uvloop reads a busy socket many times per turn)."""
        super().data_received(data)
        transport = self.transport
        if not self._yielding and not transport.is_closing():
            self._yielding = True
            transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._read_on)

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
