from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.errors import SettingsError
from service.logs import configure_logging
from service.notify import Notifier
from service.settings import Settings, load_settings
from service.trades import TradeEvent, TradeRecord, fold
from tests.support.servers import ServerThread

BOT_TOKEN = "123456789:AAEhBOweik9ai2o4Fake_Token-0123456789ab"
CHAT_ID = "-1001234567890"


@dataclass
class Seen:
    path: str
    body: Any
    at: float


class FakeBotApi:
    """The Telegram Bot API as far as tickguard uses it, plus webhook receivers under /hook/.

    Records every request; answers each path from its script (`answer`), then with success. A reply is
    "ok", 500, 429 (retry_after 1 s), 400 (chat not found) or "hang" (until `reset`)."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.scripts: dict[str, deque[Any]] = {}
        self.generation = 0
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])

    def reset(self) -> None:
        self.generation += 1  # ends every hanging reply
        self.requests.clear()
        self.scripts.clear()

    def answer(self, path: str, *replies: Any) -> None:
        self.scripts.setdefault(path, deque()).extend(replies)

    def to(self, path: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == path]

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.requests.append(Seen(path, await request.json(), time.monotonic()))
        script = self.scripts.get(path)
        reply = script.popleft() if script else "ok"
        if reply == "hang":
            generation = self.generation
            while generation == self.generation:
                await asyncio.sleep(0.01)
            reply = "ok"
        if reply == "ok":
            if path.startswith("/hook/"):
                return Response(status_code=204)
            return JSONResponse({"ok": True, "result": {"message_id": len(self.requests)}})
        if reply == 429:
            return JSONResponse({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                 "parameters": {"retry_after": 1}}, 429)
        if reply == 400:
            return JSONResponse({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, 400)
        return JSONResponse({"ok": False, "error_code": reply, "description": "Internal Server Error"}, reply)


@pytest.fixture(scope="module")
def bot_server() -> Iterator[tuple[FakeBotApi, str]]:
    fake = FakeBotApi()
    with ServerThread(fake.app) as server:
        yield fake, server.url
        fake.reset()


@pytest.fixture
def bot(bot_server) -> Iterator[FakeBotApi]:
    fake, _ = bot_server
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def settings_for(bot_server, tmp_path: Path):
    _, url = bot_server

    def make(**env: str) -> Settings:
        base = {"TELEGRAM_API_URL": url, "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": CHAT_ID,
                "NOTIFY_ATTEMPTS": "3"}
        return load_settings({**base, **env}, env_file=str(tmp_path / "absent.env"))

    return make


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """tickguard's JSON logs at DEBUG into a StringIO, httpx's request lines included (`tickguard`'s CLI
    quiets them, and another test may have run it); the loggers are put back afterwards."""
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    saved = root.handlers[:], root.level, httpx_log.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    httpx_log.setLevel(logging.NOTSET)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        httpx_log.setLevel(saved[2])


TELEGRAM_PATH = f"/bot{BOT_TOKEN}/sendMessage"


def trade_life(trade_id: int = 7, side: str = "LONG", *events: tuple[str, dict[str, Any]]) -> list[TradeRecord]:
    """Every stored version of a trade, as the desk hands them to its listeners."""
    trade = TradeRecord(id=trade_id, alert_id=1, account="DEMO", strategy="s1", exchange="NSE", token="3045",
                  tradingsymbol="SBIN-EQ", side=side, product="INTRADAY", created_ms=1_000)
    versions = [trade]
    for at, (kind, data) in enumerate(events, start=2):
        trade = fold(trade, TradeEvent(kind=kind, at_ms=at * 1000, data=data))
        versions.append(trade)
    return versions


STOPPED_OUT = (("sized", {"quantity": 5}), ("entry_fill", {"quantity": 5, "price": 80_000}),
               ("armed", {"stop": 79_200, "target": None}), ("exit_fired", {"reason": "STOP"}),
               ("exit_fill", {"quantity": 5, "price": 78_900}), ("closed", {}))


def notifier(settings: Settings, **options: Any) -> Notifier:
    return Notifier(settings, clock=lambda: 1_700_000_000.0, backoff_s=0.01, max_backoff_s=0.05, **options)


async def until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_each_transition_sends_one_message_with_its_text(bot, settings_for):
    notes = notifier(settings_for())
    await notes.start()
    for trade in trade_life(7, "LONG", *STOPPED_OUT):
        notes.on_trade(trade)
        notes.on_trade(trade)  # a repeat of the same version says nothing new
    for trade in trade_life(11, "SHORT", ("sized", {"quantity": 4}), ("entry_fill", {"quantity": 2, "price": 50_050}),
                            ("exit_fired", {"reason": "TARGET"}), ("exit_fill", {"quantity": 2, "price": 49_040}),
                            ("closed", {})):
        notes.on_trade(trade)
    notes.on_trade(trade_life(8, "LONG", ("rejected", {"reason": "insufficient funds"}))[-1])
    notes.on_trade(trade_life(9, "LONG", ("sized", {"quantity": 3}), ("expired", {"reason": "queued 5 s"}))[-1])
    unprotected = trade_life(10, "LONG", *STOPPED_OUT[:4], ("unprotected", {"reason": "exit failed 3 times"}))
    for trade in unprotected:
        notes.on_trade(trade)
    notes.on_trade(fold(unprotected[-1], TradeEvent(kind="rearmed", at_ms=99_000)))
    notes.on_event("alert_accepted", {"alert_id": 3, "trades": [7]})
    notes.on_event("alert_refused", {"alert_id": 4, "reason": "trading is halted: no new entries",
                                     "alert": {"symbolname": "SBIN", "signal": "buy", "strategyname": "s1"}})
    notes.on_event("halt", {"halted": True, "flatten": True})
    notes.on_event("halt", {"halted": False, "flatten": False})
    notes.on_event("broker_stop_refused", {"trade_id": 7, "tradingsymbol": "SBIN-EQ", "strategy": "s1",
                                           "account": "DEMO", "reason": "the broker refused it: RMS", "given_up": True})
    await notes.stop()

    texts = [seen.body["text"] for seen in bot.to(TELEGRAM_PATH)]
    assert sorted(texts) == sorted([
        "🔵 ENTRY SBIN-EQ LONG 5 @ 800.00 (trade 7, s1, DEMO, paper)",
        "🔴 EXIT SBIN-EQ LONG 5 @ 789.00 — STOP — P&L −55.00 (trade 7, s1, DEMO, paper)",
        "🔵 ENTRY SBIN-EQ SHORT 2/4 @ 500.50 (trade 11, s1, DEMO, paper)",
        "🟢 EXIT SBIN-EQ SHORT 2 @ 490.40 — TARGET — P&L +20.20 (trade 11, s1, DEMO, paper)",
        "⚠️ REJECTED SBIN-EQ LONG — insufficient funds (trade 8, s1, DEMO, paper)",
        "⌛ EXPIRED SBIN-EQ LONG 3 — queued 5 s (trade 9, s1, DEMO, paper)",
        "🔵 ENTRY SBIN-EQ LONG 5 @ 800.00 (trade 10, s1, DEMO, paper)",
        ("🚨 UNPROTECTED SBIN-EQ LONG 5 open with no working exit — exit failed 3 times — act now "
         "(trade 10, s1, DEMO, paper)"),
        "🛡️ PROTECTED again SBIN-EQ LONG 5, stop 792.00 (trade 10, s1, DEMO, paper)",
        "⚠️ ALERT REFUSED BUY SBIN — trading is halted: no new entries (alert 4, s1, paper)",
        "⛔ HALT — no new entries; closing every open trade (paper)",
        "▶️ HALT OFF — entries allowed again (paper)",
        ("⚠️ NO BROKER STOP SBIN-EQ — the broker refused it: RMS; given up, tickguard's own stop still guards it "
         "(trade 7, s1, DEMO, paper)"),
    ])
    # The critical ones overtake everything queued before them.
    assert texts[0].startswith("🚨 UNPROTECTED") and texts[1].startswith("⛔ HALT")
    assert all(seen.body["chat_id"] == CHAT_ID and seen.body["disable_web_page_preview"] is True
               for seen in bot.to(TELEGRAM_PATH))
    assert notes.counts["telegram", "sent"] == 13 and notes.counts["telegram", "failed"] == 0


async def test_a_trade_first_seen_mid_life_is_not_announced_as_an_entry(bot, settings_for):
    notes = notifier(settings_for())
    await notes.start()
    life = trade_life(7, "LONG", *STOPPED_OUT)
    for trade in life[3:]:  # seen first at OPEN (tickguard restarted with the trade open)
        notes.on_trade(trade)
    notes.on_trade(life[1])  # an older version arriving late changes nothing
    await notes.stop()
    assert [seen.body["text"][:6] for seen in bot.to(TELEGRAM_PATH)] == ["🔴 EXIT"]


async def test_a_daily_loss_halt_is_sent_as_critical(bot, settings_for):
    notes = notifier(settings_for())
    await notes.start()
    notes.on_event("loss_resumed", {"scope": "account", "key": "R1"})  # the day rolled: nothing to say
    notes.on_event("loss_limit", {"scope": "account", "key": "R1", "pnl": -6000, "max_loss": 5000,
                                  "reason": "daily loss limit of account R1 reached: P&L -60.00 at or below -50.00"})
    await notes.stop()
    assert [seen.body["text"] for seen in bot.to(TELEGRAM_PATH)] == [
        "⛔ LOSS LIMIT — daily loss limit of account R1 reached: P&L -60.00 at or below -50.00; no new entries for"
        " account R1 today (paper)"]


async def test_a_failing_server_is_retried_then_given_up(bot, settings_for):
    bot.answer(TELEGRAM_PATH, 500, 502, 503, 500)
    notes = notifier(settings_for())
    await notes.start()
    notes.on_trade(trade_life(7, "LONG", *STOPPED_OUT)[-1])  # first seen as CLOSED: the exit only
    notes.on_event("halt", {"halted": False})
    await notes.stop()
    # Three tries (NOTIFY_ATTEMPTS) for the first message; the second fails once, then goes through.
    assert len(bot.to(TELEGRAM_PATH)) == 5
    assert (notes.counts["telegram", "failed"], notes.counts["telegram", "sent"]) == (1, 1)


async def test_a_network_failure_is_retried_with_growing_backoff(settings_for):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    notes = notifier(settings_for(TELEGRAM_API_URL=f"http://127.0.0.1:{port}", NOTIFY_ATTEMPTS="4"),
                     sleep=record_sleep)
    await notes.start()
    notes.on_event("halt", {"halted": True})
    await notes.stop()
    assert notes.counts["telegram", "failed"] == 1 and len(waits) == 3
    assert 0.005 <= waits[0] <= 0.01 and 0.01 <= waits[1] <= 0.02 and 0.02 <= waits[2] <= 0.04


async def test_on_trade_returns_at_once_while_the_server_hangs(bot, settings_for):
    bot.answer(TELEGRAM_PATH, "hang")
    notes = notifier(settings_for(), capacity=8)
    await notes.start()
    notes.on_event("halt", {"halted": False})
    await until(lambda: len(bot.requests) == 1)  # the sender is now stuck inside that request
    for trade_id in range(100, 150):
        notes.on_trade(trade_life(trade_id, "LONG", ("rejected", {"reason": "no margin"}))[-1])
    # All fifty calls returned while the only request is still hanging: queued up to the bound.
    assert len(bot.requests) == 1
    assert notes.queued == 8 and notes.counts["telegram", "dropped"] == 42
    await notes.stop(timeout_s=0.2)
    assert notes.counts["telegram", "abandoned"] == 9 and notes.counts["telegram", "sent"] == 0


async def test_a_hanging_reply_times_out_and_is_retried(bot, settings_for):
    bot.answer(TELEGRAM_PATH, "hang")
    notes = notifier(settings_for(), timeout_s=0.3)
    await notes.start()
    notes.on_event("halt", {"halted": True})
    await notes.stop()
    assert len(bot.to(TELEGRAM_PATH)) == 2 and notes.counts["telegram", "sent"] == 1


async def test_the_queue_bound_drops_the_oldest_ordinary_message_never_an_unprotected_one(bot, settings_for):
    notes = notifier(settings_for(), capacity=3)
    unprotected = trade_life(50, "LONG", *STOPPED_OUT[:4], ("unprotected", {"reason": "exit failed 3 times"}))
    notes.on_trade(unprotected[-1])  # oldest of all, and critical
    for trade_id in range(1, 7):
        notes.on_trade(trade_life(trade_id, "LONG", ("rejected", {"reason": f"refusal {trade_id}"}))[-1])
    assert notes.queued == 4 and notes.counts["telegram", "dropped"] == 3
    await notes.start()
    await notes.stop()
    texts = [seen.body["text"] for seen in bot.to(TELEGRAM_PATH)]
    assert texts[0].startswith("🚨 UNPROTECTED SBIN-EQ LONG 5")
    assert [text.split(" — ")[1].split(" (")[0] for text in texts[1:]] == ["refusal 4", "refusal 5", "refusal 6"]


async def test_flood_control_is_honoured(bot, settings_for):
    bot.answer(TELEGRAM_PATH, 429)
    notes = notifier(settings_for())
    await notes.start()
    notes.on_event("halt", {"halted": True})
    await notes.stop()
    first, second = bot.to(TELEGRAM_PATH)
    assert second.at - first.at >= 0.95  # retry_after: 1, not the 10 ms backoff
    assert notes.counts["telegram", "sent"] == 1


async def test_a_refusal_is_not_retried_and_is_logged_once(bot, settings_for, captured_logs):
    bot.answer(TELEGRAM_PATH, 400, 400)
    notes = notifier(settings_for())
    await notes.start()
    notes.on_event("halt", {"halted": True})
    notes.on_event("halt", {"halted": False})
    await notes.stop()
    assert len(bot.to(TELEGRAM_PATH)) == 2 and notes.counts["telegram", "failed"] == 2
    refusals = [line for line in captured_logs.getvalue().splitlines() if "notification refused" in line]
    assert len(refusals) == 1 and "chat not found" in refusals[0] and '"status":400' in refusals[0]


async def test_the_bot_token_never_reaches_a_log_line(bot, settings_for, captured_logs, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # `tickguard` itself quiets httpx; this test wants its lines
    bot.answer(TELEGRAM_PATH, 500, 500, 500, 400)
    notes = notifier(settings_for())
    await notes.start()
    notes.on_event("halt", {"halted": True})
    notes.on_event("halt", {"halted": False})
    await notes.stop()
    written = captured_logs.getvalue()
    assert "notification given up" in written and "notification refused" in written
    assert "HTTP Request: POST" in written and "/bot***/sendMessage" in written  # httpx's own line, masked
    for text in (written, caplog.text):
        assert BOT_TOKEN not in text and BOT_TOKEN.split(":")[1] not in text


async def test_webhooks_each_get_the_message_independently(bot, bot_server, settings_for):
    _, root = bot_server
    bot.answer("/hook/slow", "hang")
    bot.answer("/hook/broken", *[500] * 6)
    notes = notifier(settings_for(NOTIFY_WEBHOOK_URLS=f"{root}/hook/slow, {root}/hook/broken,{root}/hook/ok"))
    await notes.start()
    life = trade_life(7, "LONG", *STOPPED_OUT)
    notes.on_trade(life[-1])
    await until(lambda: len(bot.to("/hook/ok")) == 1 and len(bot.to("/hook/broken")) == 3
                and len(bot.to(TELEGRAM_PATH)) == 1)
    assert len(bot.to("/hook/slow")) == 1  # still hanging, and nobody waited for it
    body = bot.to("/hook/ok")[0].body
    assert body["kind"] == "exit" and body["text"] == bot.to(TELEGRAM_PATH)[0].body["text"]
    assert body["trade"]["id"] == 7 and body["trade"]["state"] == "CLOSED" and body["trade"]["realised_pnl"] == -5500
    assert body["data"]["gross_pnl"] == -5500 and "charges" in body["data"] and body["at_ms"] == 1_700_000_000_000
    notes.on_event("halt", {"halted": True, "flatten": False})
    await notes.stop(timeout_s=0.5)
    assert bot.to("/hook/ok")[1].body == {"kind": "halt", "text": "⛔ HALT — no new entries (paper)", "trade": None,
                                          "data": {"halted": True, "flatten": False}, "at_ms": 1_700_000_000_000}
    assert notes.counts["webhook", "sent"] == 2 and notes.counts["webhook", "failed"] == 2
    assert notes.counts["webhook", "abandoned"] == 2  # the hanging one and the halt behind it


async def test_without_destinations_nothing_is_queued(tmp_path):
    notes = Notifier(load_settings({}, env_file=str(tmp_path / "absent.env")))
    await notes.start()
    notes.on_trade(trade_life(7, "LONG", *STOPPED_OUT)[-1])
    notes.on_event("halt", {"halted": True})
    assert notes.queued == 0
    await notes.stop()
    assert not notes.counts


def test_settings_defaults_and_secrecy(settings_for, tmp_path):
    plain = load_settings({}, env_file=str(tmp_path / "absent.env"))
    assert plain.telegram_api_url == "https://api.telegram.org" and plain.notify_attempts == 5
    assert not plain.telegram_bot_token and not plain.notify_webhook_urls
    hooked = settings_for(NOTIFY_WEBHOOK_URLS="https://hooks.example.com/services/T0/B0/secretpart")
    assert BOT_TOKEN not in repr(hooked) and "secretpart" not in repr(hooked)


@pytest.mark.parametrize("env, setting", [
    ({"TELEGRAM_BOT_TOKEN": BOT_TOKEN}, "TELEGRAM_CHAT_ID"),
    ({"TELEGRAM_CHAT_ID": CHAT_ID}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": "not a token", "TELEGRAM_CHAT_ID": CHAT_ID}, "TELEGRAM_BOT_TOKEN"),
    ({"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": "my chat"}, "TELEGRAM_CHAT_ID"),
    ({"TELEGRAM_API_URL": "api.telegram.org"}, "TELEGRAM_API_URL"),
    ({"NOTIFY_WEBHOOK_URLS": "https://ok.example.com/a,ftp://secret.example.com/b"}, "NOTIFY_WEBHOOK_URLS"),
    ({"NOTIFY_ATTEMPTS": "0"}, "NOTIFY_ATTEMPTS"),
])
def test_settings_are_validated_without_echoing_secrets(tmp_path, env, setting):
    with pytest.raises(SettingsError) as caught:
        load_settings(env, env_file=str(tmp_path / "absent.env"))
    assert [name for name, _ in caught.value.problems] == [setting]
    message = str(caught.value)
    assert "not a token" not in message and "secret.example.com" not in message and BOT_TOKEN not in message

