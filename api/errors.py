"""Every error is JSON ``{"error": {"type", "message", "code", "param"}}``.

That is OpenAI's error object, so the same body serves ``/v1/chat/completions``
clients (which show ``error.message`` to the user) and everyone else. Pipeline
exceptions map to statuses here, once: a bad question is 422, an index that cannot be
served is 503 with a hint, and nothing a client sends should reach a 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import ErrorBody, error_body
from api.service import NotReady
from index.store import StoreError
from rag.pipeline import QueryError

__all__ = [
    "ApiError",
    "ERROR_TYPES",
    "describe_validation",
    "documented",
    "error_response",
    "exception_body",
    "exception_status",
    "install_error_handlers",
    "public_message",
]

log = logging.getLogger("api.errors")

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}
RETRY_AFTER_UNAVAILABLE_S = 5
_SERVER_PATH = re.compile(r"(?<![\w:/])(?:[A-Za-z]:)?[/\\][^\s'\"()]+")


def public_message(text: str) -> str:
    """``text`` without server file paths (where the data lives is not the client's
    business); the full text goes to the log."""
    return _SERVER_PATH.sub("(path withheld)", text)


class ApiError(StarletteHTTPException):
    """An HTTP error with the fields of the error object."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.param = param


async def run_with_body_reader(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    reader: Receive,
    failure: type[StarletteHTTPException],
) -> None:
    """Run ``app`` reading its body through ``reader``; when ``reader`` raises
    ``failure`` before a response has started, answer with that error (status, detail,
    headers) instead. Once the response is under way the error propagates."""
    started = False

    async def watch(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, reader, watch)
    except failure as exc:
        if started:
            raise
        response = error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
        await response(scope, receive, send)


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse(
        error_body(kind, message, code=code, param=param), status_code=status, headers=headers
    )


def describe_validation(errors: Sequence[Any]) -> tuple[str, str | None]:
    """One readable sentence for pydantic's error list, and the first offending field."""
    parts: list[str] = []
    param: str | None = None
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            parts.append(
                f"the request body is not valid JSON ({detail})"
                if detail
                else "the request body is not valid JSON"
            )
            continue
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if not loc:
            msg = (
                "a JSON request body is required"
                if msg == "Field required"
                else f"the request body must be a JSON object ({msg})"
            )
        field = ".".join(loc)
        param = param or field or None
        parts.append(f"{field}: {msg}" if field else msg)
    return "; ".join(parts) or "invalid request", param


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param = describe_validation(exc.errors())
    return error_response(422, message, code="validation_error", param=param)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None)
    param = getattr(exc, "param", None)
    message = str(exc.detail) if exc.detail else "error"
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, message, code=code, param=param, headers=headers)


async def _query(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, str(exc), code="invalid_question")


async def _not_ready(request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        503,
        public_message(str(exc)),
        code="not_ready",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
    )


async def _store(request: Request, exc: Exception) -> JSONResponse:
    log.warning("index unavailable", extra={"detail": str(exc)})
    return error_response(
        503,
        public_message(str(exc)),
        code="index_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(QueryError, _query)
    app.add_exception_handler(NotReady, _not_ready)
    app.add_exception_handler(StoreError, _store)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses (all share the error body)."""
    return {s: {"model": ErrorBody, "description": ERROR_TYPES.get(s, "error")} for s in statuses}


def exception_status(exc: BaseException) -> tuple[int, str]:
    """Status and message for an exception met after a stream has started."""
    if isinstance(exc, QueryError):
        return 422, str(exc)
    if isinstance(exc, NotReady | StoreError):
        log.warning("index unavailable while streaming", extra={"detail": str(exc)})
        return 503, public_message(str(exc))
    log.error("error while streaming", exc_info=exc)
    return 500, "internal server error while answering"


def exception_body(exc: BaseException) -> dict[str, Any]:
    status, message = exception_status(exc)
    kind = ERROR_TYPES.get(status, "server_error")
    return error_body(kind, message)
