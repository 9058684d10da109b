"""The ASGI layer in front of the routes: API key, body size (counted as chunks arrive, so a
chunked upload cannot grow past the limit in memory), and one access-log line per request."""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from unireward.serve.errors import ApiError, error_body

access_log = logging.getLogger("unireward.serve.access")


class Gate:
    """Pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` would buffer the body first)."""

    def __init__(self, app: Any, max_request_bytes: int, api_key: str | None, metrics: Any = None):
        self.app = app
        self.max_bytes = max_request_bytes
        self.api_key = api_key
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        path = scope.get("path", "")
        status = {"code": 0}

        async def send_logged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope, path)
            if refusal is not None:
                await self._reply(send_logged, refusal)
                return
            received = 0

            async def counted_receive() -> dict[str, Any]:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_bytes:
                        raise ApiError(413, f"request body is above the limit of {self.max_bytes} bytes "
                                            "(--max-request-bytes)", "request_too_large")  # fmt: skip
                return message

            await self.app(scope, counted_receive, send_logged)
        finally:
            elapsed = time.monotonic() - start
            client = scope.get("client") or ("-", 0)
            route = path if path in _ROUTES else "other"
            if self.metrics is not None:
                self.metrics.request(route, status["code"])
            access_log.info('%s "%s %s" %d %.3fs', client[0], scope.get("method"), path, status["code"], elapsed)

    def _refusal(self, scope: dict[str, Any], path: str) -> ApiError | None:
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and path not in ("/health", "/metrics"):
            auth = headers.get(b"authorization", b"").decode("latin-1")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(given.encode(), self.api_key.encode()):
                return ApiError(401, "missing or wrong API key (send Authorization: Bearer KEY)", "invalid_api_key")
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return ApiError(400, "malformed Content-Length", "bad_request")
            if int(length) > self.max_bytes:
                return ApiError(413, f"request body is {int(length)} bytes, above the limit of {self.max_bytes} "
                                     "(--max-request-bytes)", "request_too_large")  # fmt: skip
        return None

    async def _reply(self, send: Any, err: ApiError) -> None:
        if self.metrics is not None:
            self.metrics.reject(err.code)
        body = json.dumps(error_body(err.status, err.message, err.code)).encode()
        await send({"type": "http.response.start", "status": err.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


_ROUTES = ("/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/judge", "/v1/score", "/v1/rewards")
