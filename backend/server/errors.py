"""Errors as JSON ``{"error": message, "field": path or null}``, never a traceback.

- :class:`ApiError` is what the endpoints raise: a status, a message naming the problem and the
  field it concerns.
- Pydantic validation errors become 422 with the field's path (``body.options.seed``).
- :class:`~backend.shots.ShotSequenceError` messages start with the field's path inside the
  sequence (``shots[0] 'shot_010'.c2w: ...``); :func:`sequence_field` turns that into
  ``shots[0].c2w``.
- Anything unexpected is logged with its traceback on the server and answered with a 500 that
  names only the exception type.
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
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("shotbridge.server")


class ApiError(Exception):
    """An error answer: HTTP ``status``, a ``message`` naming the problem, the ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def location_path(loc: Sequence[Any]) -> str:
    """Pydantic's ``("body", "shots", 0)`` -> ``body.shots[0]``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# "shots[0] 'shot_010'.c2w[3]: message" -> path "shots[0] 'shot_010'.c2w[3]"
_SEQUENCE_PATH = re.compile(r"^((?:[A-Za-z_]\w*)(?:\[\d+\](?: '(?:[^'\\]|\\.)*'| \"[^\"]*\")?|"
                            r"\.[A-Za-z_]\w*)*)(?=: )")
_SHOT_NAME = re.compile(r"(\[\d+\]) (?:'(?:[^'\\]|\\.)*'|\"[^\"]*\")")


def sequence_field(message: str) -> str | None:
    """The field path at the start of a ShotSequenceError message, without the shot names:
    ``"shots[0] 'shot_010'.c2w[3]: ..."`` -> ``"shots[0].c2w[3]"``."""
    match = _SEQUENCE_PATH.match(message)
    if not match or match[1] == "<root>":
        return None
    return _SHOT_NAME.sub(r"\1", match[1])


def _validation_error(error: RequestValidationError) -> tuple[str, str | None]:
    first = error.errors()[0] if error.errors() else {}
    loc = list(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        position = loc[-1] if loc and isinstance(loc[-1], int) else "?"
        detail = first.get("ctx", {}).get("error", "invalid JSON")
        return f"body: not valid JSON at character {position}: {detail}", "body"
    field = location_path(loc) or None
    message = first.get("msg", "invalid request")
    return (f"{field}: {message}" if field else message), field


class DeclaredBodyLimit:
    """Refuse a body whose ``Content-Length`` is over ``max_bytes`` with the JSON error body.

    FastAPI's own ``max_body_size`` limiter (set on the router as well) answers in plain text; it
    still guards bodies sent without a length.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = error_response(413, f"body: {int(length)} bytes is more than the "
                                               f"limit of {self.max_bytes}", "body")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the JSON error body."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.field, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        message, field = _validation_error(error)
        return error_response(422, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), None,
                              getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(500, f"internal server error ({type(error).__name__}); the "
                                   "server's log has the details")
