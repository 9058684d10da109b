"""What every route shares: the judge, the limits, the scheduler, the decode pool, admission."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from unireward.judge.backends import SamplingParams
from unireward.judge.judge import Judge
from unireward.judge.media_cache import MediaCache
from unireward.serve.errors import ApiError
from unireward.serve.limits import DEFAULT_MEDIA_CACHE_MB, ServerLimits
from unireward.serve.metrics import Metrics
from unireward.serve.sampling import Sampling
from unireward.serve.scheduler import Scheduler, Scope

T = TypeVar("T")

#: the model name every official UnifiedReward client sends (``vllm serve ... --served-model-name UnifiedReward``)
OFFICIAL_ALIAS = "UnifiedReward"


class ServerState:
    def __init__(self, judge: Judge, limits: ServerLimits, names: list[str], media_root: str | os.PathLike[str] | None,
                 batch_size: int = 16, media_cache_mb: int = DEFAULT_MEDIA_CACHE_MB):  # fmt: skip
        self.judge = judge
        self.limits = limits
        self.names = names
        self.media_root = Path(media_root).resolve() if media_root else None
        self.metrics = Metrics()
        self.scheduler = Scheduler(judge.backend, max_batch=batch_size, metrics=self.metrics)
        self.backend = self.scheduler.backend
        self.decode_pool = ThreadPoolExecutor(limits.decode_workers, thread_name_prefix="unireward-decode")
        # judge routes block a thread while their rows wait in the scheduler: one per admitted request
        self.judge_pool = ThreadPoolExecutor(limits.max_queue + batch_size, thread_name_prefix="unireward-judge")
        self.capacity = limits.max_queue + batch_size
        self.active = 0
        self.rows = 0  # admitted rows: one per request, a group's pairs each (they share max_queue)
        self.draining = False
        processor = getattr(self.backend, "processor", None)
        video_proc = getattr(processor, "video_processor", None)
        self.temporal_patch = int(getattr(video_proc, "temporal_patch_size", None) or 1)
        self.tokenizer = getattr(self.backend, "tokenizer", None)
        self.media_cache = self._media_cache(judge.backend, media_cache_mb)
        m = self.metrics.gauges
        m["queue_depth"] = lambda: self.scheduler.queue_depth
        m["running_requests"] = lambda: self.scheduler.running
        m["active_requests"] = lambda: self.active
        m["admitted_rows"] = lambda: self.rows

    def _media_cache(self, backend: Any, mb: int) -> MediaCache | None:
        """One LRU, keyed by content, for decoded media and the backend's vision features (off at 0 MB)."""
        if mb < 0:
            raise ValueError(f"media cache size must be >= 0 MB, got {mb}")
        cache = MediaCache(mb << 20) if mb else None
        while backend is not None and not hasattr(backend, "vision_encoded"):
            backend = getattr(backend, "inner", None)  # a batching wrapper around the model's backend
        if backend is not None:
            backend.feature_cache = cache
            self.metrics.counters["vision_encoded_images_total"] = lambda: backend.vision_encoded
        self.metrics.counters["media_cache_hits_total"] = lambda: cache.hits if cache is not None else 0
        if cache is not None:
            self.metrics.gauges["media_cache_bytes"] = lambda: cache.bytes
        return cache

    # ------------------------------------------------------------ admission

    @contextmanager
    def admit(self, rows: int = 1, new_request: bool = True) -> Iterator[None]:
        """Hold ``rows`` of the ``max_queue`` + batch places while the request decodes, waits and runs
        (a group holds one per generation it needs: ``new_request=False`` adds them to its own place)."""
        if self.draining:
            raise ApiError(503, "server is shutting down", "shutting_down")
        if rows > self.capacity:
            raise ApiError(413, f"the request needs {rows} generations at once, more than the server admits "
                                f"({self.capacity}: --max-queue {self.limits.max_queue} + --batch-size "
                                f"{self.scheduler.max_batch})", "request_too_large")  # fmt: skip
        if self.rows + rows > self.capacity:
            waves = math.ceil(self.scheduler.queue_depth / max(1, self.scheduler.max_batch)) + 1
            retry = max(1, min(60, math.ceil(self.scheduler.batch_seconds * waves)))
            raise ApiError(
                429, f"queue is full ({self.active} requests, {self.rows} generations admitted; --max-queue "
                     f"{self.limits.max_queue}); retry later",
                "queue_full", headers={"Retry-After": str(retry)},
            )  # fmt: skip
        self.active += new_request  # event-loop only: no lock needed
        self.rows += rows
        try:
            yield
        finally:
            self.active -= new_request
            self.rows -= rows

    # ------------------------------------------------------------ off the event loop

    async def decode(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.decode_pool, fn)

    async def until_done(self, request: Any, scope: Scope, work: Awaitable[T]) -> T:
        """Await ``work``; if the client disconnects first, withdraw the request's queued rows."""
        task = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.2)
            if done:
                return task.result()
            if await request.is_disconnected():
                self.scheduler.cancel(scope)
                # the places are held until the work has really stopped (queued rows fail at once, a
                # running batch at its next token or its end), so the gauges and max_queue stay true
                await asyncio.wait({task})
                raise ApiError(499, "client disconnected", "client_disconnected")

    async def run_judge(self, request: Any, scope: Scope, fn: Callable[[], T]) -> T:
        work = asyncio.get_running_loop().run_in_executor(self.judge_pool, fn)
        return await self.until_done(request, scope, work)

    # ------------------------------------------------------------ request checks

    def check_model(self, data: dict[str, Any]) -> None:
        model = data.get("model")
        if model is not None and model not in self.names:
            raise ApiError(404, f"The model `{model}` does not exist.", "model_not_found", "model")

    def text_tokens(self, text: str) -> int:
        """Tokens of ``text`` (UTF-8 bytes when there is no tokenizer: a byte-level BPE never exceeds that)."""
        if self.tokenizer is None:
            return len(text.encode())
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_prompt_tokens(self, n: int) -> None:
        if n > self.limits.max_prompt_tokens:
            raise ApiError(
                400, f"prompt is {n} tokens, above the limit of {self.limits.max_prompt_tokens} (--max-prompt-tokens)",
                "prompt_too_long",
            )  # fmt: skip

    def params(self, s: Sampling, n: int) -> SamplingParams:
        """Backend sampling parameters: the request's settings over the judge's defaults."""
        o = self.judge.options
        t = o.temperature if s.temperature is None else s.temperature
        if n > 1 and t == 0:
            t = 1.0  # several samples and no temperature given: sample (OpenAI's default is 1.0)
        try:
            return SamplingParams(
                num_samples=n, temperature=t, top_p=o.top_p if s.top_p is None else s.top_p,
                max_new_tokens=s.max_tokens or min(o.max_new_tokens, self.limits.max_new_tokens),
                min_new_tokens=s.min_tokens, seed=o.seed if s.seed is None else s.seed,
            )  # fmt: skip
        except ValueError as e:
            raise ApiError(400, str(e), "bad_parameter") from None

    def scoped_judge(self, data: dict[str, Any], s: Sampling, scope: Scope) -> Judge:
        """The judge with this request's settings, its rows going through the scheduler."""
        opts = self.judge.options
        changes: dict[str, Any] = {}
        if s.max_tokens is not None:
            changes["max_new_tokens"] = s.max_tokens
        if s.temperature is not None:
            changes["temperature"] = s.temperature
        if s.top_p is not None:
            changes["top_p"] = s.top_p
        if s.seed is not None:
            changes["seed"] = s.seed
        if "n" in data or "num_samples" in data:
            changes["num_samples"] = s.n
            if s.n > 1 and s.temperature is None and opts.temperature == 0:
                changes["temperature"] = 1.0  # several samples with no temperature given: sample
        if "swap" in data:
            if not isinstance(data["swap"], bool):
                raise ApiError(400, "swap must be true or false", "bad_parameter", "swap")
            changes["swap"] = data["swap"]
        if data.get("template_family") is not None:  # the protocol of a released judge, per request
            from unireward.protocol.templates import family_modes

            fam = data["template_family"]
            try:
                modes = family_modes(fam) if isinstance(fam, str) else []
            except KeyError as e:
                raise ApiError(400, e.args[0], "bad_parameter", "template_family") from None
            if not modes:
                raise ApiError(400, "template_family must be a string", "bad_parameter", "template_family")
            changes["template_family"] = fam if "pairwise" in modes else None
            changes["pointwise_family"] = fam if "pointwise" in modes else None
        try:
            return Judge(self.scheduler.view(scope), replace(opts, **changes), self.judge.budget)
        except ValueError as e:
            raise ApiError(400, str(e), "bad_parameter") from None
