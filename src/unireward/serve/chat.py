"""``POST /v1/chat/completions``: OpenAI's chat protocol, the request shape of the GRPO trainers."""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.

import asyncio
import time
import uuid
from typing import Any

from fastapi import Request

from unireward.judge.backends import Generation
from unireward.media import MediaError
from unireward.serve.decode import MediaDecoder
from unireward.serve.errors import ApiError
from unireward.serve.sampling import Sampling, apply_stop, parse_sampling
from unireward.serve.scheduler import Cancelled, Scope
from unireward.serve.state import ServerState


def count_media(messages: list[Any]) -> tuple[int, int]:
    """Images (frames of frame-list videos included) and video files in a chat request, before decoding.

    >>> count_media([{"role": "user", "content": [{"type": "image_url"}, {"type": "video_url", "video_url": ["a", "b"]}]}])
    (3, 0)
    """
    images = videos = 0
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image_url":
                images += 1
            elif kind == "video_url":
                ref = _url(part, "video_url")
                if isinstance(ref, list):
                    images += len(ref)
                else:
                    videos += 1
    return images, videos


def _url(part: dict[str, Any], key: str) -> Any:
    url = part.get(key)
    return url.get("url") if isinstance(url, dict) else url


def check_messages(messages: Any) -> None:
    """Structure only (roles, part types); media are decoded later, in the pool."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", "bad_parameter", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ApiError(400, f"messages[{i}] needs a role of system, user or assistant", "bad_parameter", "messages")
        content = m.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise ApiError(400, f"messages[{i}].content must be a string or a list of parts", "bad_parameter", "messages")
        for k, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                if not isinstance(part.get("text", ""), str):
                    raise ApiError(400, f"messages[{i}].content[{k}].text must be a string", "bad_parameter", "messages")
            elif kind not in ("image_url", "video_url"):
                raise ApiError(400, f"messages[{i}].content[{k}]: unsupported part type {kind!r}", "bad_parameter",
                               "messages")  # fmt: skip


def decode_messages(messages: list[dict[str, Any]], dec: MediaDecoder) -> list[dict[str, Any]]:
    """Our message format with every medium decoded (runs in the decode pool)."""
    out = []
    for i, m in enumerate(messages):
        content = m["content"]
        if isinstance(content, str):
            out.append({"role": m["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for k, part in enumerate(content):
            where = f"messages[{i}].content[{k}]"
            if part["type"] == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
            elif part["type"] == "image_url":
                parts.append({"type": "image", "image": dec.image(_url(part, "image_url"), where)})
            else:
                parts.append({"type": "video", "video": dec.video(_url(part, "video_url"), where)})
        out.append({"role": m["role"], "content": parts})
    return out


def completion(model: str, gen: Generation, s: Sampling) -> dict[str, Any]:
    texts, reasons, tokens = list(gen.texts), list(gen.finish_reasons), list(gen.completion_tokens)
    if s.replicate_greedy:  # one greedy generation stands for all n identical ones
        texts, reasons, tokens = texts * s.n, reasons * s.n, tokens * s.n
    choices = []
    for i, text in enumerate(texts):
        reason = reasons[i] if i < len(reasons) and reasons[i] else "stop"
        if s.stop:
            text, hit = apply_stop(text, s.stop)
            reason = "stop" if hit else reason
        choices.append({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
                        "logprobs": None})  # fmt: skip
    used = sum(tokens)
    body: dict[str, Any] = {
        "id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": choices,
        "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": used, "total_tokens": gen.prompt_tokens + used},
    }  # fmt: skip
    if s.warnings:
        body["warnings"] = s.warnings
    if s.max_tokens is not None:
        body["max_tokens"] = s.max_tokens  # what was actually allowed (after any clamp)
    return body


def check_chat_request(state: ServerState, data: dict[str, Any]) -> tuple[Any, list[Any], int, int]:
    """What every chat route checks before any pixel is decoded: the model name, the sampling
    settings, the messages' shape and the image count; returns (sampling, messages, images, videos)."""
    state.check_model(data)
    s = parse_sampling(data, state.limits)
    messages = data.get("messages")
    check_messages(messages)
    n_images, n_videos = count_media(messages)
    if n_images > state.limits.max_images:
        raise ApiError(413, f"too many images: {n_images}, above the limit of {state.limits.max_images} (video "
                            "frames count as images; --max-images)", "too_many_images")  # fmt: skip
    return s, messages, n_images, n_videos


def register(app: Any, state: ServerState, read_json: Any) -> None:
    from fastapi.responses import JSONResponse

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        data = await read_json(request)
        s, messages, n_images, n_videos = check_chat_request(state, data)
        with state.admit():
            dec = MediaDecoder(state.limits, state.judge.budget, state.media_root, state.temporal_patch,
                               n_images=n_images, n_videos=n_videos, cache=state.media_cache)  # fmt: skip
            ours = await state.decode(lambda: decode_messages(messages, dec))
            estimate = getattr(state.backend, "estimate_tokens", None)
            if estimate is not None:
                try:
                    n_tokens = await state.decode(lambda: estimate(ours))
                except MediaError as e:
                    raise ApiError(400, str(e), "bad_media") from None
                except Exception as e:  # the chat template refused the conversation
                    raise ApiError(400, f"cannot build the prompt ({type(e).__name__}: {e})", "bad_prompt") from None
            else:
                n_tokens = sum(state.text_tokens(p.get("text", "")) for m in ours for p in m["content"])
            state.check_prompt_tokens(n_tokens)
            if await request.is_disconnected():  # left while its media decoded: never queued
                state.metrics.cancel()
                raise ApiError(499, "client disconnected", "client_disconnected")
            n = 1 if s.replicate_greedy else s.n
            params = state.params(s, n)
            scope = Scope()
            (future,) = state.scheduler.submit([ours], params, scope)
            try:
                out = await state.until_done(request, scope, asyncio.wrap_future(future))
            except Cancelled as e:
                raise ApiError(503, f"request withdrawn: {e}", "cancelled") from None
        if isinstance(out, MediaError):
            raise ApiError(400, str(out), "bad_media")
        if isinstance(out, Cancelled):
            raise ApiError(503, f"request withdrawn: {out}", "cancelled")
        if isinstance(out, ValueError):  # the processor or template refused this request's inputs
            raise ApiError(400, f"cannot process the request: {out}", "bad_input")
        if isinstance(out, Exception):
            raise ApiError(500, f"generation failed: {type(out).__name__}: {out}", "generation_failed")
        body = completion(data.get("model") or state.names[0], out, s)
        headers = {"X-Max-Tokens-Clamped": str(s.max_tokens)} if any("clamped" in w for w in s.warnings) else None
        return JSONResponse(body, headers=headers)
