"""From a preference pair (or loose arguments) to the chat messages a judge model sees.

This is the one place that decides which media go into a request and in what order, so judging,
distillation, SFT, sampling and GRPO all build identical prompts.
"""

from __future__ import annotations

import os
from typing import Any

from unireward.data.schema import MediaRef, PreferencePair
from unireward.media import VisionBudget, load_frames, load_image, load_video, resolve
from unireward.protocol.tasks import Mode, Task
from unireward.protocol.templates import render_messages


def _load(ref: MediaRef, task: Task, root: str | os.PathLike[str] | None, budget: VisionBudget, n: int) -> Any:
    if isinstance(ref, list):  # a video given as frame files: sampled like a video file
        return load_frames(ref, budget, n_videos=n, root=root)
    path = resolve(ref, root)
    if task.is_video:
        return load_video(path, budget, n_videos=n)
    return load_image(path, budget, n_images=n)


def load_pair_media(pair: PreferencePair, root: str | os.PathLike[str] | None, budget: VisionBudget) -> list[Any]:
    """Loaded media of a pair, in prompt order: both candidates (generation) or the reference.

    Raises :class:`unireward.media.MediaError` naming the first file that cannot be used.
    """
    if pair.task.is_generation:
        return [_load(c, pair.task, root, budget, 2) for c in pair.candidates]
    assert pair.reference is not None
    return [_load(pair.reference, pair.task, root, budget, 1)]


def pair_messages(
    pair: PreferencePair,
    media: list[Any],
    family: str | None = None,
    video_as: str = "video",
) -> list[dict[str, Any]]:
    """Pairwise chat messages for ``pair`` with already loaded ``media``."""
    answers = () if pair.task.is_generation else tuple(pair.candidates)  # type: ignore[arg-type]
    return render_messages(pair.task, pair.prompt, media, answers, family=family, mode=Mode.PAIRWISE, video_as=video_as)


def pointwise_messages(
    task: Task | str,
    prompt: str,
    media: list[Any],
    answer: str | None = None,
    family: str | None = None,
    video_as: str = "video",
) -> list[dict[str, Any]]:
    """Pointwise chat messages: one candidate medium (generation) or one answer about ``media``."""
    task = Task.parse(task)
    answers = () if task.is_generation else (answer or "",)
    return render_messages(task, prompt, media, answers, family=family, mode=Mode.POINTWISE, video_as=video_as)


def media_inputs(messages: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The images and videos of a message list, in order (what the processor takes beside the text)."""
    images: list[Any] = []
    videos: list[Any] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            continue
        for part in content:
            if part.get("type") == "image":
                images.append(part["image"])
            elif part.get("type") == "video":
                videos.append(part["video"])
    return images, videos
