"""A lease holder in a process of its own, for the pause test (tests/cluster/test_lease.py).

    python -m tests.cluster.lease_holder URL PREFIX NAME TTL_S

Acquires NAME, prints {"token": …}, and keeps renewing; the test SIGSTOPs it past the TTL and SIGCONTs it.
It then prints what it finds as soon as it finds it: {"held": false, "lost_set": …, "token": …} when
held() turns False, and {"lost": token} once `lost` is set."""
from __future__ import annotations

import asyncio
import json
import sys

from service.cluster.bus import Bus
from service.cluster.lease import Lease


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main(url: str, prefix: str, name: str, ttl_s: float) -> None:
    bus = Bus(url, prefix, lease_ttl_s=ttl_s, name="lease-holder")
    await bus.connect()
    try:
        lease = Lease(bus, name, "paused-holder")
        token = await lease.acquire(poll_s=0.05)
        say(token=token)
        while lease.held():
            await asyncio.sleep(0.005)
        say(held=lease.held(), lost_set=lease.lost.is_set(), token=lease.token)
        await asyncio.wait_for(lease.lost.wait(), timeout=10)
        say(lost=token, token=lease.token)
    finally:
        await bus.close()


if __name__ == "__main__":
    url, prefix, name, ttl_s = sys.argv[1:5]
    asyncio.run(main(url, prefix, name, float(ttl_s)))
