"""A client for OpenAI-compatible chat endpoints (vLLM ``serve``, GPT-4o, ``unireward serve``).

The official ``openai`` client does the HTTP; its own retries are switched off so that one policy
runs everywhere: bounded retries with exponential backoff and jitter on 429, 5xx, timeouts and
connection errors, a concurrency limit, and per-item errors that never abort a batch.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import random
import threading
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_STATUS = frozenset({408, 409, 425, 429})
_GEN_KEYS = ("max_tokens", "temperature", "top_p", "n", "seed", "stop", "min_tokens")


class ChatError(Exception):
    """A request that failed for good (retries exhausted, a 4xx, or an unusable response)."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass
class ChatResponse:
    """First choice's text, token usage, and every choice's text when ``n > 1``."""

    text: str
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    finish_reason: str | None = None
    texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.texts:
            self.texts = [self.text]


# ---------------------------------------------------------------- message encoding


def image_data_url(image: Any, image_format: str = "PNG") -> str:
    """A ``data:`` URL for a PIL image, an image file path or encoded bytes.

    >>> image_data_url(Image.new("RGB", (2, 2), "red"))[:22]
    'data:image/png;base64,'
    """
    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    if isinstance(image, (str, Path, bytes, bytearray)):
        from unireward.media import load_image

        # Decode and re-encode: validates the file and strips anything that is not pixels.
        image = load_image(image if not isinstance(image, Path) else str(image), budget=_no_resize_budget())
    if not isinstance(image, Image.Image):
        raise TypeError(f"cannot encode {type(image).__name__} as an image")
    buf = io.BytesIO()
    fmt = image_format.upper()
    img = image.convert("RGB") if fmt == "JPEG" else image
    img.save(buf, format=fmt)
    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _no_resize_budget() -> Any:
    from unireward.media import VisionBudget

    # Files sent as they are: resizing is the receiving model's business (its --mm-processor-kwargs).
    return VisionBudget(min_pixels=28 * 28, max_pixels=1 << 40, factor=1)


def encode_messages(messages: list[dict[str, Any]], image_format: str = "PNG") -> list[dict[str, Any]]:
    """Our chat messages -> OpenAI chat format.

    Image parts (PIL image, path, bytes) become ``image_url`` parts with base64 data URLs; a video
    part (list of frames, or a video file) becomes its frames as consecutive ``image_url`` parts.
    Text and already OpenAI-shaped parts pass through.

    >>> msgs = [{"role": "user", "content": [{"type": "video", "video": [Image.new("RGB", (4, 4))] * 2},
    ...                                      {"type": "text", "text": "hi"}]}]
    >>> [p["type"] for p in encode_messages(msgs)[0]["content"]]
    ['image_url', 'image_url', 'text']
    """
    out: list[dict[str, Any]] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": msg["role"], "content": content or ""})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type")
            if kind == "image":
                parts.append(
                    {"type": "image_url", "image_url": {"url": image_data_url(part["image"], image_format)}}
                )
            elif kind == "video":
                video = part["video"]
                if isinstance(video, (str, Path)):
                    from unireward.media import load_video

                    video = load_video(video)
                parts.extend(
                    {"type": "image_url", "image_url": {"url": image_data_url(f, image_format)}}
                    for f in video
                )
            elif kind == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:  # image_url and other OpenAI parts
                parts.append(part)
        out.append({"role": msg["role"], "content": parts})
    return out


def _needs_encoding(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") in ("image", "video") for p in m["content"])
        for m in messages
    )


# ---------------------------------------------------------------- retry policy


