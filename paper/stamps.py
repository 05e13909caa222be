"""Exchange-side timestamps: when a tick left for a socket, when an order arrived.

A latency measured from outside the exchange includes the measuring client's own trips; these stamps
are taken inside it, on one clock (`time.perf_counter_ns`, CLOCK_MONOTONIC, so comparable with any
process on the machine), so "the exchange sent the crossing tick → the exchange received the exit
order" is one subtraction. Read them with `GET /paper/v1/stamps?exchange=&token=&tag=`.

- A tick is stamped when its frame is handed to the socket of its first subscriber (the writer task
  calls `send`, which writes it out before it waits for the buffer to drain), once per frame, newest
  `per_token` kept for each token.
- A tick is also stamped when the price book plays it (`played`), sent or not: a tick changed while no
  frame could go out (no subscriber, a stalled feed, an outbox dropped) has only this stamp.
- An order is stamped when placeOrder is received (before its session is checked), by `ordertag`;
  the newest `orders` tags are kept.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["Stamps"]


class Stamps:
    def __init__(self, clock: Callable[[], float] = time.time, *, per_token: int = 512, orders: int = 100_000) -> None:
        self.clock = clock
        self.per_token = per_token
        self.order_limit = orders
        self._ticks: dict[tuple[str, str], deque[tuple[int, int, int]]] = {}
        self._played: dict[tuple[str, str], deque[tuple[int, int, int]]] = {}
        self._orders: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def tick_sent(self, exchange: str, token: str, ltp: int) -> None:
        sent = self._ticks.get((exchange, token))
        if sent is None:
            sent = self._ticks[(exchange, token)] = deque(maxlen=self.per_token)
        sent.append((ltp, time.perf_counter_ns(), int(self.clock() * 1000)))

    def tick_played(self, exchange: str, token: str, ltp: int) -> None:
        played = self._played.get((exchange, token))
        if played is None:
            played = self._played[(exchange, token)] = deque(maxlen=self.per_token)
        played.append((ltp, time.perf_counter_ns(), int(self.clock() * 1000)))

    def order_received(self, tag: str, at_ns: int) -> None:
        if not tag:
            return
        self._orders[tag] = (at_ns, int(self.clock() * 1000))
        if len(self._orders) > self.order_limit:
            self._orders.popitem(last=False)

    def ticks(self, exchange: str, token: str) -> list[tuple[int, int, int]]:
        """(ltp paise, sent perf_counter_ns, sent epoch ms), oldest first."""
        return list(self._ticks.get((exchange, token), ()))

    def played(self, exchange: str, token: str) -> list[tuple[int, int, int]]:
        """(ltp paise, played perf_counter_ns, played epoch ms), oldest first."""
        return list(self._played.get((exchange, token), ()))

    def order(self, tag: str) -> tuple[int, int] | None:
        """(received perf_counter_ns, received epoch ms) of the order tagged `tag`."""
        return self._orders.get(tag)

    def clear(self) -> None:
        self._ticks.clear()
        self._played.clear()
        self._orders.clear()
