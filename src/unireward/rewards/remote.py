"""A generator's GRPO reward from a ``unireward serve`` endpoint (``POST /v1/rewards``).

Each group (the candidates generated for one prompt) goes to the server as one request; the server
judges every pair of the group in shared batched ``generate`` calls and answers one reward per
candidate: its win rate over the group's pairs (a tie or an unparsed verdict counts 0.5 to each
side), or its pointwise score. Groups are sent concurrently. Requests and answers follow the server's
wire schema (:mod:`unireward.serve.protocol`).

TRL calls reward functions with its own shapes: a conversational completion is a list of messages
(``[{"role": "assistant", "content": "..."}]``), a conversational prompt a list of messages whose
text is the caption or question; both are read here, and a dataset's ``images`` column becomes the
reference of an understanding task when no ``references`` are given.
"""

from __future__ import annotations

import base64
import io
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image


class RemoteRewardError(RuntimeError):
    """The server refused a group (a 4xx other than 429) or kept failing after the retries."""


def encode_medium(item: Any, image_format: str = "JPEG", video: bool = False) -> Any:
    """A candidate as the server takes it: an image (PIL, HxWxC uint8 array, CxHxW float tensor in
    [0, 1], path or bytes) becomes a base64 data URL; a video (a list of frames, a TxHxWxC array or
    TxCxHxW tensor, or, with ``video=True``, the path of a video file, sent whole for the server to
    decode) a list of frame URLs or one video URL; text (an answer, or an existing data URL) is
    passed through.

    >>> encode_medium(Image.new("RGB", (2, 2)), "PNG")[:22]
    'data:image/png;base64,'
    >>> encode_medium("Answer text")
    'Answer text'
    >>> import numpy as np
    >>> len(encode_medium(np.zeros((3, 4, 4, 3), dtype=np.uint8), "PNG", video=True))  # three frames
    3
    """
    if isinstance(item, (list, tuple)):
        return [encode_medium(f, image_format) for f in item]
    if isinstance(item, str) and not _is_path(item):
        return item
    if isinstance(item, str) and video:
        return _video_file_url(item)
    if video and getattr(item, "ndim", 0) == 4:  # a clip as one array or tensor: its frames
        return [encode_medium(f, image_format) for f in item]
    img = _to_image(item)
    buf = io.BytesIO()
    fmt = image_format.upper()
    img.convert("RGB").save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def _is_path(s: str) -> bool:
    import os

    return not s.startswith("data:") and len(s) < 4096 and os.path.isfile(s)


def _video_file_url(path: str) -> str:
    """A video file as a ``data:video/...`` URL (the server sniffs the container and samples frames)."""
    import mimetypes

    mime = mimetypes.guess_type(path)[0] or ""
    if not mime.startswith("video/") and not path.lower().endswith(".gif"):
        mime = "video"  # the server sniffs the container from the bytes
    with open(path, "rb") as f:
        return f"data:{mime or 'video'};base64," + base64.b64encode(f.read()).decode()


def _to_image(item: Any) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, (bytes, bytearray)):
        return Image.open(io.BytesIO(item))
    if isinstance(item, str):
        try:
            img = Image.open(item)
            img.load()
        except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for a file that is not an image
            raise ValueError(
                f"{item}: not an image file ({type(e).__name__}); a video goes as a list of frames, or as a "
                "file path with a video task (task='video_generation')"
            ) from None
        return img
    if hasattr(item, "detach"):  # a torch tensor: CxHxW, float in [0, 1] or uint8
        item = item.detach().float().cpu()
        if item.dim() == 3 and item.shape[0] in (1, 3, 4):
            item = item.permute(1, 2, 0)
        arr = item.numpy()
        if arr.max() <= 1.0:
            arr = arr * 255.0
        item = arr.clip(0, 255).round().astype("uint8")
    import numpy as np

    arr = np.asarray(item)
    if arr.dtype != np.uint8:
        arr = (arr * 255.0 if arr.max() <= 1.0 else arr).clip(0, 255).round().astype(np.uint8)
    return Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[-1] == 1 else arr)


