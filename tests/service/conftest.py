"""Fixtures shared by the service tests."""
from __future__ import annotations

import pytest

from service.store import Store


@pytest.fixture
async def store(tmp_path):
    """A store on a fresh SQLite file, opened, closed after the test."""
    store = Store(tmp_path / "tickguard.db", synchronous="NORMAL")
    store.open()
    yield store
    await store.close()
