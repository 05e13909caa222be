"""Crossing trades timed by the paper exchange's own stamps, through any tickguard that takes alerts: the
single process (`tickguard serve`) or a cluster (alerts to an intake; the stop fired by a guard leader,
sent over the bus to the executor, which places the exit).

A crossing trade is a real alert's: bought through `/opentrade`, filled by the exchange and armed, its
stop `step` x 0.5 % below the entry. Trades are opened step by step over a set of instruments, so a
tick 0.2 % through one trade's stop crosses no other (crossings go in the order the trades were opened).

Stamps (`GET /paper/v1/stamps`, one clock, CLOCK_MONOTONIC in every process of the machine, so this
process's `perf_counter_ns` compares with them too): a tick is *played* when the exchange's price book
takes it (whether or not anyone subscribes), *sent* when its frame is handed to a subscriber's socket,
and an order is *received* when placeOrder reaches the exchange's handler.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from bench import _procs
from bench.latency import base36, order_updates, rupees

__all__ = ["Crossing", "Exchange", "Exit", "background", "fed_rate", "open_crossings", "stop_background"]


@dataclass(frozen=True, slots=True)
class Crossing:
    trade_id: int
    exchange: str
    token: str
    stop: int  # paise

    @property
    def tag(self) -> str:
        return f"tg{base36(self.trade_id)}X1"

    @property
    def ltp(self) -> int:
        """The crossing tick: 0.2 % through the stop, on the 5-paise grid."""
        return (self.stop - self.stop // 500) // 5 * 5


@dataclass(frozen=True, slots=True)
class Exit:
    """One crossing's stamps, in nanoseconds of CLOCK_MONOTONIC."""

    asked_ns: int  # this process, just before it asked the exchange for the crossing tick
    played_ns: int  # the exchange's price book took the crossing tick
    sent_ns: int | None  # its frame handed to a subscriber's socket (None: nobody subscribed then)
    received_ns: int  # the exit's placeOrder reached the exchange

    @property
    def from_sent_ms(self) -> float:
        if self.sent_ns is None:
            raise ValueError("the crossing tick was sent to no socket")
        return (self.received_ns - self.sent_ns) / 1e6

    @property
    def from_played_ms(self) -> float:
        return (self.received_ns - self.played_ns) / 1e6


async def open_crossings(service_url: str, instruments: list, count: int, *, first_step: int = 1,
                         prefix: str = "cross") -> list[Crossing]:
    """`count` crossing trades over `instruments` ((instrument, price) pairs), one step at a time (a step's
    entries leave at the broker's pace within ENTRY_TTL_S), each once it is filled and armed."""
    opened: list[Crossing] = []
    async with httpx.AsyncClient(base_url=service_url, headers=_procs.HEADERS, timeout=10) as service:
        step = first_step
        while len(opened) < count:
            batch = []
            for instrument, _price in instruments[:count - len(opened)]:
                body = {"symbolname": f"NSE:{instrument.name}", "signal": "buy", "price": 100, "type": "equity",
                        "strategyname": f"{prefix}-{instrument.token}-{step}", "quantity": 1,
                        "stoploss": {"type": "entry_pct", "value": 0.5 * step}}
                reply = await service.post("/opentrade", json=body)
                if reply.status_code != 202:
                    raise RuntimeError(f"crossing alert refused: {reply.status_code} {reply.text}")
                batch.append((reply.json()["trades"][0], instrument))
            for trade_id, instrument in batch:
                trade = await _armed(service, trade_id)
                opened.append(Crossing(trade_id, "NSE", instrument.token, trade["stop"]))
            step += 1
    return opened


