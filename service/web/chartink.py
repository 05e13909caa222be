"""`POST /chartink`: one Chartink scan alert becomes one `/opentrade` alert per stock
(`service.alerts.chartink` parses it; trading-semantics §1). Chartink cannot set headers, so the
webhook secret travels as the `token` query parameter. Each stock is taken as its own alert and
answered in `{"alerts": [...]}`: 202 when any was accepted, else the first failure's status.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.accounts.directory import AccountsError
from service.alerts.chartink import ChartinkScan, load_chartink_scans, parse_chartink
from service.alerts.parse import AlertInvalid
from service.errors import SettingsError
from service.web.auth import authorised
from service.web.bodies import limited_body, read_json
from service.web.errors import HttpError, unauthorised
from service.web.webhook import outcome_reply

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["chartink"]

log = logging.getLogger("tickguard.chartink")
IST = ZoneInfo("Asia/Kolkata")


def _decode(raw: bytes, content_type: str) -> Any:
    """JSON whatever the content type says (`curl -d` calls JSON a form); a form when it is not JSON
    and the content type says form."""
    body = read_json(raw)
    if body is None and content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    return body


def _scans(request: Request, runtime: Runtime) -> Mapping[str, ChartinkScan]:
    scans = getattr(request.app.state, "chartink_scans", None)
    if scans is None:
        scans = request.app.state.chartink_scans = load_chartink_scans(runtime.settings.chartink_scans)
    return scans


async def _one(runtime: Runtime, alert: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"symbolname": alert["symbolname"]}
    try:
        status, reply = outcome_reply(await runtime.intake.take(alert, source="chartink"))
    except AccountsError as exc:
        runtime.metrics.count_alert("refused")
        return {**result, "status": 503, "errors": [{"field": "accounts", "reason": str(exc)}]}
    except Exception:  # deliberate: one stock failing must not lose the answer for the others
        log.exception("chartink alert for %s failed", alert["symbolname"])
        return {**result, "status": 500, "errors": [{"field": "symbolname", "reason": "internal error"}]}
    return {**result, "status": status, **reply}


async def chartink(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    raw = await limited_body(request, runtime.metrics)
    if not authorised(request, runtime.settings.webhook_secret):
        runtime.metrics.count_alert("unauthorized")
        raise unauthorised()
    try:
        scans = _scans(request, runtime)
    except SettingsError as exc:
        raise HttpError(503, [{"field": name, "reason": reason} for name, reason in exc.problems]) from None
    day = datetime.fromtimestamp(runtime.clock(), IST).date()
    try:
        alerts = parse_chartink(_decode(raw, request.headers.get("content-type", "")), request.query_params, scans,
                                day=day)
    except AlertInvalid:
        runtime.metrics.count_alert("invalid")
        raise  # a 422 naming every problem (service.web.errors)
    results = [await _one(runtime, alert) for alert in alerts]
    statuses = [r["status"] for r in results]
    if 202 in statuses:
        status = 202
    else:
        status = next((s for s in statuses if s >= 400), 200)
    return JSONResponse({"alerts": results}, status)
