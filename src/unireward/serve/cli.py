"""``unireward serve``: a judge behind an HTTP API (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a judge over HTTP (/v1/judge, /v1/score, /v1/chat/completions)")
    p.add_argument("--model", required=True, help="local folder or hub id")
    p.add_argument("--family", default=None)
    p.add_argument("--served-name", default=None, help="model name reported to clients (default: --model)")
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default loopback; use 0.0.0.0 with --api-key)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("UNIREWARD_API_KEY"),
        help="require Authorization: Bearer KEY (env UNIREWARD_API_KEY)",
    )
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--media-root", default=None, help="allow relative media paths under this directory")
    p.add_argument("--max-new-tokens", type=int, default=4096, help="default and cap per request")
    p.add_argument("--batch-size", type=int, default=16, help="requests merged into one generate call")
    p.add_argument("--max-request-bytes", type=int, default=64 << 20)
    p.add_argument("--max-images", type=int, default=32, help="images per request (video frames count)")
    p.add_argument("--max-image-pixels", type=int, default=4096 * 4096, help="pixels of each uploaded image")
    p.add_argument("--swap", action="store_true", help="judge both orders by default")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from unireward.judge.backends import BatchingBackend, TransformersBackend
    from unireward.judge.judge import Judge
    from unireward.judge.options import BatchOptions, JudgeOptions
    from unireward.serve.app import ServerLimits, create_app

    limits = ServerLimits(
        max_request_bytes=args.max_request_bytes, max_images=args.max_images,
        max_image_pixels=args.max_image_pixels, max_new_tokens=args.max_new_tokens,
    )  # fmt: skip
    backend = TransformersBackend.load(args.model, family=args.family, device=args.device, dtype=args.dtype,
                                       batch=BatchOptions(max_batch_size=args.batch_size))  # fmt: skip
    judge = Judge(
        BatchingBackend(backend, max_requests=args.batch_size),
        JudgeOptions(max_new_tokens=args.max_new_tokens, swap=args.swap),
    )
    app = create_app(
        judge,
        limits,
        api_key=args.api_key,
        media_root=args.media_root,
        model_name=args.served_name or args.model,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"warning: serving on {args.host} without --api-key", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