async def _armed(service: httpx.AsyncClient, trade_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        trade = (await service.get(f"/trades/{trade_id}")).json()["trade"]
        if trade["state"] == "OPEN" and trade["stop"] is not None:
            return trade
        if time.monotonic() > deadline:
            raise TimeoutError(f"crossing trade {trade_id} was never filled and armed: {trade}")
        await asyncio.sleep(0.05)


class Exchange:
    """The paper exchange's control API and the demo login's order updates (how an exit is noticed)."""

    def __init__(self, paper_url: str) -> None:
        self.paper_url = paper_url
        self.arrivals: dict[str, float] = {}

    async def __aenter__(self) -> Self:
        headers = _procs.login(self.paper_url)
        self.listener = asyncio.create_task(order_updates(self.paper_url, {"Authorization": headers["Authorization"]},
                                                          self.arrivals))
        self.control = httpx.AsyncClient(base_url=f"{self.paper_url}/paper/v1", timeout=10)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.listener.cancel()
        await asyncio.gather(self.listener, return_exceptions=True)
        await self.control.aclose()

    async def cross(self, crossing: Crossing, *, timeout: float = 10) -> Exit:
        """Play the crossing tick and wait for the trade's exit at the exchange; its stamps."""
        asked = time.perf_counter_ns()
        reply = await self.control.post("/ticks", json={"exchange": crossing.exchange, "token": crossing.token,
                                                         "ltp": rupees(crossing.ltp)})
        if reply.status_code != 200:
            raise RuntimeError(f"crossing tick refused: {reply.text}")
        while crossing.tag not in self.arrivals:
            if self.listener.done():
                self.listener.result()  # the order-update socket's failure
                raise RuntimeError("the order-update socket closed")
            if time.perf_counter_ns() - asked > timeout * 1e9:
                raise TimeoutError(f"no exit {crossing.tag} at the exchange within {timeout:.0f} s")
            await asyncio.sleep(0.0005)
        stamps = (await self.control.get("/stamps", params={"exchange": crossing.exchange, "token": crossing.token,
                                                            "tag": crossing.tag})).json()
        received_ns = stamps["order"][0]
        played = [ns for ltp, ns, _ in stamps["played"] if ltp == crossing.ltp and asked <= ns < received_ns]
        sent = [ns for ltp, ns, _ in stamps["ticks"] if ltp == crossing.ltp and asked <= ns < received_ns]
        if not played:
            raise RuntimeError(f"no played stamp of the crossing tick {crossing.ltp} for {crossing.tag}: {stamps}")
        return Exit(asked, played[-1], sent[-1] if sent else None, received_ns)


def background(paper_url: str, instruments: list, rate: int, walk) -> list[str]:
    """A price path on each of `instruments` at `rate` points/s (long enough for the run); the path ids."""
    ids = []
    for instrument, price in instruments:
        body = {"exchange": "NSE", "token": instrument.token, "points": walk(price), "rate": rate, "repeat": 1_000}
        reply = httpx.post(f"{paper_url}/paper/v1/paths", json=body, timeout=10)
        if reply.status_code != 201:
            raise RuntimeError(f"price path refused: {reply.text}")
        ids.append(reply.json()["path_id"])
    return ids


def stop_background(paper_url: str, path_ids: list[str]) -> None:
    for path_id in path_ids:
        httpx.delete(f"{paper_url}/paper/v1/paths/{path_id}", timeout=10)


def fed_rate(paper_url: str, instruments: list) -> tuple[float, float]:
    """(played, sent) ticks/s of the background instruments now, from the exchange's newest stamps of each
    (sent: handed to a subscriber's socket — what tickguard, or the guard leaders, were fed)."""
    played = sent = 0.0
    for instrument, _price in instruments:
        stamps = httpx.get(f"{paper_url}/paper/v1/stamps", params={"exchange": "NSE", "token": instrument.token},
                           timeout=10).json()
        played += _rate([ns for _, ns, _ in stamps["played"]])
        sent += _rate([ns for _, ns, _ in stamps["ticks"]])
    return played, sent


def _rate(stamps_ns: list[int]) -> float:
    if len(stamps_ns) < 2 or stamps_ns[-1] == stamps_ns[0]:
        return 0.0
    return (len(stamps_ns) - 1) / ((stamps_ns[-1] - stamps_ns[0]) / 1e9)
