"""``unireward app``: the judge in a browser (Gradio), over a local model or an OpenAI-compatible URL."""

from __future__ import annotations

import argparse
import os
from typing import Any

from unireward.cli_args import hidden_alias


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help="a web page for the judge: upload a pair, read the verdict, scores, reasoning and the frames it saw",
        description="Serve a Gradio page over a local model (--model) or an OpenAI-compatible endpoint (--base-url).",
    )
    src = p.add_argument_group("model")
    src.add_argument("--model", default=None, help="local folder or hub id; with --base-url the served model name (default: the server's first)")
    src.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (vLLM, `unireward serve`) instead of loading --model")
    src.add_argument("--api-key", default=os.environ.get("UNIREWARD_API_KEY"), help="key for --base-url (env UNIREWARD_API_KEY)")
    hidden_alias(src, src.add_argument("--model-family", dest="family", default=None, help="model family (detected from config.json if omitted)"), "--family")
    src.add_argument("--device", default=None)
    src.add_argument("--dtype", default="auto")
    src.add_argument("--batch-size", type=int, default=8, help="concurrent requests merged into one generate call (local model)")
    web = p.add_argument_group("page")
    web.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; use --auth when opening it up)")
    web.add_argument("--port", type=int, default=7860)
    web.add_argument("--auth", default=os.environ.get("UNIREWARD_APP_AUTH"), help="USER:PASSWORD for basic auth (env UNIREWARD_APP_AUTH)")
    web.add_argument("--concurrency", type=int, default=4, help="judgments running at once (more wait in the queue)")
    web.add_argument("--no-examples", action="store_true", help="do not write and show the synthetic examples")
    web.add_argument("--max-upload-mb", type=float, default=None,
                     help="largest upload (default: the judge's own limit on a media file)")  # fmt: skip
    web.add_argument("--upload-ttl", type=int, default=3600, help="seconds an upload is kept before it is deleted")
    gen = p.add_argument_group("defaults of the form")
    gen.add_argument("--max-new-tokens", type=int, default=4096)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--swap", action="store_true")
    gen.add_argument("--template-family", default=None)
    gen.add_argument("--video-as", choices=["video", "frames"], default="video",
                     help="send videos as videos or as frame images (models trained with TRL saw frames)")  # fmt: skip
    gen.add_argument("--max-pixels", type=int, default=None, help="pixel cap per image/frame (default: the family's)")
    gen.add_argument("--frames", type=int, default=None, help="frames sampled per video (default 8)")
    p.set_defaults(func=run)


def served_model(base_url: str, api_key: str | None) -> str:
    """The first model an OpenAI-compatible server lists (``GET /v1/models``)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.get(base_url.rstrip("/") + "/models", headers=headers, timeout=10)
        r.raise_for_status()
        ids = [m["id"] for m in r.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot list the models of {base_url} ({e}); give --model") from None
    if not ids:
        raise ValueError(f"{base_url} lists no models; give --model")
    return ids[0]


def make_judge(args: argparse.Namespace) -> Any:
    """The shared judge: the same construction as ``unireward judge``; a local model also batches
    concurrent users' requests together."""
    from unireward.judge.backends import BatchingBackend
    from unireward.judge.cli import build_judge

    if not args.base_url and not args.model:
        raise ValueError("give --model (a local folder or hub id) or --base-url")
    model = args.model or served_model(args.base_url, args.api_key)
    ns = argparse.Namespace(
        model=model, family=args.family, base_url=args.base_url, api_key=args.api_key,
        concurrency=max(args.concurrency, 1), device=args.device, dtype=args.dtype, batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=1.0, num_samples=1,
        swap=args.swap, strict=False, seed=None, template_family=args.template_family, video_as=args.video_as,
        max_pixels=args.max_pixels, frames=args.frames,
    )  # fmt: skip
    judge = build_judge(ns)
    if not args.base_url:
        judge.backend = BatchingBackend(judge.backend, max_requests=args.batch_size)
    return judge, model


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise ValueError("the app needs Gradio: pip install 'unireward[app]'") from None
    from unireward.app.layout import AppSettings
    from unireward.app.server import ServerOptions, parse_auth, serve

    max_bytes = None if args.max_upload_mb is None else max(1, int(args.max_upload_mb * (1 << 20)))
    options = ServerOptions(host=args.host, port=args.port, auth=parse_auth(args.auth), examples=not args.no_examples,
                            max_file_size=max_bytes, upload_ttl_s=args.upload_ttl)  # fmt: skip
    judge, model = make_judge(args)
    print(f"unireward app: http://{args.host}:{args.port} (model {model})", flush=True)
    serve(judge, options, AppSettings(model_name=model, concurrency=args.concurrency))
    return 0
