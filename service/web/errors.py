"""Errors become HTTP replies here, once: `{"errors": [{"field", "reason"}, ...]}` with a status.

A handler raises `HttpError` (or lets the domain's `AlertInvalid` through) and Starlette's
`exception_handlers` turn it into the reply; no handler builds an error body of its own.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.alerts.parse import AlertInvalid

__all__ = ["EXCEPTION_HANDLERS", "HttpError", "error_reply", "not_signed_in", "unauthorised"]


class HttpError(Exception):
    def __init__(self, status: int, errors: list[dict[str, str]], headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.errors = errors
        self.headers = headers
        super().__init__(f"{status}: {errors}")

    @classmethod
    def of(cls, status: int, field: str, reason: str) -> HttpError:
        return cls(status, [{"field": field, "reason": reason}])


def unauthorised() -> HttpError:
    return HttpError.of(401, "token", "missing or wrong webhook secret")


def not_signed_in() -> HttpError:
    return HttpError.of(401, "operator", "sign in as an operator (session) or send an operator's API token "
                                         "(Authorization: Bearer tgo_…); the webhook secret opens only the alert routes")


def error_reply(status: int, errors: list[dict[str, str]], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": errors}, status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_reply(exc.status, exc.errors, exc.headers)


async def _alert_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AlertInvalid)
    return error_reply(422, exc.errors)


EXCEPTION_HANDLERS = {HttpError: _http_error, AlertInvalid: _alert_invalid}
