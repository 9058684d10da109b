"""Where judge prompts become text: a local transformers model, or an OpenAI-compatible endpoint.

A backend takes chat messages (media already loaded, or paths it loads itself) and returns
``num_samples`` texts per request; one bad request is an exception in its own slot, never a
failed batch.
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from unireward.judge.kv_cache import cache_kwargs, repeat_rows
from unireward.judge.media_cache import MediaCache, content_key, nbytes
from unireward.judge.options import BatchOptions
from unireward.judge.request import media_inputs
from unireward.media import MediaError, VisionBudget, load_image, load_video

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """The sampled texts of one request and what they cost."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: list[int] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    #: generated token ids per sample (local backends only; trailing padding removed)
    token_ids: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class SamplingParams:
    num_samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 4096
    min_new_tokens: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.max_new_tokens < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"invalid sampling parameters: {self}")
        if self.min_new_tokens is not None and not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError("min_new_tokens must be within [0, max_new_tokens]")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Backend(ABC):
    name: str = "backend"
    #: vision budget media are loaded under before they reach the backend
    budget: VisionBudget = VisionBudget()

    @abstractmethod
    def generate(
        self, messages_list: list[list[dict[str, Any]]], params: SamplingParams
    ) -> list[Generation | Exception]:
        """One :class:`Generation` (``params.num_samples`` texts) or one exception per request, in order."""


# ---------------------------------------------------------------- token estimates


