"""HTTP server for a judge: an OpenAI-compatible ``/v1/chat/completions`` (the request shape the
GRPO trainers send), ``/v1/judge``, ``/v1/score``, ``/v1/rewards`` (a group's rewards),
``/v1/models``, ``/health`` and Prometheus ``/metrics``.

Media arrive inline as base64 ``data:`` URLs (images, or a video as a list of frame images, or a
``data:video/...`` file). Remote URLs and server-side paths are refused unless a media root is
configured, so a public server cannot be made to read its own disk or fetch other hosts.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.

import logging
import os
import re
from typing import Any

from unireward.judge.judge import Judge
from unireward.serve import chat, judging
from unireward.serve.errors import ApiError, install_error_handlers
from unireward.serve.limits import ServerLimits
from unireward.serve.middleware import Gate
from unireward.serve.state import DEFAULT_MEDIA_CACHE_MB, OFFICIAL_ALIAS, ServerState

log = logging.getLogger("unireward.serve")


async def read_json(request: Any) -> dict[str, Any]:
    import json

    raw = await request.body()  # ApiError (413) from the gate propagates as is
    try:
        if len(raw) > 1 << 20:  # parsing tens of MB would stall every other request: off the loop
            from starlette.concurrency import run_in_threadpool

            data = await run_in_threadpool(json.loads, raw)
        else:
            data = json.loads(raw)
    except RecursionError:  # nested thousands of levels deep: no request of ours looks like that
        raise ApiError(400, "body is nested too deeply to be a request", "invalid_json") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body must be a JSON object", "invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object", "invalid_json")
    if _SURROGATE.search(raw):  # a lone \udXXX escape parses, then breaks the tokenizer: check only then
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "body holds an unpaired UTF-16 surrogate escape (not valid Unicode text)",
                           "invalid_json") from None  # fmt: skip
    return data


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def create_app(
    judge: Judge,
    limits: ServerLimits | None = None,
    api_key: str | None = None,
    media_root: str | os.PathLike[str] | None = None,
    model_name: str | list[str] | None = None,
    batch_size: int = 16,
    media_cache_mb: int = DEFAULT_MEDIA_CACHE_MB,
) -> Any:
    """A FastAPI app serving ``judge``.

    ``model_name`` is the name (or names) clients may send as ``model``; the official clients'
    ``UnifiedReward`` is always accepted too. Other names get vLLM's 404. ``media_cache_mb`` bounds the
    LRU of decoded media and vision features shared by all requests (0: none).
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    limits = limits or ServerLimits()
    names = [model_name] if isinstance(model_name, str) else list(model_name or [judge.name])
    if OFFICIAL_ALIAS not in names:
        names.append(OFFICIAL_ALIAS)
    state = ServerState(judge, limits, names, media_root, batch_size, media_cache_mb)

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        yield
        state.draining = True
        state.scheduler.close(abort_running=True)
        state.decode_pool.shutdown(wait=False, cancel_futures=True)
        state.judge_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="unireward judge", version="1", lifespan=lifespan)
    app.state.server = state
    install_error_handlers(app, on_reject=state.metrics.reject)
    app.add_middleware(Gate, max_request_bytes=limits.max_request_bytes, api_key=api_key, metrics=state.metrics)

    @app.get("/health")
    async def health() -> Any:
        """200 "ok"; 503 "draining" from SIGTERM until the drain ends (load balancers stop sending)."""
        from fastapi.responses import JSONResponse

        body = {"status": "draining" if state.draining else "ok", "model": names[0]}
        return JSONResponse(body, status_code=503 if state.draining else 200)

    @app.get("/metrics")
    async def metrics() -> Any:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list",
                "data": [{"id": n, "object": "model", "created": 0, "owned_by": "unireward"} for n in names]}  # fmt: skip

    chat.register(app, state, read_json)
    judging.register(app, state, read_json)
    return app