def backoff_delay(attempt: int, base: float, cap: float = 30.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt`` (capped), scaled by a factor in [0.5, 1.5).

    >>> d = backoff_delay(3, 0.5, rng=random.Random(0))
    >>> 2.0 <= d < 6.0
    True
    """
    r = (rng or random).random()
    return min(cap, base * (2**attempt)) * (0.5 + r)


def _classify(exc: BaseException) -> tuple[bool, int | None]:
    """(retryable, HTTP status) of an exception raised by the openai client."""
    import openai

    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, asyncio.TimeoutError)):
        return True, None
    # A body that is not the promised JSON (a proxy's error page, a cut connection) is transient too.
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError, _MalformedResponse)):
        return True, None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return status in _RETRY_STATUS or status >= 500, status
    return False, None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------- client


async def gather_chats(
    achat: Any, batch: list[list[dict[str, Any]]], **gen: Any
) -> list[ChatResponse | ChatError]:
    """Every request of ``batch`` through ``achat`` at once; results in input order, a request that
    failed for good as its :class:`ChatError` (one client or a pool of endpoints alike)."""

    async def one(i: int, msgs: list[dict[str, Any]]) -> ChatResponse | ChatError:
        try:
            return await achat(msgs, request_name=f"request {i}", **gen)
        except ChatError as e:
            return e

    return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(batch))))


class ChatClient:
    """Concurrent, retrying chat-completions client.

    ``chat_many`` is synchronous and keeps input order; a failed item comes back as a
    :class:`ChatError` in its slot instead of raising.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if timeout <= 0 or backoff < 0:
            raise ValueError("timeout must be positive and backoff non-negative")
        self.base_url = base_url
        self.model = model
        # The openai client insists on a key; local servers ignore it.
        self.api_key = api_key or "EMPTY"
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        # One AsyncOpenAI and one semaphore per event loop: httpx pools are bound to their loop.
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    def _client(self) -> tuple[Any, asyncio.Semaphore]:
        from openai import AsyncOpenAI

        loop = asyncio.get_running_loop()
        if loop not in self._per_loop:
            client = AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
            )
            self._per_loop[loop] = (client, asyncio.Semaphore(self.concurrency))
        return self._per_loop[loop]

    async def achat(self, messages: list[dict[str, Any]], **gen: Any) -> ChatResponse:
        """One chat completion. ``gen``: max_tokens, temperature, top_p, n, seed (others go in extra_body)."""
        name = gen.pop("request_name", "request")
        # The caller's name for the request (distill: the pair id) travels as OpenAI's client request
        # id, so a server can tie its answer to the item (the demo's teacher draws right/wrong from it).
        headers = {"X-Client-Request-Id": name} if name != "request" and name.isascii() and name.isprintable() and len(name) <= 512 else None
        try:
            payload = encode_messages(messages) if _needs_encoding(messages) else messages
        except Exception as e:
            raise ChatError(f"{name}: cannot encode messages ({type(e).__name__}: {e})") from None
        kwargs = {
            k: gen.pop(k) for k in list(gen) if k in _GEN_KEYS and gen[k] is not None and k != "min_tokens"
        }
        extra = {k: v for k, v in gen.items() if v is not None}
        if "min_tokens" in kwargs:
            extra["min_tokens"] = kwargs.pop("min_tokens")
        client, sem = self._client()
        attempt = 0
        while True:
            try:
                async with sem:
                    resp = await client.chat.completions.create(
                        model=self.model, messages=payload, extra_body=extra or None, extra_headers=headers, **kwargs
                    )
                return _to_response(resp, name)
            except Exception as e:
                retryable, status = _classify(e)
                if not retryable or attempt >= self.max_retries:
                    what = f"HTTP {status}" if status else type(e).__name__
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    raise ChatError(
                        f"{name}: {what}{tried}: {_short(e)}", status=status, attempts=attempt + 1
                    ) from None
                delay = backoff_delay(attempt, self.backoff)
                hint = _retry_after(e)
                if hint is not None:
                    delay = max(delay, min(hint, 60.0))
                log.info(
                    "%s: %s, retry %d/%d in %.2fs",
                    name,
                    status or type(e).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                attempt += 1

    async def achat_many(
        self, batch: list[list[dict[str, Any]]], **gen: Any
    ) -> list[ChatResponse | ChatError]:
        return await gather_chats(self.achat, batch, **gen)

    def chat_many(self, batch: list[list[dict[str, Any]]], **gen: Any) -> list[ChatResponse | ChatError]:
        """Run ``batch`` concurrently (at most ``concurrency`` in flight); results in input order."""

        async def run() -> list[ChatResponse | ChatError]:
            try:
                return await self.achat_many(batch, **gen)
            finally:  # the loop dies with asyncio.run; close its connections first
                entry = self._per_loop.pop(asyncio.get_running_loop(), None)
                if entry is not None:
                    await entry[0].close()

        return run_sync(run())


def _short(e: BaseException, limit: int = 300) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= limit else text[:limit] + "..."


class _MalformedResponse(Exception):
    """A 200 answer without usable choices; retried like a transient failure."""


def _to_response(resp: Any, name: str) -> ChatResponse:
    choices = getattr(resp, "choices", None) or []
    if not choices:
        raise _MalformedResponse(f"{name}: response has no choices ({str(resp)[:80]!r})")
    texts = []
    for c in choices:
        content = c.message.content if c.message is not None else None
        if content is None:
            raise _MalformedResponse(f"{name}: response choice {c.index} has no text content")
        texts.append(content)
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    if getattr(resp, "usage", None) is not None:
        usage["prompt_tokens"] = int(resp.usage.prompt_tokens or 0)
        usage["completion_tokens"] = int(resp.usage.completion_tokens or 0)
    return ChatResponse(text=texts[0], usage=usage, finish_reason=choices[0].finish_reason, texts=texts)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when called inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="unireward-chat", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
