"""Fixtures shared by the service tests."""
from __future__ import annotations

import pytest

from service.store import Store
from tests.support.postgres import fresh_database


@pytest.fixture
async def store(tmp_path):
    """A store on a fresh SQLite file, opened, closed after the test."""
    store = Store(tmp_path / "tickguard.db", synchronous="NORMAL")
    store.open()
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def any_store(request, tmp_path):
    """A fresh store on each back end: a SQLite file, and a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        store = Store(tmp_path / "tickguard.db", synchronous="NORMAL")
        store.open()
        yield store
        await store.close()
        return
    with fresh_database() as url:
        store = Store(url)
        store.open()
        yield store
        await store.close()
