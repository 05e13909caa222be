"""Query parameters the read routes share: `limit`, `before` (a page's cursor), `day` (an IST day),
each read once here with a 422 naming it when it is wrong."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.datastructures import QueryParams

from service.store import ist_date
from service.web.errors import HttpError

__all__ = ["ID_MAX", "LIMIT_MAX", "before_of", "day_of", "limit_of", "page"]

LIMIT_MAX = 1000
ID_MAX = 2**63 - 1  # SQLite's INTEGER: a row id is never beyond it


def limit_of(query: QueryParams, default: int = 200) -> int:
    text = query.get("limit", str(default))
    if re.fullmatch("[0-9]{1,20}", text) is None or not 0 < int(text) <= LIMIT_MAX:
        raise HttpError.of(422, "limit", f"expected 1-{LIMIT_MAX}")
    return int(text)


def before_of(query: QueryParams) -> int | None:
    """The cursor: the `next` of the page before, or none for the newest page."""
    text = query.get("before")
    if text is None or text == "":
        return None
    if re.fullmatch("[0-9]{1,19}", text) is None or int(text) > ID_MAX:
        raise HttpError.of(422, "before", f"expected an id from the reply's next (a whole number up to {ID_MAX})")
    return int(text)


def day_of(query: QueryParams, default_ms: int | None = None) -> str | None:
    """The `day` parameter (`YYYY-MM-DD`, an IST day); without it the IST day of `default_ms`, or none."""
    text = query.get("day")
    if text is None or text == "":
        return ist_date(default_ms) if default_ms is not None else None
    try:
        if re.fullmatch("[0-9]{4}-[0-9]{2}-[0-9]{2}", text) is None:
            raise ValueError(text)
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise HttpError.of(422, "day", "expected a date YYYY-MM-DD (the IST trading day)") from None


def page(rows: list[Any], limit: int, key: str = "id") -> tuple[list[Any], int | None]:
    """`rows` read with `limit + 1`: the page of `limit` and the cursor of the next (None: no more)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, last[key] if isinstance(last, dict) else getattr(last, key)
