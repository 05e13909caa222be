"""`POST /opentrade`: authenticate, validate, deduplicate, decide, store — then acknowledge.

The 202 goes out only after the alert, its trades and their events are committed. Execution is
asynchronous (TradingView gives up after 3 s). Bad input is a 422 naming every field, and nothing is
stored; an unauthenticated request is a 401 and nothing is stored either. An alert refused by a rule
answers 409 naming the rule in `field` (halt, window, limits, accounts, position) and stores the alert
as refused (503, field accounts, when the account list is stale).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.alerts.intake import Accepted, Declined, Duplicate, Invalid, Outcome
from service.web.auth import authorised
from service.web.bodies import json_reply, limited_body, parse_json
from service.web.errors import HttpError, unauthorised

if TYPE_CHECKING:
    from service.runtime import Runtime

__all__ = ["opentrade", "outcome_reply"]


def outcome_reply(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """The status and body an alert's outcome is answered with."""
    if isinstance(outcome, Invalid):
        return 422, {"errors": outcome.errors}
    if isinstance(outcome, Duplicate):
        return 200, {"alert_id": outcome.alert_id, "trades": outcome.trades, "duplicate": True}
    if isinstance(outcome, Declined):
        return (503 if outcome.unavailable else 409), {"alert_id": outcome.alert_id,
                                                       "errors": [{"field": outcome.rule, "reason": outcome.reason}]}
    assert isinstance(outcome, Accepted)
    reply: dict[str, Any] = {"alert_id": outcome.alert_id, "trades": outcome.trades, "closing": outcome.closing}
    if outcome.reducing:
        reply["reducing"] = [{"trade": t, "quantity": units} for t, units in outcome.reducing]
    if outcome.refused:
        reply["refused"] = [{"leg": r.leg, "reason": r.reason, "account": a} for a, r in outcome.refused]
    if outcome.notes:
        reply["notes"] = outcome.notes
    return 202, reply


async def opentrade(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    raw = await limited_body(request, runtime.metrics)
    body, parse_error = parse_json(raw)
    if not parse_error and not isinstance(body, dict):
        parse_error = "expected a JSON object"
    if not authorised(request, runtime.settings.webhook_secret, body if isinstance(body, dict) else None):
        runtime.metrics.count_alert("unauthorized")
        raise unauthorised()
    if parse_error:
        runtime.metrics.count_alert("invalid")
        raise HttpError.of(422, "body", parse_error)
    assert isinstance(body, dict)
    outcome = await runtime.intake.take(body)
    status, reply = outcome_reply(outcome)
    if isinstance(outcome, Accepted):
        return json_reply(reply, status)  # the hot path's reply, encoded by msgspec
    return JSONResponse(reply, status)
