"""An HTTP/1.1 load generator light enough not to be the bottleneck: raw keep-alive connections.

`python -m bench._load --port N --path /opentrade --count 3000 --connections 32 [--alerts]` posts
`count` JSON bodies over `connections` persistent connections, each waiting for its reply before the
next request, and prints `count seconds p50_ms p99_ms statuses` (statuses as JSON). With --alerts
every body is a distinct alert (its own id and strategy), so none is a duplicate of another. With
`--port` given more than once (several intakes of a cluster), the connections are dealt out among
the ports in turn, each with its share of the bodies; the figures are of all of them together.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

SECRET = "paper-webhook-secret"


def alert(n: int) -> bytes:
    return json.dumps({"symbolname": "NSE:SBIN", "signal": "buy", "price": 800, "type": "equity",
                       "strategyname": f"load{n}", "id": f"load-{n}", "quantity": 1,
                       "stoploss": {"type": "points", "value": 5}}).encode()


def request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Webhook-Secret: {SECRET}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def worker(port: int, requests: list[bytes], latencies: list[float], statuses: Counter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[head[9:12].decode()] += 1
    finally:
        writer.close()


async def main(ports: list[int], path: str, count: int, connections: int, alerts: bool, offset: int) -> None:
    bodies = [alert(offset + n) if alerts else b'{"symbolname": "NSE:SBIN", "price": 800, "n": %d}' % n
              for n in range(count)]
    requests = [request(path, body) for body in bodies]
    latencies: list[float] = []
    statuses: Counter = Counter()
    started = time.perf_counter()
    await asyncio.gather(*(worker(ports[c % len(ports)], requests[c::connections], latencies, statuses)
                           for c in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{count} {elapsed:.6f} {p50 * 1000:.3f} {p99 * 1000:.3f} {json.dumps(dict(statuses))}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--path", default="/opentrade")
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--alerts", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.path, args.count, args.connections, args.alerts, args.offset))
