"""bench._load: with several ports the connections are dealt out among them, every body sent once."""
from __future__ import annotations

import asyncio
import json
from collections import Counter

from bench import _load


async def _counting_server(seen: Counter, port_of: dict) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                body = json.loads(await reader.readexactly(length))
                seen[port] += 1
                port_of[body["id"]] = port
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_the_connections_are_dealt_out_among_the_ports(capsys):
    seen: Counter = Counter()
    port_of: dict = {}
    servers = [await _counting_server(seen, port_of) for _ in range(2)]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    try:
        await _load.main(ports, "/opentrade", 40, 4, alerts=True, offset=100)
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
    assert seen == {ports[0]: 20, ports[1]: 20}
    assert sorted(port_of) == [f"load-{n}" for n in range(100, 140)]  # each alert once, distinct ids
    count, _seconds, _p50, _p99, statuses = capsys.readouterr().out.strip().split(" ", 4)
    assert count == "40" and json.loads(statuses) == {"202": 40}
