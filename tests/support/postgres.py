"""PostgreSQL for tests: each test gets a database of its own on the local server, dropped after it.

The server is the one `make test` makes sure answers (`scripts/ensure-postgres`): 127.0.0.1:5432,
trust authentication. `TEST_POSTGRES_URL` points elsewhere (a URL of a database the tests may use to
create and drop others)."""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg

__all__ = ["ADMIN_URL", "fresh_database"]

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database; dropped (its connections ended) on the way out."""
    name = f"tg_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
