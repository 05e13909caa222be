"""FrameSplitter against `websockets`' own parser: for any frame stream cut anywhere, the tick frames it
takes and the frames it hands over come out as the protocol alone would give them, in the same order,
with the same answers written back (pongs, closes) and the same end (errors included); and a
TickConnection splits from where the handshake reply's head ends, however the reads fall."""
from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.server import ServerProtocol
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from service.broker.smartapi.frames import FrameSplitter, TickConnection, frame_end

MAX_SIZE = 4096
URI = parse_uri("ws://127.0.0.1/smart-stream")


def wire(frame: Frame, mask: bool = False) -> bytes:
    return frame.serialize(mask=mask)


def payloads(min_size: int = 0, max_size: int = 400) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=min_size, max_size=max_size)


tick = payloads(0, 400).map(lambda data: wire(Frame(Opcode.BINARY, data)))
long_tick = st.sampled_from([126, 200, 65_535, MAX_SIZE]).map(lambda n: wire(Frame(Opcode.BINARY, bytes(n % 251 for n in range(n)))))
text = st.text(max_size=60).map(lambda t: wire(Frame(Opcode.TEXT, t.encode())))
ping = payloads(0, 20).map(lambda data: wire(Frame(Opcode.PING, data)))
pong = payloads(0, 20).map(lambda data: wire(Frame(Opcode.PONG, data)))
fragmented_text = st.lists(payloads(1, 50), min_size=2, max_size=4).map(
    lambda parts: b"".join(wire(Frame(Opcode.TEXT if i == 0 else Opcode.CONT, chunk.hex().encode(), fin=i == len(parts) - 1))
                          for i, chunk in enumerate(parts)))
fragmented = st.tuples(st.sampled_from([Opcode.BINARY, Opcode.TEXT]), st.lists(payloads(1, 50), min_size=2, max_size=4),
                       st.lists(ping, max_size=1)).map(
    lambda parts: b"".join(
        wire(Frame(parts[0] if i == 0 else Opcode.CONT,
                   chunk if parts[0] is Opcode.BINARY else chunk.hex().encode(), fin=i == len(parts[1]) - 1))
        + (parts[2][0] if i == 0 and parts[2] else b"")
        for i, chunk in enumerate(parts[1])))
close = st.just(wire(Frame(Opcode.CLOSE, Close(CloseCode.NORMAL_CLOSURE, "bye").serialize())))
# Protocol errors: the protocol must see these and fail the connection as it would alone.
masked = payloads(1, 30).map(lambda data: wire(Frame(Opcode.BINARY, data), mask=True))
reserved = payloads(1, 30).map(lambda data: bytes([0x82 | 0x20]) + wire(Frame(Opcode.BINARY, data))[1:])  # RSV2
oversized = st.just(wire(Frame(Opcode.BINARY, b"\x00" * (MAX_SIZE + 1))))
stray_continuation = payloads(1, 30).map(lambda data: wire(Frame(Opcode.CONT, data)))
tick_inside_fragments = st.just(wire(Frame(Opcode.BINARY, b"a", fin=False)) + wire(Frame(Opcode.BINARY, b"b")))

healthy = st.one_of(tick, tick, tick, long_tick, text, ping, pong, fragmented)
faulty = st.one_of(masked, reserved, oversized, stray_continuation, tick_inside_fragments)


