"""The GTT routes of the REST face (`paper.gtt` keeps the rules): paths, route names and replies as
smartapi-python sends and reads them.

createRule / modifyRule / cancelRule sit under `/gtt-service` as the SDK calls them; they are served
without that prefix too, as SmartAPI's docs name them. ruleDetails and ruleList have no prefix.
Each route is rate-limited under its own name (`paper.ratelimit`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from paper.envelopes import ok

if TYPE_CHECKING:
    from paper.auth import Session
    from paper.exchange import PaperExchange

__all__ = ["GTT_ROUTES"]

GTT = "/rest/secure/angelbroking/gtt/v1"
SERVICE = "/gtt-service"


async def create_rule(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    return ok({"id": ex.gtt.create(session.clientcode, body).id})


async def modify_rule(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    return ok({"id": ex.gtt.modify(session.clientcode, body).id})


async def cancel_rule(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    return ok({"id": ex.gtt.cancel(session.clientcode, body).id})


async def rule_details(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    return ok(ex.gtt.details(session.clientcode, body))


async def rule_list(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    assert session is not None
    return ok(ex.gtt.listing(session.clientcode, body))


# (path, route name, handler): every one a POST
GTT_ROUTES = [
    *((f"{prefix}{GTT}/createRule", "createRule", create_rule) for prefix in (SERVICE, "")),
    *((f"{prefix}{GTT}/modifyRule", "modifyRule", modify_rule) for prefix in (SERVICE, "")),
    *((f"{prefix}{GTT}/cancelRule", "cancelRule", cancel_rule) for prefix in (SERVICE, "")),
    (f"{GTT}/ruleDetails", "ruleDetails", rule_details),
    (f"{GTT}/ruleList", "ruleList", rule_list),
]
