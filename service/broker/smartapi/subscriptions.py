"""Smart-stream subscriptions: SmartAPI's limits, what a subscribe asks for, and the requests sent.

    MAX_PAIRS             (token, mode) pairs one connection may hold
    MAX_SOCKETS           smart-stream connections one client code may hold
    SubscriptionRefused   refused before anything is sent
    requested_pairs       (exchange, token) pairs in a mode, checked
    subscription_requests the JSON subscribe/unsubscribe requests for pairs
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from service.broker.errors import BrokerError
from service.broker.smartapi.config import EXCHANGE_TYPES
from service.broker.smartapi.parsing import LTP, QUOTE, SNAP_QUOTE

__all__ = [
    "MAX_PAIRS",
    "MAX_SOCKETS",
    "SUBSCRIBE_BATCH",
    "Pair",
    "SubscriptionRefused",
    "requested_pairs",
    "subscription_requests",
]

MAX_PAIRS = 1000  # SmartAPI's subscriptions per connection, each (token, mode) counted once
MAX_SOCKETS = 3  # SmartAPI's smart-stream connections per client code
SUBSCRIBE_BATCH = 200  # tokens per subscribe request
Pair = tuple[str, str]  # (exchange, token)


class SubscriptionRefused(BrokerError):
    """Refused before anything is sent: too many instruments, an unknown exchange or mode."""

    def __init__(self, message: str, *, requested: int = 0) -> None:
        super().__init__(message, route="smart-stream")
        self.requested = requested


def requested_pairs(instruments: Iterable[Pair], mode: int) -> dict[Pair, int]:
    """`instruments` as (exchange, token-as-text) -> `mode`, once each; SubscriptionRefused for a mode
    that brings no `Tick` or an exchange smart-stream does not serve."""
    if mode not in (LTP, QUOTE, SNAP_QUOTE):
        raise SubscriptionRefused(f"mode {mode!r}: ticks come in LTP (1), QUOTE (2) or SNAP_QUOTE (3) only")
    wanted: dict[Pair, int] = {}
    for exchange, token in instruments:
        if exchange not in EXCHANGE_TYPES:
            raise SubscriptionRefused(f"unknown exchange {exchange!r}; expected one of {', '.join(EXCHANGE_TYPES)}")
        wanted[(exchange, str(token))] = mode
    return wanted


def subscription_requests(action: int, pairs: Mapping[Pair, int], batch: int = SUBSCRIBE_BATCH) -> list[str]:
    """Subscribe (1) or unsubscribe (0) JSON requests for `pairs` -> mode: one mode per request, at
    most `batch` tokens each, grouped by exchangeType."""
    by_mode: dict[int, list[tuple[int, str]]] = {}
    for (exchange, token), mode in sorted(pairs.items()):
        by_mode.setdefault(mode, []).append((EXCHANGE_TYPES[exchange], token))
    requests = []
    for mode, entries in sorted(by_mode.items()):
        for start in range(0, len(entries), batch):
            token_list: dict[int, list[str]] = {}
            for code, token in entries[start:start + batch]:
                token_list.setdefault(code, []).append(token)
            requests.append(json.dumps({
                "correlationID": f"{'s' if action else 'u'}{mode}n{start // batch}"[:10],
                "action": action,
                "params": {"mode": mode, "tokenList": [{"exchangeType": c, "tokens": t}
                                                       for c, t in token_list.items()]},
            }))
    return requests
