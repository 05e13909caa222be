"""Checks of settings that take more than a type: notifications' destinations, the recording folder.
Each returns (SETTING, reason) problems; `load_settings` reports them all at once."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["notify_problems", "recording_problems"]

_TELEGRAM_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_TELEGRAM_CHAT = re.compile(r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+\S*$")


def notify_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Telegram token and chat both or neither, well formed; webhook URLs http(s). Never echoes a secret."""
    problems: list[tuple[str, str]] = []
    token, chat = values.get("telegram_bot_token", ""), values.get("telegram_chat_id", "")
    if bool(token) != bool(chat):
        missing = "TELEGRAM_CHAT_ID" if token else "TELEGRAM_BOT_TOKEN"
        problems.append((missing, "set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID together, or neither"))
    if token and not _TELEGRAM_TOKEN.match(token):
        problems.append(("TELEGRAM_BOT_TOKEN", "not a bot token: expected digits, a colon, then letters, digits, _ or -"))
    if chat and not _TELEGRAM_CHAT.match(chat):
        problems.append(("TELEGRAM_CHAT_ID", f"expected a numeric chat id or an @channel name, got {chat!r}"))
    urls = values.get("notify_webhook_urls", "").split(",")
    for position, url in enumerate((u.strip() for u in urls), start=1):
        if url and not _HTTP_URL.match(url):
            problems.append(("NOTIFY_WEBHOOK_URLS", f"entry {position} is not an http(s) URL"))
    return problems


def recording_problems(values: dict[str, Any], default_db: str) -> list[tuple[str, str]]:
    """RECORD_DIR defaulted beside the SQLite file; a folder (or one that can be made) tickguard may write in."""
    if not values.get("record_dir"):
        beside = Path(values.get("tickguard_db") or default_db).parent
        values["record_dir"] = "recordings" if values.get("database_url") else str(beside / "recordings")
    folder = Path(values["record_dir"])
    if folder.exists() and not folder.is_dir():
        return [("RECORD_DIR", f"{folder} is not a folder")]
    if values.get("record_ticks"):
        existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
        if not os.access(existing, os.W_OK | os.X_OK):
            return [("RECORD_DIR", f"cannot write in {existing}")]
    return []
