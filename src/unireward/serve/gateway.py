"""A reward gateway: the server's API with no local model, over a fleet of OpenAI-compatible judges.

``unireward serve --upstream URL [--upstream URL ...]`` answers ``/v1/judge``, ``/v1/score``,
``/v1/rewards`` and ``/v1/chat/completions`` as ``unireward serve --model`` does: requests are
parsed, validated and limited by the same code, prompts are rendered, verdicts parsed, votes and win
rates computed here. Only generation goes upstream (``vllm serve``, SGLang, ``unireward serve``),
through one :class:`~unireward.judge.endpoints.EndpointPool`: least in flight, a failed request
retried on another upstream, upstreams taken out and put back by health checks. The judge routes
run the server's own code paths on a :class:`~unireward.judge.Judge` whose backend is that pool;
chat completions are validated (media decoded under the limits) and then forwarded as sent.

A group of ``/v1/rewards`` is N(N-1)/2 pairs: they fan out across the upstreams, which is how a
``/v1/rewards`` user gets a vLLM fleet's throughput.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from unireward.judge.endpoints import EndpointPool
from unireward.serve.errors import ApiError
from unireward.serve.limits import ServerLimits

log = logging.getLogger("unireward.serve")

#: what the official clients and ``vllm serve ... --served-model-name UnifiedReward`` call the judge
DEFAULT_UPSTREAM_MODEL = "UnifiedReward"


def add_gateway_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("gateway (no local model)")
    g.add_argument("--upstream", action="append", default=None, metavar="URL",
                   help="OpenAI base URL of a judge server (e.g. http://host:8000/v1); repeat for a fleet. "
                        "With it, --model is not loaded")  # fmt: skip
    g.add_argument("--upstream-model", default=DEFAULT_UPSTREAM_MODEL,
                   help="model name sent upstream (the upstreams' --served-model-name)")  # fmt: skip
    g.add_argument("--upstream-api-key", default=os.environ.get("UNIREWARD_UPSTREAM_API_KEY"),
                   help="key the upstreams want (env UNIREWARD_UPSTREAM_API_KEY)")  # fmt: skip
    g.add_argument("--upstream-concurrency", type=int, default=16, help="requests in flight per upstream")
    g.add_argument("--upstream-timeout", type=float, default=600.0, help="seconds per upstream request")
    g.add_argument("--upstream-retries", type=int, default=4, help="attempts after the first, across upstreams")
    g.add_argument("--health-interval", type=float, default=5.0, help="seconds between upstream health checks")


class Gateway:
    """The pool of upstreams and the judge that generates through it."""

    def __init__(self, upstreams: Sequence[str], model: str = DEFAULT_UPSTREAM_MODEL, api_key: str | None = None,
                 concurrency: int = 16, timeout: float = 600.0, max_retries: int = 4, health_interval: float = 5.0,
                 max_new_tokens: int | None = None, swap: bool = False, budget: Any = None):  # fmt: skip
        from unireward.judge.backends import HTTPBackend
        from unireward.judge.judge import Judge
        from unireward.judge.options import JudgeOptions
        from unireward.media import VisionBudget

        self.pool = EndpointPool(upstreams, model, api_key=api_key, concurrency=concurrency, timeout=timeout,
                                 max_retries=max_retries, health_interval=health_interval)  # fmt: skip
        self.pool.check_health()  # /health is true from the start; the background check keeps it so
        self.pool.start_health_checks()
        opts = JudgeOptions(swap=swap) if max_new_tokens is None else JudgeOptions(max_new_tokens=max_new_tokens, swap=swap)
        # Media are sized to this budget here (the official scripts' 147,456 px, 8 frames by default) and
        # sent as PNG; each upstream sizes them to its own model's budget again.
        self.judge = Judge(HTTPBackend(self.pool, budget=budget or VisionBudget()), opts)

    def health(self) -> dict[str, Any]:
        ups = self.pool.summary()
        return {"upstreams": ups, "healthy_upstreams": sum(u["healthy"] for u in ups)}

    def metrics_text(self) -> str:
        """Prometheus lines per upstream: health, requests in flight, attempts by result."""
        lines = ["# TYPE unireward_upstream_healthy gauge", "# TYPE unireward_upstream_in_flight gauge",
                 "# TYPE unireward_upstream_requests_total counter"]  # fmt: skip
        for u in self.pool.summary():
            label = 'upstream="' + u["url"].replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"unireward_upstream_healthy{{{label}}} {int(u['healthy'])}")
            lines.append(f"unireward_upstream_in_flight{{{label}}} {u['in_flight']}")
            for result in ("ok", "failed", "rerouted"):
                lines.append(f'unireward_upstream_requests_total{{{label},result="{result}"}} {u[result]}')
        return "\n".join(lines) + "\n"


def create_gateway(
    upstreams: Sequence[str],
    limits: ServerLimits | None = None,
    api_key: str | None = None,
    media_root: str | os.PathLike[str] | None = None,
    model_name: str | list[str] | None = None,
    batch_size: int | None = None,
    **gateway: Any,
) -> Any:
    """A FastAPI app with the server's API over ``upstreams`` (see the module docstring).

    ``gateway`` goes to :class:`Gateway` (``model``, ``api_key`` of the upstreams as
    ``upstream_api_key``, ``concurrency``, ``timeout``, ``max_retries``, ``health_interval``, ...).
    ``batch_size`` (rows the scheduler hands the pool at once) defaults to every upstream's
    concurrency together, so a group's pairs fill the fleet.
    """
    from unireward.serve.app import create_app

    upstream_key = gateway.pop("upstream_api_key", None)
    limits = limits or ServerLimits()
    gw = Gateway(upstreams, api_key=upstream_key, max_new_tokens=limits.max_new_tokens, **gateway)
    batch = batch_size or gw.pool.concurrency * len(gw.pool.endpoints)
    app = create_app(gw.judge, limits, api_key=api_key, media_root=media_root, model_name=model_name or "unireward-gateway",
                     batch_size=batch)  # fmt: skip
    app.state.gateway = gw
    _replace_routes(app, gw)
    return app


def _replace_routes(app: Any, gw: Gateway) -> None:
    """Chat completions are forwarded, not re-generated here; ``/health`` and ``/metrics`` add the upstreams."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    from unireward.serve.app import read_json

    state = app.state.server
    app.router.routes = [r for r in app.router.routes
                         if getattr(r, "path", None) not in ("/v1/chat/completions", "/health", "/metrics")]  # fmt: skip

    @app.get("/health")
    async def health() -> Any:
        h = gw.health()
        status = "draining" if state.draining else ("ok" if h["healthy_upstreams"] else "no_healthy_upstream")
        return JSONResponse({"status": status, "model": state.names[0], **h}, status_code=200 if status == "ok" else 503)

    @app.get("/metrics")
    async def metrics() -> Any:
        return PlainTextResponse(state.metrics.render() + gw.metrics_text(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await forward_chat(request, state, gw, await read_json(request))


async def forward_chat(request: Any, state: Any, gw: Gateway, data: dict[str, Any]) -> Any:
    """The chat route's checks (model, sampling, message structure, media under every limit), then
    the request as sent to the least busy upstream; the answer keeps this server's warnings."""
    from fastapi.responses import JSONResponse

    from unireward.judge.backends import Generation
    from unireward.judge.openai_http import ChatError
    from unireward.serve.chat import check_chat_request, completion, decode_messages
    from unireward.serve.decode import MediaDecoder
    from unireward.serve.scheduler import Scope

    s, messages, n_images, n_videos = check_chat_request(state, data)
    with state.admit():
        dec = MediaDecoder(state.limits, state.judge.budget, state.media_root, state.temporal_patch,
                           n_images=n_images, n_videos=n_videos)  # fmt: skip
        ours = await state.decode(lambda: decode_messages(messages, dec))  # the limits, checked on the real bytes
        state.check_prompt_tokens(sum(state.text_tokens(p.get("text", "")) for m in ours for p in m["content"]))
        n = 1 if s.replicate_greedy else s.n
        gen = {"max_tokens": s.max_tokens or state.limits.max_new_tokens, "temperature": s.temperature, "n": n,
               "top_p": s.top_p, "seed": s.seed, "stop": s.stop or None, "min_tokens": s.min_tokens}  # fmt: skip
        try:
            resp = await state.until_done(request, Scope(), gw.pool.achat(messages, request_name="chat", **gen))
        except ChatError as e:
            if e.status is not None and 400 <= e.status < 500 and e.status not in (408, 409, 425, 429):
                raise ApiError(e.status, f"upstream refused the request: {e}", "upstream_refused") from None
            raise ApiError(502, f"no upstream answered: {e}", "upstream_failed") from None
    per = resp.usage.get("completion_tokens", 0) // max(1, len(resp.texts))
    out = Generation(list(resp.texts), resp.usage.get("prompt_tokens", 0), [per] * len(resp.texts),
                     [resp.finish_reason] * len(resp.texts))  # fmt: skip
    body = completion(data.get("model") or state.names[0], out, s)
    headers = {"X-Max-Tokens-Clamped": str(s.max_tokens)} if any("clamped" in w for w in s.warnings) else None
    return JSONResponse(body, headers=headers)


def run_gateway(args: argparse.Namespace) -> int:
    """``unireward serve --upstream ...``: the gateway under uvicorn, draining on SIGTERM like the server."""
    import uvicorn

    from unireward.serve.cli import _draining_server, _setup_logging, limits_from_args

    try:
        limits = limits_from_args(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _setup_logging()
    if args.no_access_log:
        logging.getLogger("unireward.serve.access").setLevel(logging.WARNING)
    names = args.served_model_name or ([args.model] if args.model else None)
    app = create_gateway(
        args.upstream, limits, api_key=args.api_key, media_root=args.media_root, model_name=names,
        batch_size=None, model=args.upstream_model, upstream_api_key=args.upstream_api_key,
        concurrency=args.upstream_concurrency, timeout=args.upstream_timeout, max_retries=args.upstream_retries,
        health_interval=args.health_interval, swap=args.swap,
    )  # fmt: skip
    state = app.state.server
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        log.warning("serving on %s without --api-key", args.host)
    log.info("unireward serve (gateway): http://%s:%d upstreams=%s upstream_model=%s names=%s %s", args.host, args.port,
             ",".join(e.url for e in app.state.gateway.pool.endpoints), args.upstream_model, ",".join(state.names),
             limits.summary())  # fmt: skip
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=max(1, int(args.drain_timeout) + 1))  # fmt: skip
    _draining_server(config, state, args.drain_timeout).run()
    app.state.gateway.pool.close()
    return 0
