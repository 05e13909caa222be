"""Notifications: trade and service events to Telegram and to outgoing webhooks.

`Notifier.on_trade` and `Notifier.on_event` are listeners of the runtime (`service/listeners.py`). They are synchronous and
constant-time and never raise: they decide whether a change deserves a message, format it and
queue it for each destination. Each destination has its own sender task that delivers messages in
order and retries them:

    reply                                what happens
    2xx (Telegram: {"ok": true})         sent
    429                                  wait `parameters.retry_after` (or Retry-After), try again
    5xx, timeout, network error          exponential backoff with jitter, try again
    other 4xx (bad token, chat or URL)   give up at once; logged the first time per destination and status
    NOTIFY_ATTEMPTS tries used up        give up, log it and count a failure

Every queue has a bound. When it is full the oldest ordinary message is dropped and counted.
Critical messages (UNPROTECTED, halt on) are never dropped and are sent before ordinary ones. The
bot token is part of Telegram's URL path, so URLs are never logged. The token and the webhook URLs
are added to the log `Redactor`, and masked in the `httpx` logger's request lines.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from service.charges.setting import charging
from service.notify_text import entry_text, exit_text, protected_text, refusal_text, unprotected_text
from service.logs import MASK, JsonFormatter, Redactor
from service.settings import Settings
from service.trades import TradeRecord, TradeState

__all__ = ["Notice", "Notifier"]

log = logging.getLogger("tickguard.notify")

MAX_RETRY_AFTER_S = 300.0
_SEEN_LIMIT = 10_000  # trades whose last state is remembered; the oldest are forgotten first
_TELEGRAM_MAX_TEXT = 4096  # sendMessage refuses longer texts


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # entry | exit | rejection | UNPROTECTED | protected | halt
    text: str
    critical: bool
    at_ms: int
    trade: TradeRecord | None = None
    data: dict[str, Any] = field(default_factory=dict)


class _Destination:
    """One place messages go: its queues (critical first, ordinary bounded) and its sender task."""

    def __init__(self, label: str, url: str, capacity: int, chat_id: str = "") -> None:
        self.label = label  # what logs show instead of the URL
        self.family = "telegram" if chat_id else "webhook"  # the counters' key
        self.url, self.capacity, self.chat_id = url, capacity, chat_id
        self.critical: deque[Notice] = deque()
        self.ordinary: deque[Notice] = deque()
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.in_flight: Notice | None = None
        self.refusals_logged: set[int] = set()

    def put(self, notice: Notice) -> bool:
        """Queue `notice`; True when an older ordinary message had to be dropped to make room."""
        dropped = not notice.critical and len(self.ordinary) >= self.capacity
        if dropped:
            self.ordinary.popleft()
        (self.critical if notice.critical else self.ordinary).append(notice)
        self.ready.set()
        return dropped

    def take(self) -> Notice | None:
        if self.critical:
            return self.critical.popleft()
        return self.ordinary.popleft() if self.ordinary else None

    def __len__(self) -> int:
        return len(self.critical) + len(self.ordinary)

    def body(self, notice: Notice) -> bytes:
        if self.chat_id:
            text = notice.text[:_TELEGRAM_MAX_TEXT]
            body = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        else:
            trade = msgspec.to_builtins(notice.trade) if notice.trade is not None else None
            body = {"kind": notice.kind, "text": notice.text, "trade": trade, "data": notice.data, "at_ms": notice.at_ms}
        return msgspec.json.encode(body, enc_hook=str)

    def accepted(self, response: httpx.Response) -> bool:
        return response.is_success and (not self.chat_id or _json(response).get("ok") is True)


class Notifier:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time, capacity: int = 256,
                 timeout_s: float = 5.0, backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, redactor: Redactor | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.clock, self.attempts, self.timeout_s = clock, settings.notify_attempts, timeout_s
        self.backoff_s, self.max_backoff_s, self._sleep = backoff_s, max_backoff_s, sleep
        self._charging = charging(settings.brokerage, settings.charges_schedule)  # exits tell P&L net of charges
        self._mode = "" if settings.live else f", {settings.tickguard_mode}"  # paper messages say so
        self._bare_mode = "" if settings.live else f" ({settings.tickguard_mode})"
        self.destinations: list[_Destination] = []
        if settings.telegram_bot_token and settings.telegram_chat_id:
            url = f"{settings.telegram_api_url.rstrip('/')}/bot{settings.telegram_bot_token}/sendMessage"
            self.destinations.append(_Destination("telegram", url, capacity, settings.telegram_chat_id))
        urls = [u.strip() for u in settings.notify_webhook_urls.split(",") if u.strip()]
        for n, url in enumerate(urls, start=1):
            host = urlsplit(url).hostname or "?"
            self.destinations.append(_Destination(f"webhook {n} ({host})", url, capacity))
        secrets = {settings.telegram_bot_token, *urls, *(str(httpx.URL(u)) for u in urls)} - {""}
        self._secrets = sorted(secrets, key=len, reverse=True)  # a secret inside another is masked whole
        self._redactor = redactor
        self._register_secrets()
        self.counts: Counter[tuple[str, str]] = Counter()  # (telegram|webhook, sent|failed|dropped|abandoned)
        self._seen: OrderedDict[int, tuple[int, TradeState]] = OrderedDict()
        self._client: httpx.AsyncClient | None = None
        self._closing = False
        self._stopped = False

    def _register_secrets(self) -> None:
        redactor = self._redactor or _root_redactor()
        if redactor is not None:
            for secret in self._secrets:
                redactor.add(secret)

    @property
    def queued(self) -> int:
        """Messages waiting, over every destination (each destination holds its own copy)."""
        return sum(len(d) for d in self.destinations)

    # Life cycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._register_secrets()  # logging may have been configured after construction
        logging.getLogger("httpx").addFilter(self._mask_httpx)
        if not self.destinations:
            return
        self._client = httpx.AsyncClient(timeout=self.timeout_s, headers={"user-agent": "tickguard"})
        for destination in self.destinations:
            destination.task = asyncio.create_task(self._run(destination), name=f"notify-{destination.label}")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued for up to `timeout_s`, then give up on the rest (counted, logged)."""
        self._closing = True
        tasks = [d.task for d in self.destinations if d.task is not None]
        for destination in self.destinations:
            destination.ready.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for destination in self.destinations:
            left = len(destination) + (destination.in_flight is not None)
            if left:
                self.counts[destination.family, "abandoned"] += left
                log.warning("notifications not sent before shutdown",
                            extra={"destination": destination.label, "count": left})
            destination.critical.clear()
            destination.ordinary.clear()
            destination.in_flight = None
        self._stopped = True
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        logging.getLogger("httpx").removeFilter(self._mask_httpx)

    def _mask_httpx(self, record: logging.LogRecord) -> bool:
        """httpx logs every request's URL, and Telegram's holds the bot token: mask it for every handler."""
        message = masked = record.getMessage()
        for secret in self._secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True

    # Listeners (on the event loop; must not block or raise) ----------------------------------------
    def on_trade(self, trade: TradeRecord) -> None:
        try:
            self._trade_changed(trade)
        except Exception:  # a notification must never disturb the trading path
            log.exception("could not queue a trade notification", extra={"trade_id": trade.id})

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self._service_event(kind, data)
        except Exception:
            log.exception("could not queue a service-event notification", extra={"event": kind})

    def _trade_changed(self, trade: TradeRecord) -> None:
        if not self.destinations:
            return
        before = self._seen.get(trade.id)
        if before is not None and trade.version <= before[0]:
            return  # a repeat or an older copy of a change already seen
        self._seen[trade.id] = (trade.version, trade.state)
        self._seen.move_to_end(trade.id)
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        previous, state = (before[1] if before else None), trade.state
        if state is previous:
            return
        # A trade first seen mid-life (after a restart) is never announced as an entry: that was
        # announced before. Its terminal and critical states are, as they just happened.
        if previous is TradeState.PENDING_ENTRY and trade.filled > 0:
            self._queue("entry", entry_text(trade) + self._tag(trade), trade)
        if state is TradeState.CLOSED:
            charged = self._charging.of(trade, trade.realised_pnl, None) if trade.exited else None
            figures = charged.view() if charged is not None else {}
            self._queue("exit", exit_text(trade, charged) + self._tag(trade), trade, figures)
        elif state in (TradeState.REJECTED, TradeState.EXPIRED):
            self._queue("rejection", refusal_text(trade) + self._tag(trade), trade)
        elif state is TradeState.UNPROTECTED:
            self._queue("UNPROTECTED", unprotected_text(trade) + self._tag(trade), trade, critical=True)
        elif state is TradeState.OPEN and previous is TradeState.UNPROTECTED:
            self._queue("protected", protected_text(trade) + self._tag(trade), trade)

    def _service_event(self, kind: str, data: dict[str, Any]) -> None:
        if not self.destinations:
            return
        if kind == "halt":
            if data.get("halted"):
                flatten = "; closing every open trade" if data.get("flatten") else ""
                self._queue("halt", f"⛔ HALT — no new entries{flatten}{self._bare_mode}", None, data, critical=True)
            else:
                self._queue("halt", f"▶️ HALT OFF — entries allowed again{self._bare_mode}", None, data)
        elif kind == "loss_limit":  # a daily-loss limit halted one account's or strategy's entries for the day
            self._queue("halt", f"⛔ LOSS LIMIT — {data.get('reason', '')}; no new entries for {data.get('scope')}"
                                f" {data.get('key')} today{self._bare_mode}", None, data, critical=True)
        elif kind == "alert_refused":
            alert = data.get("alert") or {}
            what = " ".join(str(alert.get(k, "")).upper() for k in ("signal", "symbolname")).strip()
            text = (f"⚠️ ALERT REFUSED {what} — {data.get('reason', '')} "
                    f"(alert {data.get('alert_id')}, {alert.get('strategyname', '?')}{self._mode})")
            self._queue("rejection", text, None, data)

        elif kind == "broker_stop_refused":  # only tickguard's own stop guards the trade now
            later = "given up" if data.get("given_up") else "tried again"
            text = (f"⚠️ NO BROKER STOP {data.get('tradingsymbol', '')} — {data.get('reason', '')}; {later}, "
                    f"tickguard's own stop still guards it (trade {data.get('trade_id')}, {data.get('strategy', '?')}, "
                    f"{data.get('account', '?')}{self._mode})")
            self._queue("rejection", text, None, data)

    def _tag(self, trade: TradeRecord) -> str:
        return f" (trade {trade.id}, {trade.strategy}, {trade.account}{self._mode})"

    def _queue(self, kind: str, text: str, trade: TradeRecord | None, data: dict[str, Any] | None = None, *,
               critical: bool = False) -> None:
        notice = Notice(kind, text, critical, int(self.clock() * 1000), trade, dict(data or {}))
        for destination in self.destinations:
            if self._stopped:
                self.counts[destination.family, "abandoned"] += 1
            elif destination.put(notice):
                self.counts[destination.family, "dropped"] += 1

    # Delivery ----------------------------------------------------------------------------------------
    async def _run(self, destination: _Destination) -> None:
        while True:
            notice = destination.take()
            if notice is None:
                if self._closing:
                    return
                destination.ready.clear()
                await destination.ready.wait()
                continue
            destination.in_flight = notice
            try:
                await self._deliver(destination, notice)
            except Exception as exc:  # noqa: BLE001 — the sender outlives any one message
                self.counts[destination.family, "failed"] += 1
                log.error("notification failed", extra={"destination": destination.label, "kind": notice.kind,
                                                        "problem": type(exc).__name__})
            destination.in_flight = None

    async def _deliver(self, destination: _Destination, notice: Notice) -> None:
        assert self._client is not None
        content = destination.body(notice)
        problem = ""
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                response = await self._client.post(destination.url, content=content,
                                                    headers={"content-type": "application/json"})
            except httpx.TransportError as exc:  # timeouts, refused connections, broken replies
                problem = type(exc).__name__
            else:
                if destination.accepted(response):
                    self.counts[destination.family, "sent"] += 1
                    return
                status = response.status_code
                problem = f"HTTP {status}"
                if status == 429:
                    wait = _retry_after(response)
                elif status < 500:
                    self._refused(destination, notice, response)
                    return
            if attempt < self.attempts:
                await self._sleep(wait if wait is not None else self._backoff(attempt))
        self.counts[destination.family, "failed"] += 1
        log.error("notification given up", extra={"destination": destination.label, "kind": notice.kind,
                                                  "attempts": self.attempts, "problem": problem})

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _refused(self, destination: _Destination, notice: Notice, response: httpx.Response) -> None:
        self.counts[destination.family, "failed"] += 1
        status = response.status_code
        if status in destination.refusals_logged:
            return
        destination.refusals_logged.add(status)
        # Telegram says why ("chat not found", "Unauthorized"); a webhook's body is not ours to log.
        reason = str(_json(response).get("description", ""))[:200] if destination.family == "telegram" else ""
        log.error("notification refused: check the destination's settings (logged once per status)",
                  extra={"destination": destination.label, "kind": notice.kind, "status": status, "reason": reason})


def _retry_after(response: httpx.Response) -> float | None:
    parameters = _json(response).get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if value is None:
        value = response.headers.get("retry-after")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _root_redactor() -> Redactor | None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return handler.formatter.redactor
    return None