@dataclass
class RemoteGroupReward:
    """Rewards for groups of generations, computed by a judge server.

    Use it as a TRL reward function (``reward_funcs=[RemoteGroupReward(url)]``: candidates of the
    same prompt form a group) or call :meth:`group` from a diffusers training loop::

        reward = RemoteGroupReward("http://127.0.0.1:8000", task="image_generation")
        rewards = reward(prompts=prompts, completions=images)  # one float per image

    ``method="pairwise"`` is Pref-GRPO's win rate; ``"pointwise"`` scores each candidate alone.
    ``both_orders`` judges each pair in both orders to cancel position bias (twice the cost).
    429/503 answers and connection errors are retried (honouring ``Retry-After``).
    """

    base_url: str
    task: str = "image_generation"
    method: str = "pairwise"
    both_orders: bool = False
    api_key: str | None = None
    timeout: float = 600.0
    max_retries: int = 8
    concurrency: int = 8
    image_format: str = "JPEG"
    max_tokens: int | None = None
    temperature: float | None = None

    def __post_init__(self) -> None:
        if self.method not in ("pairwise", "pointwise"):
            raise ValueError(f"method must be 'pairwise' or 'pointwise', got {self.method!r}")
        if self.concurrency < 1 or self.max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.base_url = self.base_url.rstrip("/").removesuffix("/v1")
        self.__name__ = f"remote_{self.method}_reward"  # TRL logs reward functions by name
        self.last_judgments: list[list[dict[str, Any]]] = []

    def group(self, prompt: Any, candidates: Sequence[Any], reference: Any = None) -> list[float]:
        """Rewards of one group: one float per candidate, in order (its judgments in ``last_judgments[0]``)."""
        rewards, judgments = self._request(_prompt_text(prompt), [_completion(c) for c in candidates], reference)
        self.last_judgments = [judgments]
        return rewards

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], group_ids: Sequence[Any] | None = None,
                 references: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:  # fmt: skip
        """One reward per completion; completions sharing a prompt (or a ``group_ids`` value) form a group.
        Without ``references``, an understanding task takes each row's first image of TRL's ``images``
        (or ``image``) column as the medium its answers are about."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        completions = [_completion(c) for c in completions]
        if references is None and self.task.endswith("_understanding"):
            column = kwargs.get("images", kwargs.get("image"))
            if column is not None:
                references = [r[0] if isinstance(r, (list, tuple)) and r else r for r in column]
        keys = list(group_ids) if group_ids is not None else [_prompt_text(p) for p in prompts]
        groups: dict[Any, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        members = list(groups.values())

        def one(idx: list[int]) -> tuple[list[float], list[dict[str, Any]]]:
            ref = references[idx[0]] if references is not None else None
            return self._request(_prompt_text(prompts[idx[0]]), [completions[i] for i in idx], ref)

        with ThreadPoolExecutor(min(self.concurrency, len(members)) or 1) as pool:
            answers = list(pool.map(one, members))
        out = [0.0] * len(completions)
        for idx, (rewards, _) in zip(members, answers, strict=True):
            for i, r in zip(idx, rewards, strict=True):
                out[i] = r
        self.last_judgments = [j for _, j in answers]
        return out

    def _request(self, prompt: str, candidates: Sequence[Any], reference: Any) -> tuple[list[float], list[dict[str, Any]]]:
        import httpx

        from unireward.serve.protocol import RewardsRequest, RewardsResponse

        video = self.task.startswith("video")
        generation = self.task.endswith("_generation")
        extra = {k: v for k, v in (("max_tokens", self.max_tokens), ("temperature", self.temperature)) if v is not None}
        body = RewardsRequest(
            task=self.task, prompt=prompt, method=self.method, both_orders=self.both_orders,
            candidates=[encode_medium(c, self.image_format, video and generation) for c in candidates],
            reference=None if reference is None else encode_medium(reference, self.image_format, video),
            **extra,
        ).body()  # fmt: skip
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
            try:
                r = httpx.post(self.base_url + "/v1/rewards", json=body, headers=headers, timeout=self.timeout)
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    out = RewardsResponse.model_validate(r.json())
                    return out.rewards, [j.model_dump() for j in out.judgments]
                last = _message(r)
                if r.status_code not in (429, 502, 503, 504):
                    raise RemoteRewardError(f"group {prompt[:60]!r}: HTTP {r.status_code}: {last}")
                retry_after = r.headers.get("retry-after", "")
                if retry_after.isdigit():
                    wait = float(retry_after)
            if attempt < self.max_retries:
                time.sleep(wait)
        raise RemoteRewardError(f"group {prompt[:60]!r}: failed after {self.max_retries + 1} attempts: {last}")


def _message(r: Any) -> str:
    try:
        return str(r.json()["error"]["message"])
    except Exception:
        return r.text[:200]


def _completion(completion: Any) -> Any:
    """A TRL completion as a candidate: the text of a conversational completion (its last assistant
    message), anything else as it is.

    >>> _completion([{"role": "assistant", "content": "<answer>Yes</answer>"}])
    '<answer>Yes</answer>'
    >>> _completion([{"role": "assistant", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}])
    'AB'
    """
    if isinstance(completion, dict) and "role" in completion:
        completion = [completion]
    if isinstance(completion, (list, tuple)) and completion and all(isinstance(m, dict) and "role" in m for m in completion):
        said = [m for m in completion if m.get("role") == "assistant"] or list(completion)
        content = said[-1].get("content")
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        return "" if content is None else str(content)
    return completion


def _prompt_text(prompt: Any) -> str:
    """The caption of a prompt given as text or as TRL conversational messages.

    >>> _prompt_text([{"role": "user", "content": [{"type": "text", "text": "a red cube"}]}])
    'a red cube'
    """
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        texts = []
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        for m in users or prompt:  # the caption or question, not a system prompt
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(t for t in texts if t)
    return str(prompt)