def vision_tokens(item: Any, factor: int = 28, temporal_patch: int = 2) -> int:
    """LLM tokens an image (PIL) or a video (list of PIL frames) takes after patch merging.

    Qwen2.5-VL: 14-px patches merged 2x2 give one token per ``factor``x``factor`` pixels
    (``factor`` 28); video frames are grouped ``temporal_patch`` at a time.

    >>> vision_tokens(Image.new("RGB", (56, 56)))
    4
    >>> vision_tokens([Image.new("RGB", (56, 56))] * 8)
    16
    """
    if isinstance(item, Image.Image):
        return max(1, (item.width // factor) * (item.height // factor))
    frames = list(item)
    if not frames:
        return 0
    per_frame = vision_tokens(frames[0], factor)
    return per_frame * math.ceil(len(frames) / temporal_patch)


def pack_batches(lengths: list[int], rows_per_item: int, options: BatchOptions) -> list[list[int]]:
    """Group request indices into batches under the size and padded-token limits.

    ``max_batch_size`` counts prompts; the token limit counts rows (prompts x ``rows_per_item``
    samples) times the longest prompt. Longest first so each batch pads little; an item above the
    token limit on its own gets a batch of its own.

    >>> pack_batches([10, 300, 20, 290], 1, BatchOptions(max_batch_size=4, max_batch_tokens=600))
    [[1, 3], [2, 0]]
    >>> pack_batches([5, 5, 5], 2, BatchOptions(max_batch_size=2, max_batch_tokens=100))
    [[0, 1], [2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        n = len(current) + 1
        fits = n <= options.max_batch_size and n * rows_per_item * new_longest <= options.max_batch_tokens
        if current and not fits:
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


# ---------------------------------------------------------------- transformers


def materialize(messages: list[dict[str, Any]], budget: VisionBudget) -> list[dict[str, Any]]:
    """Messages with every image/video part loaded as PIL (paths are read under ``budget``).

    Raises :class:`MediaError` for a file that cannot be used.
    """
    images, videos = media_inputs(messages)
    n_img, n_vid = max(1, len(images)), max(1, len(videos))
    out = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str) or content is None:
            out.append(msg)
            continue
        parts = []
        for part in content:
            if part.get("type") == "image" and not isinstance(part["image"], Image.Image):
                parts.append({"type": "image", "image": load_image(part["image"], budget, n_images=n_img)})
            elif part.get("type") == "video" and not _is_frames(part["video"]):
                parts.append({"type": "video", "video": load_video(part["video"], budget, n_videos=n_vid)})
            else:
                parts.append(part)
        out.append({**msg, "content": parts})
    return out


def _is_frames(video: Any) -> bool:
    return (
        isinstance(video, (list, tuple)) and all(isinstance(f, Image.Image) for f in video) and len(video) > 0
    )


class TransformersBackend(Backend):
    """A local Hugging Face model; requests are batched with left padding.

    With ``num_samples > 1`` each prompt is read once (prefill and vision encoding) and its cache
    expanded to the ``k`` rows that are decoded (:func:`sample_after_shared_prefill`;
    ``shared_prefill = False`` restores ``num_return_sequences``, which reads the prompt ``k``
    times). Within one call each distinct image or video (by a hash of its pixels) is encoded
    once, however many prompts hold it, and a batch's pixels are never all held at once
    (:meth:`_encode_by_prompt`); with a :attr:`feature_cache` features are also kept across calls.
    Qwen2.5-VL, Qwen3-VL and Qwen3.5 take both; LLaVA-OV takes the shared prefill, while its
    anyres image tiles (no per-image pixel rows in the processor's output) go through the processor
    and ``generate`` batch-whole, each medium encoded once per request that holds it.
    """

    name = "transformers"

    def __init__(
        self,
        model: Any,
        processor: Any,
        family: Any,
        budget: VisionBudget | None = None,
        batch: BatchOptions | None = None,
    ):
        self.model = model
        self.processor = processor
        self.family = family
        self.budget = budget or family.budget()
        self.batch = batch or BatchOptions()
        self.tokenizer = getattr(processor, "tokenizer", processor)
        if self.tokenizer.padding_side != "left":
            self.tokenizer.padding_side = "left"  # decoder-only batching needs left padding
        self._lock = threading.Lock()  # one generate at a time per model
        #: prefill once and expand the cache for several samples (off: ``num_return_sequences``)
        self.shared_prefill = True
        #: encode each distinct image/video of a call once (off: the whole batch through the processor)
        self.share_vision = True
        #: vision features kept across calls, keyed by the image's content (the server sets one)
        self.feature_cache: MediaCache | None = None
        #: images and videos run through the vision tower so far
        self.vision_encoded = 0
        self._whole_batch_vision = False  # set once the processor shows no per-image pixel rows

    @classmethod
    def load(
        cls,
        model_id: str,
        family: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        budget: VisionBudget | None = None,
        batch: BatchOptions | None = None,
    ) -> TransformersBackend:
        from unireward.models import load_model

        model, processor, fam = load_model(model_id, family=family, dtype=dtype, device=device)
        backend = cls(model, processor, fam, budget=budget, batch=batch)
        backend.name = str(model_id)
        return backend

    @property
    def device(self) -> Any:
        return self.model.device

    def _prepare(self, messages: list[dict[str, Any]]) -> tuple[str, list[Any], list[Any], int]:
        messages = materialize(messages, self.budget)
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        images, videos = media_inputs(messages)
        n_text = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        factor = self.family.factor
        per_image = (self.family.expected_image_tokens(im.width, im.height, self.processor) for im in images)
        n_vision = sum(n if n is not None else vision_tokens(im, factor) for n, im in zip(per_image, images, strict=True))
        for v in videos:
            n = self.family.expected_video_tokens(len(v), self.processor) if isinstance(v, (list, tuple)) else None
            n_vision += n if n is not None else vision_tokens(v, factor)
        # each medium's single placeholder token is replaced by its vision tokens
        return text, images, videos, n_text - len(images) - len(videos) + n_vision

    def estimate_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt length in tokens, vision tokens included."""
        return self._prepare(messages)[3]

    def generate(
        self, messages_list: list[list[dict[str, Any]]], params: SamplingParams
    ) -> list[Generation | Exception]:
        results: list[Generation | Exception | None] = [None] * len(messages_list)
        prepared: dict[int, tuple[str, list[Any], list[Any], int]] = {}
        for i, messages in enumerate(messages_list):
            try:
                prepared[i] = self._prepare(messages)
            except MediaError as e:
                results[i] = e
            except Exception as e:  # a malformed request must not sink the batch
                results[i] = ValueError(f"request {i}: cannot build prompt ({type(e).__name__}: {e})")
        ids = sorted(prepared)
        lengths = [prepared[i][3] for i in ids]
        # features of an image that later batches of this call also hold are kept until its last use
        uses = (_SharedFeatures([im for i in ids for im in prepared[i][1]], [v for i in ids for v in prepared[i][2]])
                if self.share_vision and not self._whole_batch_vision else None)  # fmt: skip
        for batch in pack_batches(lengths, params.num_samples, self.batch):
            members = [ids[b] for b in batch]
            try:
                outs = self._run([prepared[i] for i in members], params, uses)
            except Exception as e:
                if len(members) == 1:
                    results[members[0]] = e
                    continue
                log.warning("batch of %d failed (%s); retrying one by one", len(members), e)
                outs = []
                for i in members:
                    try:
                        outs.extend(self._run([prepared[i]], params, uses))
                    except Exception as e1:
                        outs.append(e1)  # type: ignore[arg-type]
            for i, out in zip(members, outs, strict=True):
                results[i] = out
        return [r if r is not None else RuntimeError("no result") for r in results]

    def encode(self, texts: list[str], images: list[Any], videos: list[Any]) -> Any:
        """The processor's tensors for rendered prompts and their media, with the family's arguments."""
        return self.processor(
            text=texts, images=images or None, videos=videos or None, padding=True, return_tensors="pt",
            **self.family.processor_kwargs(self.budget), **(self.family.video_kwargs(videos) if videos else {}),
        )  # fmt: skip

    def _run(
        self, items: list[tuple[str, list[Any], list[Any], int]], params: SamplingParams,
        uses: _SharedFeatures | None = None,
    ) -> list[Generation]:
        import torch

        texts = [it[0] for it in items]
        images = [im for it in items for im in it[1]]
        videos = [v for it in items for v in it[2]]
        k = params.num_samples
        gen: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if params.min_new_tokens:
            gen["min_new_tokens"] = params.min_new_tokens
        if params.greedy:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=None)
        with self._lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            model_inputs = self._encode_by_prompt(items, uses) if (images or videos) and self.share_vision else None
            if model_inputs is None:  # the whole batch through the processor; generate encodes every medium
                model_inputs = dict(self.encode(texts, images, videos).to(self.device))
                self.vision_encoded += len(images) + len(videos)
            prompt_ids, mask = model_inputs["input_ids"], model_inputs["attention_mask"]
            if k > 1 and self.shared_prefill and prompt_ids.shape[1] > 1:
                out = sample_after_shared_prefill(self.model, model_inputs, k, gen)
            else:
                gen["num_return_sequences"] = k
                gen.update(cache_kwargs(self.model))  # appends in place: no whole-cache copy per step
                out = self.model.generate(**model_inputs, **gen)
        prompt_len = prompt_ids.shape[1]
        new = out[:, prompt_len:].cpu()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        mask = mask.cpu()
        results = []
        for r in range(len(items)):
            g = Generation(texts=[], prompt_tokens=int(mask[r].sum()))
            for s in range(k):
                row = new[r * k + s].tolist()
                stop = next((n for n, t in enumerate(row) if t in eos_ids), None)
                g.texts.append(decoded[r * k + s])
                g.completion_tokens.append(len(row) if stop is None else stop + 1)
                g.finish_reasons.append("length" if stop is None else "stop")
                g.token_ids.append(row if stop is None else row[: stop + 1])
            results.append(g)
        return results

    # ------------------------------------------------------------ vision features

    #: pixel rows (14-px patches) encoded by one vision-tower call: ~24 images at the default budget
    vision_chunk_rows = 16384

    def _encode_by_prompt(self, items: list[tuple[str, list[Any], list[Any], int]],
                          uses: _SharedFeatures | None) -> dict[str, Any] | None:  # fmt: skip
        """Model inputs of a batch of prompts, with vision features instead of pixels: each prompt
        through the processor on its own, its new images and videos encoded in chunks of
        :attr:`vision_chunk_rows` and their pixels dropped, then the prompts left-padded into one
        batch (as the processor pads them). The pixels of the whole batch are never held at once,
        which was the largest allocation of a batch of many images. ``None`` when the family has no
        per-medium grid (its processor lays images out otherwise): the caller encodes the batch whole.
        """
        import torch

        base = getattr(self.model, "model", None)
        if self._whole_batch_vision or base is None:
            return None
        cache = self.feature_cache
        features: dict[str, tuple[Any, Any, Any]] = {}
        pending: dict[str, list[tuple[str, Any, Any]]] = {m[0]: [] for m in _MODALITIES}
        waiting: set[str] = set()
        rows: list[dict[str, Any]] = []
        keys: dict[str, list[str]] = {m[0]: [] for m in _MODALITIES}

        def flush(kind: str, encoder_name: str) -> None:
            todo = pending[kind]
            if not todo:
                return
            pixels = torch.cat([p for _, p, _ in todo]).to(self.device)
            grid = torch.stack([g for _, _, g in todo]).to(self.device)
            out = getattr(base, encoder_name)(pixels, grid, return_dict=True)
            deep = getattr(out, "deepstack_features", None)
            for n, (key, _, _) in enumerate(todo):
                entry = (type(out), out.pooler_output[n], None if deep is None else [layer[n] for layer in deep])
                features[key] = entry
                if cache is not None:
                    cache.put("features:" + key, entry, nbytes(entry[1:]))
                waiting.discard(key)
            self.vision_encoded += len(todo)
            todo.clear()

        for text, ims, vids, _ in items:
            enc = self.encode([text], ims, vids)
            if set(enc) - _PER_PROMPT_KEYS:
                self._whole_batch_vision = True  # e.g. LLaVA-OV's anyres tiles: no per-image pixel rows
                return None
            for kind, pixel_key, grid_key, encoder_name in _MODALITIES:
                media = ims if kind == "image" else vids
                if not media:
                    continue
                grid = enc.get(grid_key)
                if grid is None or pixel_key not in enc or getattr(base, encoder_name, None) is None:
                    self._whole_batch_vision = True
                    return None
                start = 0
                for medium, g, n in zip(media, grid, grid.prod(-1).tolist(), strict=True):
                    key = uses.key(medium, kind) if uses is not None else kind + ":" + content_key(medium)
                    keys[kind].append(key)
                    if key not in features and key not in waiting:
                        hit = uses.get(key) if uses is not None else None
                        if hit is None and cache is not None:
                            hit = cache.get("features:" + key)
                        if hit is not None:
                            features[key] = hit
                        else:
                            pending[kind].append((key, enc[pixel_key][start : start + n], g))
                            waiting.add(key)
                    start += n
                if sum(p.shape[0] for _, p, _ in pending[kind]) >= self.vision_chunk_rows:
                    flush(kind, encoder_name)
            rows.append({k: v for k, v in enc.items() if k not in ("pixel_values", "pixel_values_videos")})
            del enc
        for kind, _, _, encoder_name in _MODALITIES:
            flush(kind, encoder_name)
        width = max(r["input_ids"].shape[1] for r in rows)
        out: dict[str, Any] = {}
        for name, fill in (("input_ids", self.tokenizer.pad_token_id), ("attention_mask", 0), ("mm_token_type_ids", 0)):
            if name not in rows[0]:
                continue
            t = torch.full((len(rows), width), fill, dtype=rows[0][name].dtype)
            for r, row in enumerate(rows):  # left padding, as the processor pads a batch
                t[r, width - row[name].shape[1] :] = row[name][0]
            out[name] = t
        for name in ("image_grid_thw", "video_grid_thw", "second_per_grid_ts"):
            parts = [r[name] for r in rows if name in r]
            if parts:
                out[name] = torch.cat([torch.as_tensor(p) for p in parts])
        out = {key: v.to(self.device) for key, v in out.items()}
        mm: dict[str, Any] = {}
        for kind in ("image", "video"):
            ks = keys[kind]
            if not ks:
                continue
            cls = features[ks[0]][0]
            fields: dict[str, Any] = {"pooler_output": [features[k][1] for k in ks]}
            if features[ks[0]][2] is not None:
                fields["deepstack_features"] = [[features[k][2][j] for k in ks] for j in range(len(features[ks[0]][2]))]
            mm[kind] = cls(**fields)
        if uses is not None:
            uses.done([k for kind in keys for k in keys[kind]], features)
        out["mm_encoder_outputs"] = mm
        return out



#: what a Qwen-style processor returns for a prompt; anything else and the batch is encoded whole
_PER_PROMPT_KEYS = {"input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw",
                    "pixel_values_videos", "video_grid_thw", "second_per_grid_ts"}
#: (kind, pixel key, grid key, encoder method) of each medium a Qwen-style model encodes
_MODALITIES = (("image", "pixel_values", "image_grid_thw", "get_image_features"),
               ("video", "pixel_values_videos", "video_grid_thw", "get_video_features"))


class _SharedFeatures:
    """Vision features of one ``generate`` call's images, each kept until the call's last batch that
    holds its image has taken it (so memory follows the repeats, not the call's size)."""

    def __init__(self, images: list[Any], videos: list[Any] = ()):  # type: ignore[assignment]
        self._keys: dict[int, str] = {}
        self._left: dict[str, int] = {}  # uses still to come (the same object may be in several requests)
        for kind, media in (("image", images), ("video", videos)):
            for m in media:
                key = self._keys.get(id(m)) or self._keys.setdefault(id(m), kind + ":" + content_key(m))
                self._left[key] = self._left.get(key, 0) + 1
        self._kept: dict[str, Any] = {}

    def key(self, medium: Any, kind: str = "image") -> str:
        key = self._keys.get(id(medium))
        return key if key is not None else kind + ":" + content_key(medium)

    def get(self, key: str) -> Any:
        return self._kept.get(key)

    def done(self, keys: list[str], features: dict[str, Any]) -> None:
        for key in keys:
            self._left[key] = self._left.get(key, 1) - 1
        for key in set(keys):
            if self._left[key] > 0:
                self._kept[key] = features[key]
            else:
                self._kept.pop(key, None)


def sample_after_shared_prefill(model: Any, inputs: dict[str, Any], k: int, gen: dict[str, Any]) -> Any:
    """``k`` samples of every prompt in ``inputs`` with the prompt's prefill (and vision encoding) run
    once: the model reads each prompt but its last token into a cache, the cache's rows are repeated
    ``k``-fold, and ``generate`` continues from it on the repeated ids without any pixels. The last
    prompt token then goes through the model in the first decoding step, for all ``k`` rows, exactly
    where ``num_return_sequences`` would have read the whole prompt ``k`` times.

    Qwen's M-RoPE keeps the prompt's position offsets (``rope_deltas``) as module state; they are
    repeated with the cache. Returns ``generate``'s ids: (rows x ``k``, prompt + new tokens).
    """
    per_token = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
    head = {key: (v[:, :-1] if key in per_token else v) for key, v in inputs.items()}
    cache_kw = cache_kwargs(model)
    if not cache_kw:  # no cache object to hand over: the stock path
        return model.generate(**inputs, **gen, num_return_sequences=k)
    cache = next(iter(cache_kw.values()))
    model.generate(**head, **cache_kw, max_new_tokens=1, do_sample=False, temperature=None, top_p=None,
                   top_k=None, pad_token_id=gen.get("pad_token_id"))  # fmt: skip
    repeat_rows(cache, k)
    inner = getattr(model, "model", None)
    deltas = getattr(inner, "rope_deltas", None)
    if deltas is not None:
        inner.rope_deltas = deltas.repeat_interleave(k, dim=0)
    tail = {key: v.repeat_interleave(k, dim=0) for key, v in inputs.items() if key in per_token}
    return model.generate(**tail, **cache_kw, **gen)


# ---------------------------------------------------------------- HTTP


class HTTPBackend(Backend):
    """An OpenAI-compatible chat endpoint; images and video frames go as base64 data URLs."""

    name = "http"

    def __init__(self, client: Any, budget: VisionBudget | None = None):
        self.client = client
        self.budget = budget or VisionBudget()
        self.name = f"{client.model}@{client.base_url}"

    def generate(
        self, messages_list: list[list[dict[str, Any]]], params: SamplingParams
    ) -> list[Generation | Exception]:
        from unireward.judge.openai_http import ChatError

        results: list[Generation | Exception | None] = [None] * len(messages_list)
        ready: list[int] = []
        payloads = []
        for i, messages in enumerate(messages_list):
            try:
                payloads.append(materialize(messages, self.budget))
                ready.append(i)
            except MediaError as e:
                results[i] = e
        gen: dict[str, Any] = {
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "n": params.num_samples,
        }
        if not params.greedy:
            gen["top_p"] = params.top_p
        if params.seed is not None:
            gen["seed"] = params.seed
        if params.min_new_tokens:
            gen["min_tokens"] = params.min_new_tokens
        responses = self.client.chat_many(payloads, **gen)
        for i, resp in zip(ready, responses, strict=True):
            if isinstance(resp, ChatError):
                results[i] = resp
                continue
            texts = list(resp.texts)
            if len(texts) != params.num_samples:
                results[i] = ChatError(
                    f"request {i}: asked for {params.num_samples} choices, got {len(texts)}"
                )
                continue
            per = resp.usage.get("completion_tokens", 0) // max(1, len(texts))
            results[i] = Generation(
                texts,
                resp.usage.get("prompt_tokens", 0),
                [per] * len(texts),
                [resp.finish_reason] * len(texts),
            )
        return [r if r is not None else RuntimeError("no result") for r in results]


# ---------------------------------------------------------------- cross-request batching


class BatchingBackend(Backend):
    """Merges requests arriving from many threads (e.g. server handlers) into shared batches.

    Callers block on their own requests; one worker thread collects whatever is queued with the
    same sampling parameters and runs it through the inner backend in one call.
    """

    def __init__(self, inner: Backend, max_wait_s: float = 0.005, max_requests: int = 64):
        self.inner = inner
        self.name = inner.name
        self.budget = inner.budget
        self.max_wait_s = max_wait_s
        self.max_requests = max_requests
        self._cv = threading.Condition()
        self._queue: list[tuple[list[dict[str, Any]], SamplingParams, Future]] = []
        self._worker = threading.Thread(target=self._loop, name="unireward-batcher", daemon=True)
        self._worker.start()

    def generate(
        self, messages_list: list[list[dict[str, Any]]], params: SamplingParams
    ) -> list[Generation | Exception]:
        futures: list[Future] = []
        with self._cv:
            for messages in messages_list:
                fut: Future = Future()
                self._queue.append((messages, params, fut))
                futures.append(fut)
            self._cv.notify()
        return [f.result() for f in futures]

    def _loop(self) -> None:
        import time

        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
            time.sleep(self.max_wait_s)  # let concurrent callers join the batch
            with self._cv:
                params = self._queue[0][1]
                take = [q for q in self._queue if q[1] == params][: self.max_requests]
                for q in take:
                    self._queue.remove(q)
            try:
                outs = self.inner.generate([q[0] for q in take], params)
            except Exception as e:
                outs = [e] * len(take)
            for q, out in zip(take, outs, strict=True):
                q[2].set_result(out)
