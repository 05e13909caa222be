"""Tick parser throughput: packets/s of `parse_tick` against the SDK's `_parse_binary_data`, per mode;
and the socket's frame reader: tick frames/s of `FrameSplitter` against `websockets`' own parser
(`ClientProtocol.receive_data` and its events, what a connection does per read), on the same bytes.

Both parse the same 2 000 packets (1 000 tokens over NSE and NFO, prices on a 5-paise grid, a full
best-five book in SNAP_QUOTE) in the same run; the SDK is imported with its import-time internet
call cut off and its parser used on an instance built without `__init__` (which writes ./logs). The
frame readers take the LTP packets as 100 000 unmasked binary frames in 64 KB reads, as the socket
delivers them.
"""
from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any
from unittest import mock

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from bench.common import Figure, best_rate
from service.broker.smartapi.frames import FrameSplitter
from service.broker.smartapi.parsing import LTP, QUOTE, SNAP_QUOTE, parse_tick

PACKETS = 2_000
SEED = 11
NOW = 1_736_139_600_000


def make_packets(mode: int, rng: random.Random) -> list[bytes]:
    packets = []
    for sequence in range(PACKETS):
        token = str(rng.randrange(1_000, 60_000)).encode()
        ltp = rng.randrange(1_000, 500_000) // 5 * 5
        packet = struct.pack("<BB25sqqq", mode, rng.choice((1, 2)), token, sequence, NOW + sequence, ltp)
        if mode in (QUOTE, SNAP_QUOTE):
            packet += struct.pack("<qqqddqqqq", 25, ltp, 1_000_000 + sequence, 5e4, 4e4, ltp, ltp + 50, ltp - 50, ltp)
        if mode == SNAP_QUOTE:
            packet += struct.pack("<qqq", NOW // 1000, 10_000, 0)
            packet += b"".join(struct.pack("<HqqH", 1, 100, ltp - 5 * (n + 1), 3) for n in range(5))
            packet += b"".join(struct.pack("<HqqH", 0, 100, ltp + 5 * (n + 1), 3) for n in range(5))
            packet += struct.pack("<qqqq", ltp * 2, ltp // 2, ltp + 9_000, ltp - 9_000)
        packets.append(packet)
    return packets


def sdk_parser() -> Callable[[bytes], Any]:
    with mock.patch("requests.get", side_effect=OSError("no network in benchmarks")):
        import SmartApi  # noqa: F401  (its package import runs the internet call we cut off)
        from SmartApi.smartWebSocketV2 import SmartWebSocketV2
    return SmartWebSocketV2.__new__(SmartWebSocketV2)._parse_binary_data


def _work(parse: Callable[[bytes], Any], packets: list[bytes], rounds: int) -> Callable[[], int]:
    def work() -> int:
        for _ in range(rounds):
            for packet in packets:
                parse(packet)
        return rounds * len(packets)

    return work


READ = 65_536
FRAMES = 100_000


def _reads(packets: list[bytes]) -> list[bytes]:
    stream = b"".join(Frame(Opcode.BINARY, packets[n % len(packets)]).serialize(mask=False) for n in range(FRAMES))
    return [stream[at:at + READ] for at in range(0, len(stream), READ)]


def _splitting(reads: list[bytes]) -> Callable[[], int]:
    def work() -> int:
        count = [0]

        def take(_: bytes) -> None:
            count[0] += 1

        splitter = FrameSplitter(take, lambda data: True, 2 ** 20)
        for read in reads:
            splitter.feed(read)
        return count[0]

    return work


def _protocol(reads: list[bytes]) -> Callable[[], int]:
    uri = parse_uri("ws://127.0.0.1/smart-stream")

    def work() -> int:
        protocol, count = ClientProtocol(uri, state=State.OPEN), 0
        for read in reads:
            protocol.receive_data(read)
            for event in protocol.events_received():
                if event.opcode is Opcode.BINARY:
                    count += 1
        return count

    return work


def run(quick: bool) -> list[Figure]:
    rng = random.Random(SEED)
    sdk = sdk_parser()
    repeats = 9 if quick else 25
    figures = []
    for mode, name in ((LTP, "LTP"), (QUOTE, "QUOTE"), (SNAP_QUOTE, "SNAP_QUOTE")):
        packets = make_packets(mode, rng)
        ours, theirs = _work(parse_tick, packets, 10), _work(sdk, packets, 1)
        ours_rate = theirs_rate = 0.0
        for _ in range(repeats):  # interleaved, so both see the same machine (other work, clock boost)
            ours_rate = max(ours_rate, best_rate(ours, 1))
            theirs_rate = max(theirs_rate, best_rate(theirs, 1))
        figures.append(Figure(f"parser {name} packets", ours_rate, "packets/s", theirs_rate, ">= 10x"))
        if mode == LTP:
            reads = _reads(packets)
            split, parsed = _splitting(reads), _protocol(reads)
            assert split() == parsed() == FRAMES
            split_rate = parsed_rate = 0.0
            for _ in range(3 if quick else 7):
                split_rate = max(split_rate, best_rate(split, 1))
                parsed_rate = max(parsed_rate, best_rate(parsed, 1))
            figures.append(Figure("frame reader, LTP tick frames", split_rate, "frames/s", parsed_rate, "shown"))
    return figures
