"""A store fixture on both back ends (a pytest plug-in, named in tests/conftest.py)."""
from __future__ import annotations

import pytest

from service.store import Store
from tests.support.postgres import fresh_database


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