@st.composite
def streams(draw: st.DrawFn, errors: bool = False) -> tuple[bytes, list[int]]:
    frames = draw(st.lists(st.one_of(healthy, faulty) if errors else healthy, max_size=25))
    if draw(st.booleans()):
        frames.append(draw(close))
        frames.extend(draw(st.lists(healthy, max_size=3)))  # after a close: the protocol's to ignore
    data = b"".join(frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return data, cuts


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def seen(protocol: ClientProtocol, out: list[tuple]) -> None:
    for event in protocol.events_received():
        if event.opcode is Opcode.BINARY and event.fin:
            out.append(("binary", bytes(event.data)))
        else:
            out.append((event.opcode.name, bytes(event.data), event.fin))


def answers(protocol: ClientProtocol) -> tuple[list[tuple], bool]:
    """What the client wrote back (pongs, a close), unmasked, and whether it ended its side."""
    written = protocol.data_to_send()
    server = ServerProtocol(state=State.OPEN)
    server.receive_data(b"".join(written))
    return [(event.opcode.name, bytes(event.data)) for event in server.events_received()], b"" in written


def alone(chunks: list[bytes]) -> tuple[list[tuple], tuple, State]:
    """The reference: `websockets` parsing every byte."""
    protocol, out = ClientProtocol(URI, state=State.OPEN, max_size=MAX_SIZE), []
    for chunk in chunks:
        protocol.receive_data(chunk)
        seen(protocol, out)
    return out, answers(protocol), protocol.state


def split(chunks: list[bytes]) -> tuple[list[tuple], tuple, State]:
    """The splitter in front of the protocol."""
    protocol, out = ClientProtocol(URI, state=State.OPEN, max_size=MAX_SIZE), []

    def passthrough(data: bytes) -> bool:
        protocol.receive_data(data)
        seen(protocol, out)
        return protocol.state is State.OPEN

    def on_binary(payload: bytes) -> None:
        out.append(("binary", bytes(payload)))

    splitter = FrameSplitter(on_binary, passthrough, MAX_SIZE)
    for chunk in chunks:
        splitter.feed(chunk)
    return out, answers(protocol), protocol.state


class Transport(asyncio.Transport):
    """What a connection writes, kept; reading is paused and resumed at will."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.written.append(b"")

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True


def connected(chunks_after_request: Callable[[bytes], list[bytes]]) -> tuple[list[tuple], tuple, State]:
    """A TickConnection fed the handshake's reply and what follows, cut by `chunks_after_request` (given
    the reply's head): the messages it hands on in order, what it writes back, its protocol's end. Every
    tick must have been cut by the splitter, none parsed by the protocol."""
    out: list[tuple] = []

    class Recording(TickConnection):
        def process_event(self, event: object) -> None:
            if isinstance(event, Frame):
                assert event.opcode is not Opcode.BINARY, "a tick parsed by websockets, not cut by the splitter"
                out.append((event.opcode.name, bytes(event.data), event.fin))
            super().process_event(event)

    async def run() -> tuple[list[tuple], tuple, State]:
        protocol = ClientProtocol(URI, max_size=MAX_SIZE)
        request = protocol.connect()
        protocol.send_request(request)
        protocol.data_to_send()  # the request: not what this compares
        key = request.headers["Sec-WebSocket-Key"].encode()
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        connection = Recording(protocol)
        transport = Transport()
        connection.connection_made(transport)
        connection.on_binary = lambda payload: out.append(("binary", bytes(payload)))
        for chunk in chunks_after_request(head):
            connection.data_received(chunk)
        await asyncio.sleep(0)
        server = ServerProtocol(state=State.OPEN)
        server.receive_data(b"".join(transport.written))
        written = [(event.opcode.name, bytes(event.data)) for event in server.events_received()]
        return out, (written, b"" in transport.written), protocol.state

    return asyncio.run(run())


connection_streams = st.lists(st.one_of(tick, tick, long_tick, text, ping, pong, fragmented_text), max_size=15)


@settings(max_examples=300, deadline=None)
@given(streams())
def test_tick_frames_and_the_rest_come_out_as_the_protocol_alone_gives_them(stream):
    data, cuts = stream
    assert split(pieces(data, cuts)) == alone(pieces(data, cuts))


@settings(max_examples=300, deadline=None)
@given(streams(errors=True))
def test_protocol_errors_end_the_connection_as_they_would_without_the_splitter(stream):
    data, cuts = stream
    assert split(pieces(data, cuts)) == alone(pieces(data, cuts))


@settings(max_examples=150, deadline=None)
@given(connection_streams, st.data())
def test_frames_that_come_with_the_handshake_reply_are_split_from_where_its_head_ends(frames, pick):
    data = b"".join(frames)

    def cut(head: bytes) -> list[bytes]:
        stream = head + data
        cuts = sorted(pick.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts"))
        return pieces(stream, cuts)

    assert connected(cut) == alone([data])


def test_a_frame_longer_than_max_size_ends_the_connection_from_its_head_without_waiting_for_its_body():
    head_only = bytes([0x82, 127]) + (1 << 40).to_bytes(8, "big")  # a terabyte declared, nothing sent
    stream = wire(Frame(Opcode.BINARY, b"tick")) + head_only
    assert split([stream]) == alone([stream])
    assert split([stream])[2] is not State.OPEN


def test_a_tick_frame_costs_one_call_and_a_partial_one_waits_for_its_rest():
    frames = wire(Frame(Opcode.BINARY, b"x" * 51)) + wire(Frame(Opcode.BINARY, b"y" * 379))
    got, handed = [], []
    splitter = FrameSplitter(got.append, lambda data: handed.append(data) or True)
    splitter.feed(frames[:60])
    assert got == [b"x" * 51] and handed == []
    splitter.feed(frames[60:])
    assert got == [b"x" * 51, b"y" * 379] and handed == []


def test_frame_end_needs_the_whole_header_and_payload():
    frame = wire(Frame(Opcode.BINARY, b"z" * 300))  # 4-byte header
    assert [frame_end(frame[:n], 0) for n in (1, 3, 303)] == [-1, -1, -1]
    assert frame_end(frame, 0) == 304 and frame_end(frame + b"\x82", 0) == 304
    masked = wire(Frame(Opcode.BINARY, b"z"), mask=True)
    assert frame_end(masked, 0) == len(masked) == 7
