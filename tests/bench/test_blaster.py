"""bench._blaster --held: a reader connects and is answered, but no tick comes until SIGUSR1."""
from __future__ import annotations

import asyncio
import signal

from websockets.asyncio.client import connect

from bench import _procs


async def test_a_held_blaster_writes_no_tick_until_it_is_released(tmp_path):
    port = _procs.free_port()
    blaster = _procs.Process("blaster", ["-m", "bench._blaster", "--port", str(port), "--tokens", "10",
                                         "--frames", "1000", "--held"], tmp_path, ready_text="ready")
    with blaster:
        async with connect(f"ws://127.0.0.1:{port}/smart-stream", compression=None) as ws:
            await ws.send("ping")
            assert await asyncio.wait_for(ws.recv(), 10) == "pong"  # answered, and nothing came before it
            blaster.signal(signal.SIGUSR1)
            frame = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(frame, bytes) and len(frame) == 51  # an LTP packet
