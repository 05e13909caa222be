"""`GET /alerts`: the alerts as stored — accepted, duplicate or refused, with the reason and the trades
they led to — newest first, a page at a time. Bodies pass the log's `Redactor`: a field named like a
secret (`token`, `secret`, `password` …) reads `***`, and so does the webhook secret wherever it appears."""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.logs import Redactor
from service.web.errors import HttpError
from service.web.queries import before_of, day_of, limit_of, page

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["ALERT_STATUSES", "list_alerts"]

ALERT_STATUSES = ("accepted", "duplicate", "refused")


async def list_alerts(request: Request, runtime: Runtime) -> Response:
    query = request.query_params
    status = query.get("status") or None
    if status is not None and status not in ALERT_STATUSES:
        raise HttpError.of(422, "status", f"expected one of {', '.join(ALERT_STATUSES)}")
    limit = limit_of(query)
    rows = await runtime.store.alert_page(status=status, source=query.get("source") or None, day=day_of(query),
                                          before=before_of(query), limit=limit + 1)
    alerts, after = page(rows, limit)
    redactor = Redactor([runtime.settings.webhook_secret])
    for alert in alerts:
        alert["body"] = redactor.value(alert["body"])
    return JSONResponse({"alerts": alerts, "next": after})
