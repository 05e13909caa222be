"""The ingest baseline: a bare `websockets` receive loop, as the adapter's own connection is set up.

`python -m bench._receiver --url ws://... --warmup 1 --seconds 5` prints `frames seconds`: the binary
frames received in the measured window and its length.
"""
from __future__ import annotations

import argparse
import asyncio
import time

from websockets.asyncio.client import connect


async def main(url: str, warmup: float, seconds: float) -> None:
    async with connect(url, compression=None, max_queue=1024, ping_interval=10.0, ping_timeout=10.0) as ws:
        await ws.send('{"action": 1, "params": {"mode": 1, "tokenList": []}}')
        recv = ws.recv
        started = time.perf_counter()
        while time.perf_counter() - started < warmup:
            await recv()
        frames, started = 0, time.perf_counter()
        deadline = started + seconds
        while True:
            for _ in range(1000):  # the clock read is amortised; the loop body is the bare receive
                if type(await recv()) is bytes:
                    frames += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        print(f"{frames} {now - started:.6f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    from service.cli import run
    from service.settings import load_settings

    run(main(args.url, args.warmup, args.seconds), load_settings().event_loop)  # the loop tickguard runs on
