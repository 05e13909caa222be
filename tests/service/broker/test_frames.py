"""FrameSplitter against `websockets` itself: any stream of server frames, cut into reads anywhere, gives
the same frames in the same order (tick frames taken directly, the rest through a websockets protocol)
as one websockets protocol fed the whole stream; and the same end (a close, a protocol error)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from service.broker.smartapi.frames import FrameSplitter

URI = parse_uri("ws://127.0.0.1/smart-stream")
MAX_SIZE = 1_000


def protocol() -> ClientProtocol:
    return ClientProtocol(URI, state=State.OPEN, max_size=MAX_SIZE)


def seen(event: Frame) -> tuple:
    return (event.opcode, event.fin, bytes(event.data))


payloads = st.binary(max_size=300)
ticks = st.sampled_from([51, 123, 379]).flatmap(lambda n: st.binary(min_size=n, max_size=n)).map(
    lambda data: [Frame(Opcode.BINARY, data)])  # LTP, QUOTE, SNAP_QUOTE packets
binary = payloads.map(lambda data: [Frame(Opcode.BINARY, data)])
text = st.text(max_size=60).map(lambda s: [Frame(Opcode.TEXT, s.encode())])
control = st.sampled_from([Opcode.PING, Opcode.PONG]).flatmap(
    lambda op: st.binary(max_size=125).map(lambda data: [Frame(op, data)]))
fragmented = st.tuples(st.sampled_from([Opcode.BINARY, Opcode.TEXT]), st.lists(st.binary(max_size=40), min_size=2,
                                                                                max_size=4)).map(
    lambda t: [Frame(t[0] if n == 0 else Opcode.CONT, part if t[0] is Opcode.BINARY else part.hex().encode(),
                     fin=n == len(t[1]) - 1) for n, part in enumerate(t[1])])
# a data frame inside a fragmented message (a protocol error), or a ping between fragments (allowed)
interrupted = st.tuples(fragmented, st.one_of(ticks, control)).map(lambda t: t[0][:1] + t[1] + t[0][1:])
closing = st.just([Frame(Opcode.CLOSE, b"\x03\xe8bye")])
oversized = st.just([Frame(Opcode.BINARY, b"x" * (MAX_SIZE + 1))])
masked = st.binary(min_size=1, max_size=60).map(lambda data: [Frame(Opcode.BINARY, data)]).map(lambda f: ("masked", f))


def encode(frame: Frame, mask: bool = False) -> bytes:
    return frame.serialize(mask=mask)


def stream_of(groups: list) -> bytes:
    out = []
    for group in groups:
        if isinstance(group, tuple):  # a masked frame: a protocol error from a server
            out += [encode(frame, mask=True) for frame in group[1]]
        else:
            out += [encode(frame) for frame in group]
    return b"".join(out)


def reference(data: bytes, cuts: list[int]) -> tuple[list, State]:
    whole = protocol()
    events = []
    for chunk in chunks(data, cuts):
        whole.receive_data(chunk)
        events += [seen(e) for e in whole.events_received()]
    return events, whole.state


def split(data: bytes, cuts: list[int]) -> tuple[list, State, int]:
    other = protocol()
    events: list = []
    taken = [0]

    def on_binary(payload: bytes) -> None:
        taken[0] += 1
        events.append((Opcode.BINARY, True, bytes(payload)))

    def on_other(frames: bytes) -> bool:
        other.receive_data(frames)
        events.extend(seen(e) for e in other.events_received())
        return other.state is State.OPEN

    splitter = FrameSplitter(on_binary, on_other, MAX_SIZE)
    for chunk in chunks(data, cuts):
        splitter.feed(chunk)
    return events, other.state, taken[0]


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=300)
@given(groups=st.lists(st.one_of(ticks, binary, text, control, fragmented, interrupted), max_size=25),
       end=st.one_of(st.just([]), closing.map(lambda c: [c]), oversized.map(lambda o: [o]), masked.map(lambda m: [m])),
       after=st.lists(st.one_of(ticks, text), max_size=3),
       cuts=st.lists(st.integers(0, 20_000), max_size=12))
def test_the_same_frames_in_the_same_order_as_websockets_alone(groups, end, after, cuts):
    data = stream_of(groups + end + after)
    events, state = reference(data, cuts)
    got, got_state, _ = split(data, cuts)
    assert got == events
    assert got_state == state


def test_tick_frames_skip_websockets_and_a_frame_cut_across_reads_waits_for_its_rest():
    ticks_ = [bytes([n]) * 51 for n in range(3)] + [b"q" * 379]
    data = b"".join(encode(Frame(Opcode.BINARY, t)) for t in ticks_) + encode(Frame(Opcode.TEXT, b"pong"))
    events, _state, taken = split(data, [1, 30, 54, 200, 300])
    assert taken == 4
    assert events == [(Opcode.BINARY, True, t) for t in ticks_] + [(Opcode.TEXT, True, b"pong")]


def test_after_a_close_everything_goes_to_websockets():
    data = (encode(Frame(Opcode.CLOSE, b"\x03\xe8")) + encode(Frame(Opcode.BINARY, b"late")))
    events, state, taken = split(data, [])
    assert taken == 0 and state is State.CLOSING
    assert events == reference(data, [])[0]


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
