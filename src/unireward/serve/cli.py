"""``unireward serve``: a judge behind an HTTP API (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

from unireward.cli_args import hidden_alias
from unireward.serve.limits import DEFAULT_MEDIA_CACHE_MB, VIDEO_CODECS, VIDEO_CONTAINERS, ServerLimits

_D = ServerLimits()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a judge over HTTP (/v1/chat/completions, /v1/judge, /v1/score, /v1/rewards, /metrics)"
    )
    p.add_argument("--model", default=None, help="local folder or hub id (not with --upstream)")
    hidden_alias(p, p.add_argument("--model-family", dest="family", default=None), "--family")
    p.add_argument(
        "--served-model-name", "--served-name", dest="served_model_name", nargs="+", default=None,
        help="name(s) clients send as `model` (default: --model); `UnifiedReward` is always accepted",
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; use 0.0.0.0 with --api-key)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key", default=os.environ.get("UNIREWARD_API_KEY"),
        help="require Authorization: Bearer KEY (env UNIREWARD_API_KEY)",
    )  # fmt: skip
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--media-root", default=None, help="allow relative media paths under this directory")
    p.add_argument("--max-new-tokens", type=int, default=_D.max_new_tokens,
                   help="default and cap per request (a larger max_tokens is clamped)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=16, help="requests merged into one generate call")
    p.add_argument("--max-queue", type=int, default=_D.max_queue,
                   help="generations waiting beyond the batch (a group's pairs each count); more get 429")  # fmt: skip
    p.add_argument("--max-group-pairs", type=int, default=_D.max_group_pairs,
                   help="judgments one /v1/rewards group may need (pairs; both orders count twice); more get 413")  # fmt: skip
    p.add_argument("--max-request-bytes", type=int, default=_D.max_request_bytes)
    p.add_argument("--max-images", type=int, default=_D.max_images, help="images per request (video frames count)")
    p.add_argument("--max-image-pixels", type=int, default=_D.max_image_pixels, help="pixels of each uploaded image")
    p.add_argument("--max-prompt-tokens", type=int, default=_D.max_prompt_tokens,
                   help="prompt tokens, vision tokens included")  # fmt: skip
    p.add_argument("--max-video-frames", type=int, default=_D.max_video_frames, help="frames in an uploaded video file")
    p.add_argument("--max-frame-pixels", type=int, default=_D.max_frame_pixels, help="pixels of each video frame")
    p.add_argument("--max-video-pixels", type=int, default=_D.max_video_pixels,
                   help="frames x width x height of an uploaded video")  # fmt: skip
    p.add_argument("--video-containers", default=",".join(VIDEO_CONTAINERS), help="allowed video containers")
    p.add_argument("--video-codecs", default=",".join(VIDEO_CODECS), help="allowed video codecs")
    p.add_argument("--decode-workers", type=int, default=_D.decode_workers, help="threads decoding media")
    p.add_argument("--media-cache-mb", type=int, default=DEFAULT_MEDIA_CACHE_MB,
                   help="LRU of decoded media and vision features, keyed by content (0: off)")  # fmt: skip
    p.add_argument("--drain-timeout", type=float, default=10.0,
                   help="seconds SIGTERM lets in-flight requests finish before they are stopped")  # fmt: skip
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument("--swap", action="store_true", help="judge both orders by default")
    from unireward.serve.gateway import add_gateway_args

    add_gateway_args(p)
    p.set_defaults(func=run)


def limits_from_args(args: argparse.Namespace) -> ServerLimits:
    return ServerLimits(
        max_request_bytes=args.max_request_bytes, max_images=args.max_images, max_image_pixels=args.max_image_pixels,
        max_new_tokens=args.max_new_tokens, max_prompt_tokens=args.max_prompt_tokens,
        max_video_frames=args.max_video_frames, max_frame_pixels=args.max_frame_pixels,
        max_video_pixels=args.max_video_pixels, max_queue=args.max_queue, decode_workers=args.decode_workers,
        max_group_pairs=args.max_group_pairs,
        video_containers=tuple(x for x in args.video_containers.split(",") if x),
        video_codecs=tuple(x for x in args.video_codecs.split(",") if x),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from unireward.judge.backends import TransformersBackend
    from unireward.judge.judge import Judge
    from unireward.judge.options import BatchOptions, JudgeOptions
    from unireward.models.zoo import protocol_options
    from unireward.serve.app import create_app

    if args.upstream:  # a gateway over other servers: no local model
        if args.model or args.device:
            raise ValueError("--upstream serves other servers' model: drop --model/--device (name it with --served-model-name)")
        from unireward.serve.gateway import run_gateway

        return run_gateway(args)
    if not args.model:
        raise ValueError("give --model (a local folder or hub id), or --upstream URL for a gateway")
    try:
        limits = limits_from_args(args)
        if args.media_cache_mb < 0:
            raise ValueError(f"--media-cache-mb must be >= 0 (0 turns the cache off), got {args.media_cache_mb}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _setup_logging()
    if args.no_access_log:
        logging.getLogger("unireward.serve.access").setLevel(logging.WARNING)
    backend = TransformersBackend.load(args.model, family=args.family, device=args.device, dtype=args.dtype,
                                       batch=BatchOptions(max_batch_size=args.batch_size))  # fmt: skip
    # a released checkpoint answers in its own protocol by default
    judge = Judge(backend, JudgeOptions(max_new_tokens=args.max_new_tokens, swap=args.swap,
                                        **protocol_options(args.model)))  # fmt: skip
    names = args.served_model_name or [args.model]
    app = create_app(judge, limits, api_key=args.api_key, media_root=args.media_root, model_name=names,
                     batch_size=args.batch_size, media_cache_mb=args.media_cache_mb)  # fmt: skip
    state = app.state.server
    log = logging.getLogger("unireward.serve")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        log.warning("serving on %s without --api-key", args.host)
    log.info("unireward serve: http://%s:%d model=%s names=%s batch_size=%d drain_timeout=%gs %s",
             args.host, args.port, args.model, ",".join(state.names), args.batch_size, args.drain_timeout,
             limits.summary())  # fmt: skip
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=max(1, int(args.drain_timeout) + 1))  # fmt: skip
    server = _draining_server(config, state, args.drain_timeout)
    server.run()
    return 0


def _setup_logging() -> None:
    """The server's own lines (startup, access log, drain) on stderr, whatever else configured logging."""
    logger = logging.getLogger("unireward.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _draining_server(config: Any, state: Any, drain_timeout: float) -> Any:
    """uvicorn's server whose SIGTERM/SIGINT first refuses new work (503) while it keeps listening
    (``/health`` answers 503 "draining"), lets in-flight requests finish for ``drain_timeout`` seconds,
    then stops the running batch, fails what is left and exits. A second signal exits at once."""
    import time

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if state.draining:  # a second signal: uvicorn's own shutdown now
                super().handle_exit(sig, frame)
                return
            state.draining = True
            self._captured_signals.append(sig)  # re-raised once shut down, as uvicorn does
            logging.getLogger("unireward.serve").info(
                "draining: %d requests in flight, stopping them after %gs", state.active, drain_timeout
            )
            threading.Thread(target=self._drain, name="unireward-drain", daemon=True).start()

        def _drain(self) -> None:
            deadline = time.monotonic() + drain_timeout
            while state.active and time.monotonic() < deadline:
                time.sleep(0.05)
            state.scheduler.close()  # stops the running batch at its next token
            deadline = time.monotonic() + 5.0  # the stopped requests answer their 503s
            while state.active and time.monotonic() < deadline:
                time.sleep(0.05)
            self.should_exit = True

    return Server(config)
