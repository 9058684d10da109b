"""Every rejection in OpenAI's error shape, so the ``openai`` client raises a typed error with our
message, and no input ever reaches the client as a plain-text 500."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("unireward.serve")

#: the ``type`` OpenAI (and vLLM) put in an error body, by status
_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "BadRequestError",
    408: "TimeoutError",
    413: "BadRequestError",
    422: "BadRequestError",
    429: "RateLimitError",
    503: "ServiceUnavailableError",
}


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx/5xx), a message naming the limit or field, a
    short machine-readable ``code`` (also the ``reason`` label of the rejection metric)."""

    def __init__(self, status: int, message: str, code: str = "invalid_request", param: str | None = None,
                 headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}


def error_body(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON.

    >>> error_body(404, "The model `x` does not exist.", "model_not_found")["error"]["type"]
    'NotFoundError'
    """
    kind = _TYPES.get(status, "BadRequestError" if status < 500 else "InternalServerError")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def install_error_handlers(app: Any, on_reject: Any = None) -> None:
    """JSON errors for our refusals, validation errors, Starlette's 404/405 and any bug left."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def respond(status: int, message: str, code: str, param: str | None = None,
                headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
        if on_reject is not None:
            on_reject(code)
        return JSONResponse(error_body(status, message, code, param), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api(_: Any, exc: ApiError) -> JSONResponse:
        return respond(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Any, exc: RequestValidationError) -> JSONResponse:
        return respond(400, f"invalid request: {exc.errors()[:3]}", "invalid_request")

    @app.exception_handler(HTTPException)
    async def _http(_: Any, exc: HTTPException) -> JSONResponse:
        return respond(exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404 else "http_error")

    @app.exception_handler(Exception)
    async def _bug(_: Any, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return respond(500, f"internal error: {type(exc).__name__}", "internal_error")
