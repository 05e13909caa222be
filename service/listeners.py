"""Who else hears about trades and service events: the browser feed and the notifier.

Every stored trade version (execution's journal publishes it) and every service event (an alert
accepted or refused, a halt, a loss limit, a plug-in's fate) is handed to each listener, on the
event loop, after the change is stored. A listener must not block (queue and return); a broken one
is logged and skipped — it never stops execution.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from service.trades import TradeRecord

__all__ = ["Listeners"]

log = logging.getLogger("tickguard.listeners")


class Listeners:
    """Who else hears about trades and service events (the browser feed, notifications)."""

    def __init__(self) -> None:
        self.trade: list[Callable[[TradeRecord], None]] = []
        self.event: list[Callable[[str, dict[str, Any]], None]] = []

    def trade_changed(self, trade: TradeRecord) -> None:
        for listener in self.trade:
            try:
                listener(trade)
            except Exception:  # a broken listener must never stop execution
                log.exception("trade listener failed")

    def announce(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self.event:
            try:
                listener(kind, data)
            except Exception:
                log.exception("event listener failed")
