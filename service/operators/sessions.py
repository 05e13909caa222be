"""Dashboard sessions in the store, so a restart (or another intake of a cluster) keeps everyone signed in.

The browser holds a random 256-bit id in its cookie; the store keeps its SHA-256, the operator's name
and the expiry (`sessions` table). A session is only as good as its operator: one removed from
OPERATORS_FILE is signed out at the next request, and its role is read from the file each time.
Looked-up sessions are cached for `CACHE_S` (a logout on another intake of a cluster counts within it;
on this process at once).
"""
from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from service.store import Store

__all__ = ["CACHE_S", "SESSION_TTL_S", "SessionStore"]

SESSION_TTL_S = 12 * 3600
CACHE_S = 5.0
_CACHE_MAX = 4096


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, store: Store, *, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: OrderedDict[str, tuple[str | None, float, float]] = OrderedDict()  # key → (operator, expiry, read at)

    async def new(self, operator: str) -> str:
        session_id = secrets.token_urlsafe(32)
        key, now = _key(session_id), self.clock()
        expires_ms = int((now + self.ttl_s) * 1000)

        def work(db) -> None:
            db.execute("DELETE FROM sessions WHERE expires_ms < ?", (int(now * 1000),))
            db.execute("INSERT INTO sessions (id, operator, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
                       (key, operator, int(now * 1000), expires_ms))

        await self.store.db.write(work)
        self._remember(key, operator, expires_ms / 1000, now)
        return session_id

    async def operator(self, session_id: str | None) -> str | None:
        """The name of the operator signed in with `session_id`; None when unknown or expired."""
        if not session_id or len(session_id) > 128:
            return None
        key, now = _key(session_id), self.clock()
        cached = self._cache.get(key)
        if cached is None or now - cached[2] > CACHE_S:
            row = await self.store.db.read(
                lambda db: db.execute("SELECT operator, expires_ms FROM sessions WHERE id = ?", (key,)).fetchone())
            cached = self._remember(key, row[0] if row else None, row[1] / 1000 if row else 0.0, now)
        operator, expiry, _ = cached
        return operator if operator is not None and expiry > now else None

    async def drop(self, session_id: str | None) -> None:
        if not session_id:
            return
        key = _key(session_id)
        self._cache.pop(key, None)
        await self.store.db.write(lambda db: db.execute("DELETE FROM sessions WHERE id = ?", (key,)))

    def _remember(self, key: str, operator: str | None, expiry: float, now: float) -> tuple[str | None, float, float]:
        entry = self._cache[key] = (operator, expiry, now)
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)
        return entry
