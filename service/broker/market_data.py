"""`MarketData`: a broker login read for market data and nothing else.

Everything the service reads of the market goes through it — the guard's ticks, the alert price check's
LTP, the circuit band and exit prices of execution, recovery's candles, the symbol search — while
orders go through a `Broker`. It has no method that places, modifies or cancels an order or a GTT
rule, nor one that reads an account (order book, positions, funds): with MARKET_DATA=live it wraps a
login of its own (`service.brokers.market_data_from_settings`) whose REST client also refuses every
route but login and market data before sending (`NotMarketData`), so no order can reach that broker
through it either way. With MARKET_DATA=paper it wraps the default login's broker, whose life
(connect, close) is the runtime's to run: `owned=False`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Protocol

from service.broker.port import Progress, TickStream
from service.broker.types import Candle, SearchHit

__all__ = ["MarketData", "MarketSource", "MARKET_DATA_METHODS"]

MARKET_DATA_METHODS = ("connect", "close", "tick_stream", "ltp", "circuit_limits", "candles", "search",
                       "instrument_master")


class MarketSource(Protocol):
    """The part of a broker market data is read from (a `Broker` is one)."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    def tick_stream(self) -> TickStream: ...

    async def ltp(self, exchange: str, tradingsymbol: str, token: str) -> int: ...

    async def circuit_limits(self, exchange: str, token: str) -> tuple[int, int] | None: ...

    async def candles(self, exchange: str, token: str, interval: str, start: datetime, end: datetime) -> list[Candle]: ...

    async def search(self, exchange: str, text: str) -> list[SearchHit]: ...

    async def instrument_master(self, progress: Progress | None = None) -> bytes: ...


class MarketData:
    __slots__ = ("_source", "owned")

    def __init__(self, source: MarketSource, *, owned: bool = True) -> None:
        self._source = source
        self.owned = owned  # its own login: connected and closed through this wrapper

    def __repr__(self) -> str:
        return f"MarketData({self._source.__class__.__name__}, owned={self.owned})"

    async def connect(self) -> None:
        if self.owned:
            await self._source.connect()

    async def close(self) -> None:
        if self.owned:
            await self._source.close()

    def tick_stream(self) -> TickStream:
        return self._source.tick_stream()

    async def ltp(self, exchange: str, tradingsymbol: str, token: str) -> int:
        return await self._source.ltp(exchange, tradingsymbol, token)

    async def circuit_limits(self, exchange: str, token: str) -> tuple[int, int] | None:
        return await self._source.circuit_limits(exchange, token)

    async def candles(self, exchange: str, token: str, interval: str, start: datetime, end: datetime) -> list[Candle]:
        return await self._source.candles(exchange, token, interval, start, end)

    async def search(self, exchange: str, text: str) -> list[SearchHit]:
        return await self._source.search(exchange, text)

    async def instrument_master(self, progress: Progress | None = None) -> bytes:
        return await self._source.instrument_master(progress)

