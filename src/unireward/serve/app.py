"""HTTP server for a judge: ``/v1/judge``, ``/v1/score``, ``/health`` and an OpenAI-compatible
``/v1/chat/completions`` (non-streaming), so the ``openai`` client and our HTTP backend work against it.

Media arrive inline as base64 ``data:`` URLs (images, or a video as a list of frame images, or a
``data:video/...`` file). Remote URLs and server-side paths are refused unless a media root is
configured, so a public server cannot be made to read its own disk or fetch other hosts.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime,
# and Request is imported inside create_app.

import base64
import binascii
import io
import os
import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from unireward.judge.judge import Judge
from unireward.media import MediaError, VisionBudget, load_image, load_video


@dataclass
class ServerLimits:
    """What one request may carry; anything above gets a 4xx naming the limit."""

    max_request_bytes: int = 64 << 20
    max_images: int = 32  # video frames count as images
    max_image_pixels: int = 4096 * 4096  # of each decoded source image, before resizing
    max_new_tokens: int = 4096
    max_samples: int = 16

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_images", "max_image_pixels", "max_new_tokens", "max_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


_KEEP_SIZE = VisionBudget(min_pixels=1, max_pixels=1 << 40, factor=1)


class RequestError(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid_request"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class _MediaDecoder:
    """Turns request media into PIL images/frames while counting them against the limits."""

    def __init__(self, limits: ServerLimits, media_root: Path | None):
        self.limits = limits
        self.media_root = media_root
        self.count = 0

    def _bump(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.limits.max_images:
            raise RequestError(
                413,
                f"too many images: more than {self.limits.max_images} (video frames count as images)",
                "too_many_images",
            )

    def _check_pixels(self, img: Image.Image, what: str) -> None:
        if img.width * img.height > self.limits.max_image_pixels:
            raise RequestError(
                413,
                f"{what} is {img.width}x{img.height} = {img.width * img.height} pixels, above the limit of {self.limits.max_image_pixels}",
                "image_too_large",
            )

    def _bytes(self, url: str) -> tuple[str, bytes]:
        if not url.startswith("data:"):
            raise RequestError(
                400, "media must be base64 data: URLs (remote URLs are not fetched)", "bad_media"
            )
        header, _, payload = url.partition(",")
        if ";base64" not in header:
            raise RequestError(400, "data: URL must be base64-encoded", "bad_media")
        try:
            return header[5:].split(";")[0], base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "data: URL holds invalid base64", "bad_media") from None

    def image(self, ref: Any, what: str = "image") -> Any:
        self._bump()
        if isinstance(ref, str) and not ref.startswith("data:"):
            return self._path(ref)
        _, raw = self._bytes(str(ref))
        try:
            img = Image.open(io.BytesIO(raw))  # header only: size is known before decoding pixels
        except Exception as e:
            raise RequestError(
                400, f"{what}: cannot decode image ({type(e).__name__})", "bad_media"
            ) from None
        self._check_pixels(img, what)
        try:
            # Decoded and checked, not resized: the judge resizes under its own vision budget.
            return load_image(raw, _KEEP_SIZE)
        except MediaError as e:
            raise RequestError(400, f"{what}: {e.reason}", "bad_media") from None

    def video(self, ref: Any, what: str = "video") -> Any:
        if isinstance(ref, list):
            if not ref:
                raise RequestError(400, f"{what}: empty frame list", "bad_media")
            return [self.image(f, f"{what} frame {i}") for i, f in enumerate(ref)]
        if isinstance(ref, str) and not ref.startswith("data:"):
            self._bump()
            return self._path(ref)
        mime, raw = self._bytes(str(ref))
        if not mime.startswith("video/"):
            raise RequestError(
                400,
                f"{what}: expected a video data: URL or a list of frame images, got {mime or 'no type'}",
                "bad_media",
            )
        with tempfile.NamedTemporaryFile(suffix="." + mime.split("/")[1].split("+")[0]) as tmp:
            tmp.write(raw)
            tmp.flush()
            try:
                frames = load_video(tmp.name)
            except MediaError as e:
                raise RequestError(400, f"{what}: {e.reason}", "bad_media") from None
        self._bump(len(frames))
        return frames

    def _path(self, ref: str) -> str:
        if self.media_root is None:
            raise RequestError(
                400, "media must be base64 data: URLs (this server has no media root)", "bad_media"
            )
        path = (self.media_root / ref).resolve()
        if not path.is_relative_to(self.media_root):
            raise RequestError(400, f"{ref!r} is outside the media root", "bad_media")
        return str(path)


def create_app(
    judge: Judge,
    limits: ServerLimits | None = None,
    api_key: str | None = None,
    media_root: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
) -> Any:
    """A FastAPI app serving ``judge``; model calls run in worker threads."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    limits = limits or ServerLimits()
    root = Path(media_root).resolve() if media_root else None
    name = model_name or judge.name
    app = FastAPI(title="unireward judge", version="1")

    def error(status: int, message: str, code: str) -> JSONResponse:
        # OpenAI's error shape, so the openai client raises a typed error carrying our message.
        return JSONResponse(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error" if status < 500 else "server_error",
                    "code": code,
                }
            },
            status_code=status,
        )

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if request.url.path != "/health" and api_key is not None:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(given.encode(), api_key.encode()):
                return error(
                    401, "missing or wrong API key (send Authorization: Bearer KEY)", "invalid_api_key"
                )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_request_bytes:
            return error(
                413,
                f"request body is {length} bytes, above the limit of {limits.max_request_bytes}",
                "request_too_large",
            )
        if request.method == "POST" and length is None:
            body = await request.body()  # chunked upload: measure what actually arrived
            if len(body) > limits.max_request_bytes:
                return error(
                    413,
                    f"request body is above the limit of {limits.max_request_bytes} bytes",
                    "request_too_large",
                )
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def on_request_error(_: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, exc.message, exc.code)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, f"invalid request: {exc.errors()[:3]}", "invalid_request")

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except Exception:
            raise RequestError(400, "body must be a JSON object", "invalid_json") from None
        if not isinstance(data, dict):
            raise RequestError(400, "body must be a JSON object", "invalid_json")
        return data

    def gen_overrides(data: dict[str, Any]) -> dict[str, Any]:
        mnt = data.get("max_new_tokens", data.get("max_tokens", data.get("max_completion_tokens")))
        if mnt is not None and (not isinstance(mnt, int) or not 1 <= mnt <= limits.max_new_tokens):
            raise RequestError(
                400, f"max_tokens must be an integer in [1, {limits.max_new_tokens}]", "bad_parameter"
            )
        n = data.get("n", data.get("num_samples", 1)) or 1
        if not isinstance(n, int) or not 1 <= n <= limits.max_samples:
            raise RequestError(400, f"n must be an integer in [1, {limits.max_samples}]", "bad_parameter")
        temp = data.get("temperature")
        if temp is not None and (not isinstance(temp, (int, float)) or temp < 0):
            raise RequestError(400, "temperature must be >= 0", "bad_parameter")
        top_p = data.get("top_p")
        if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
            raise RequestError(400, "top_p must be in (0, 1]", "bad_parameter")
        return {
            "max_new_tokens": mnt,
            "num_samples": n,
            "temperature": temp,
            "top_p": top_p,
            "seed": data.get("seed"),
        }

    def scoped_judge(data: dict[str, Any]) -> Judge:
        """A view of the judge with this request's generation settings (same backend, same model)."""
        from dataclasses import replace

        g = gen_overrides(data)
        opts = judge.options
        changes: dict[str, Any] = {}
        if g["max_new_tokens"] is not None:
            changes["max_new_tokens"] = g["max_new_tokens"]
        if g["temperature"] is not None:
            changes["temperature"] = float(g["temperature"])
        if g["top_p"] is not None:
            changes["top_p"] = float(g["top_p"])
        if "num_samples" in data or "n" in data:
            changes["num_samples"] = g["num_samples"]
        if "swap" in data:
            changes["swap"] = bool(data["swap"])
        if (
            changes.get("num_samples", opts.num_samples) > 1
            and changes.get("temperature", opts.temperature) == 0
        ):
            changes["temperature"] = 1.0
        try:
            return Judge(judge.backend, replace(opts, **changes), judge.budget)
        except ValueError as e:
            raise RequestError(400, str(e), "bad_parameter") from None

    def task_of(data: dict[str, Any]) -> Any:
        from unireward.protocol.tasks import Task

        try:
            return Task.parse(data.get("task", ""))
        except ValueError as e:
            raise RequestError(400, str(e), "bad_task") from None

    def text_field(data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise RequestError(400, f"{key!r} must be a non-empty string", "bad_parameter")
        return value

    def decode_medium(dec: _MediaDecoder, task: Any, ref: Any, what: str) -> Any:
        return dec.video(ref, what) if task.is_video else dec.image(ref, what)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "unireward"}],
        }

    @app.post("/v1/judge")
    async def judge_pair(request: Request) -> dict[str, Any]:
        data = await body_of(request)
        task = task_of(data)
        prompt = text_field(data, "prompt")
        cands = data.get("candidates")
        if not isinstance(cands, list) or len(cands) != 2:
            raise RequestError(400, "'candidates' must be a list of two items", "bad_parameter")
        dec = _MediaDecoder(limits, root)
        reference = None
        if task.is_generation:
            cands = [decode_medium(dec, task, c, f"candidates[{i}]") for i, c in enumerate(cands)]
        else:
            if not all(isinstance(c, str) for c in cands):
                raise RequestError(400, "answers must be strings", "bad_parameter")
            if data.get("reference") is None:
                raise RequestError(400, f"{task.value} needs 'reference'", "bad_parameter")
            reference = decode_medium(dec, task, data["reference"], "reference")
        j = scoped_judge(data)
        res = await run_in_threadpool(j.compare, task, prompt, cands[0], cands[1], reference)
        return _public(res.to_dict())

    @app.post("/v1/score")
    async def score(request: Request) -> dict[str, Any]:
        data = await body_of(request)
        task = task_of(data)
        prompt = text_field(data, "prompt")
        dec = _MediaDecoder(limits, root)
        reference = None
        if task.is_generation:
            cand = decode_medium(dec, task, data.get("candidate"), "candidate")
        else:
            cand = text_field(data, "candidate")
            if data.get("reference") is None:
                raise RequestError(400, f"{task.value} needs 'reference'", "bad_parameter")
            reference = decode_medium(dec, task, data["reference"], "reference")
        j = scoped_judge(data)
        res = await run_in_threadpool(j.score, task, prompt, cand, reference)
        return _public(res.to_dict())

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        data = await body_of(request)
        if data.get("stream"):
            raise RequestError(400, "streaming is not supported", "unsupported")
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "'messages' must be a non-empty list", "bad_parameter")
        dec = _MediaDecoder(limits, root)
        ours = [_to_our_message(m, dec, i) for i, m in enumerate(messages)]
        g = gen_overrides(data)
        j = scoped_judge(data)
        gens = await run_in_threadpool(
            j.generate_detailed, [ours], g["num_samples"], g["temperature"], g["top_p"], g["max_new_tokens"],
            data.get("min_tokens"), g["seed"],
        )  # fmt: skip
        out = gens[0]
        if isinstance(out, MediaError):
            raise RequestError(400, str(out), "bad_media")
        if isinstance(out, Exception):
            raise RequestError(500, f"generation failed: {type(out).__name__}: {out}", "generation_failed")
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": t},
                "finish_reason": out.finish_reasons[i] if i < len(out.finish_reasons) else "stop",
                "logprobs": None,
            }
            for i, t in enumerate(out.texts)
        ]
        completion = sum(out.completion_tokens)
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
            "model": data.get("model") or name, "choices": choices,
            "usage": {"prompt_tokens": out.prompt_tokens, "completion_tokens": completion, "total_tokens": out.prompt_tokens + completion},
        }  # fmt: skip

    return app


def _public(d: dict[str, Any]) -> dict[str, Any]:
    if not d.get("swapped_samples"):
        d.pop("swapped_samples", None)
    return d


def _to_our_message(m: Any, dec: _MediaDecoder, i: int) -> dict[str, Any]:
    if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
        raise RequestError(400, f"messages[{i}] needs a role of system, user or assistant", "bad_parameter")
    content = m.get("content")
    if isinstance(content, str):
        return {"role": m["role"], "content": [{"type": "text", "text": content}]}
    if not isinstance(content, list):
        raise RequestError(400, f"messages[{i}].content must be a string or a list of parts", "bad_parameter")
    parts = []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            parts.append({"type": "image", "image": dec.image(url, f"messages[{i}].content[{k}]")})
        elif kind == "video_url":
            url = part.get("video_url")
            url = url.get("url") if isinstance(url, dict) else url
            parts.append({"type": "video", "video": dec.video(url, f"messages[{i}].content[{k}]")})
        else:
            raise RequestError(
                400, f"messages[{i}].content[{k}]: unsupported part type {kind!r}", "bad_parameter"
            )
    return {"role": m["role"], "content": parts}
