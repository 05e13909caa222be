"""A smart-stream source that is never the bottleneck: the same LTP frames, as fast as the reader takes them.

`python -m bench._blaster --port N --tokens T [--held]`. It accepts any handshake on any path, answers
protocol and text pings, ignores subscriptions, and writes pre-built WebSocket frames (unmasked server
frames of the exchange's 51-byte LTP packets) straight to the socket, so the reader's speed alone sets
the rate — TCP backpressure paces the writer. With --held it writes nothing until SIGUSR1; SIGUSR2
holds every connection again (pings are still answered), so a reader can connect, and be made ready,
before the flood starts. Prices walk within +-0.5 % of each token's base and about
one tick in a thousand jumps 1.5 %, crossing the nearest stops of bench._tickguard's seeded trades.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import signal
import struct
import time

from bench._wsframes import accept_upgrade, read_frame

NOW = 1_736_139_600_000


def base_price(n: int) -> int:
    return 50_000 + n * 200  # Rs 500 .. Rs 2,498, on the 5-paise grid


def fake_token(n: int) -> str:
    return str(900_000 + n)


def ltp_frames(tokens: int, count: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    frames = []
    for sequence in range(count):
        n = rng.randrange(tokens)
        base = base_price(n)
        if rng.random() < 0.001:
            move = base * 15 // 1000 * rng.choice((-1, 1))
        else:
            move = rng.randint(-base // 200, base // 200)
        ltp = (base + move) // 5 * 5
        packet = struct.pack("<BB25sqqq", 1, 1, fake_token(n).encode(), sequence, NOW + sequence, ltp)
        frames.append(b"\x82" + bytes([len(packet)]) + packet)
    return b"".join(frames)


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    key = b""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    accept_upgrade(writer, key)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read client frames; answer pings (protocol and text); end on close."""
    while True:
        opcode, data = await read_frame(reader)
        if opcode == 0x9:
            writer.write(bytes([0x8A, len(data)]) + data)
        elif opcode == 0x1 and data == b"ping":
            writer.write(b"\x81\x04pong")
        elif opcode == 0x8:  # the closing handshake answered at once: the reader need not wait out its timeout
            writer.write(b"\x88" + bytes([len(data[:2])]) + data[:2])
            return


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, blob: bytes,
                      flowing: asyncio.Event) -> None:
    try:
        await _handshake(reader, writer)
        answering = asyncio.create_task(_answer(reader, writer))
        chunk = 53 * 1200  # whole frames, so a pong written between chunks never splits one
        while not answering.done():
            for start in range(0, len(blob), chunk):
                if answering.done():  # closed by the reader: no more frames after the close
                    break
                if not flowing.is_set():  # held: until released, or the reader goes
                    released = asyncio.create_task(flowing.wait())
                    await asyncio.wait([answering, released], return_when=asyncio.FIRST_COMPLETED)
                    released.cancel()
                    if answering.done():
                        break
                writer.write(blob[start:start + chunk])
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int, tokens: int, frames: int, held: bool = False) -> None:
    blob = ltp_frames(tokens, frames)
    flowing = asyncio.Event()
    if not held:
        flowing.set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, flowing.set)
    loop.add_signal_handler(signal.SIGUSR2, flowing.clear)
    server = await asyncio.start_server(lambda r, w: _connection(r, w, blob, flowing), "127.0.0.1", port)
    print(f"ready {time.time():.3f}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--held", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.tokens, args.frames, args.held))
