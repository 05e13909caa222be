"""The tick→exit floor of the wire-stub rig: a bare client that answers a crossing frame with a placeOrder.

`python -m bench._wireecho --root http://127.0.0.1:N --tokens tokens.json --first-sequence S`. It opens
the stub's `/smart-stream` as tickguard's adapter opens it (`websockets` with tickguard's
`TickConnection`, which reads tick frames itself; `compression=None`, `max_queue=1024`, on the event
loop tickguard runs), subscribes the given NSE tokens, and takes every frame; a 51-byte LTP frame
whose sequence is S or more is a crossing, answered at once by a placeOrder POST on a keep-alive
aiohttp session (tickguard's REST client), tagged `echo<sequence - S>`, from a task
of its own as tickguard's exit is. Nothing else: no parsing beyond the sequence, no engine, no store.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import struct
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

from service.broker.smartapi.frames import TickConnection

SEQUENCE = struct.Struct("<q")
SEQUENCE_AT = 27  # mode, exchangeType, token[25], then the sequence


async def main(root: str, tokens: list[str], first: int) -> None:
    placed: set[asyncio.Task] = set()
    url = root.replace("http", "ws", 1) + "/smart-stream"
    async with aiohttp.ClientSession() as http, \
            connect(url, compression=None, max_queue=1024, ping_interval=10.0, ping_timeout=10.0,
                    create_connection=TickConnection) as ws:

        async def place(n: int) -> None:
            body = {"variety": "NORMAL", "tradingsymbol": "ECHO-EQ", "symboltoken": "0", "transactiontype": "SELL",
                    "exchange": "NSE", "ordertype": "LIMIT", "producttype": "INTRADAY", "duration": "DAY",
                    "price": "1", "quantity": "1", "ordertag": f"echo{n}"}
            async with http.post(f"{root}/rest/secure/angelbroking/order/v1/placeOrder", json=body) as reply:
                await reply.read()

        def on_binary(message: bytes) -> None:
            if len(message) == 51:
                sequence = SEQUENCE.unpack_from(message, SEQUENCE_AT)[0]
                if sequence >= first:
                    task = asyncio.create_task(place(sequence - first))
                    placed.add(task)
                    task.add_done_callback(placed.discard)

        ws.on_binary = on_binary
        await ws.send(json.dumps({"action": 1, "params": {"mode": 1, "tokenList": [{"exchangeType": 1,
                                                                                    "tokens": tokens}]}}))
        print("subscribed", flush=True)
        async for _text in ws:  # pongs; the frames went to on_binary as they were read
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--first-sequence", type=int, required=True)
    args = parser.parse_args()
    from service.cli import run
    from service.settings import load_settings

    run(main(args.root, json.loads(args.tokens.read_text()), args.first_sequence), load_settings().event_loop)
