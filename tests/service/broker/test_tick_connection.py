"""TickConnection on a raw socket: frames that come in the same read as the handshake reply reach
`on_binary` in order with the text after them, a ping is answered, and a refused handshake is
`websockets`' to report."""
from __future__ import annotations

from websockets.frames import Frame, Opcode


def encode(frame: Frame, mask: bool = False) -> bytes:
    return frame.serialize(mask=mask)


async def _raw_server(reply: bytes):
    """A server that reads the upgrade request and answers `reply` (with the accept key filled in) in
    one write; it records what the client sends after."""
    import asyncio
    import base64
    import hashlib

    heard: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key"))
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(reply.replace(b"{accept}", accept))
        try:
            while data := await reader.read(65536):
                heard.append(data)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, heard


async def test_frames_in_the_handshake_reply_s_read_are_split_and_control_frames_answered():
    import asyncio

    from websockets.asyncio.client import connect

    from service.broker.smartapi.frames import TickConnection
    from tests.service.broker.conftest import until

    ticks_ = [b"a" * 51, b"b" * 379]
    reply = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: {accept}\r\n\r\n"
             + b"".join(encode(Frame(Opcode.BINARY, t)) for t in ticks_)
             + encode(Frame(Opcode.TEXT, b"pong")) + encode(Frame(Opcode.PING, b"are you there")))
    server, heard = await _raw_server(reply)
    port = server.sockets[0].getsockname()[1]
    got: list[bytes] = []

    class Collecting(TickConnection):  # taking ticks from the start: these come with the handshake's reply
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.on_binary = lambda message: got.append(bytes(message))

    async with server, connect(f"ws://127.0.0.1:{port}", create_connection=Collecting, compression=None) as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == "pong"
        assert got == ticks_  # handed over before the text that followed them
        pong = encode(Frame(Opcode.PONG, b"are you there"))  # unmasked form: the client masks it
        await until(lambda: len(b"".join(heard)) >= len(pong) + 4, "the automatic pong")
        first = b"".join(heard)
        assert first[0] == 0x8A and first[1] & 0x7F == len(b"are you there")


async def test_a_refused_handshake_is_websockets_to_read():
    import pytest
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    from service.broker.smartapi.frames import TickConnection

    body = b'{"error": "Invalid Header"}' + bytes([0x82, 0x03]) + b"abc"  # bytes that would parse as a frame
    reply = (b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(body)).encode() + b"\r\n\r\n" + body)
    server, _heard = await _raw_server(reply)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{port}", create_connection=TickConnection):
                pass
    assert refused.value.response.status_code == 401 and refused.value.response.body == body
