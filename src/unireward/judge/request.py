"""From a preference pair (or loose arguments) to the chat messages a judge model sees.

This is the one place that decides which media go into a request and in what order, so judging,
distillation, SFT, sampling and GRPO all build identical prompts.
"""

from __future__ import annotations

import os
from typing import Any

from unireward.data.schema import MediaRef, PreferencePair
from unireward.media import MediaError, VisionBudget, load_frames, load_image, load_video, resolve
from unireward.protocol.tasks import Mode, Task
from unireward.protocol.templates import render_messages


def _load(ref: MediaRef, task: Task, root: str | os.PathLike[str] | None, budget: VisionBudget, n: int) -> Any:
    if isinstance(ref, list):  # a video given as frame files: sampled like a video file
        return load_frames(ref, budget, n_videos=n, root=root)
    path = resolve(ref, root)
    if task.is_video:
        return load_video(path, budget, n_videos=n)
    return load_image(path, budget, n_images=n)


def check_reference(task: Task, reference: Any) -> None:
    """A reference is required where the task uses one and refused elsewhere, never silently dropped.

    >>> check_reference(Task.IMAGE_GENERATION, "src.png")
    Traceback (most recent call last):
    ...
    ValueError: image_generation takes no reference (a source image belongs to --task image_editing)
    """
    if reference is not None and not task.uses_reference:
        raise ValueError(f"{task.value} takes no reference (a source image belongs to --task image_editing)")
    if reference is None and task.uses_reference:
        what = "the source image" if task is Task.IMAGE_EDITING else "a reference image or video"
        raise MediaError("<none>", f"{task.value} needs {what}")


def media_order(task: Task, reference: Any, candidates: list[Any]) -> list[Any]:
    """The media of one request in the official order: an edit's source image first, then the edited
    images; the candidates of a generation task; the reference of an understanding task.

    >>> media_order(Task.IMAGE_EDITING, "src", ["a", "b"])
    ['src', 'a', 'b']
    """
    check_reference(task, reference)
    if task is Task.IMAGE_EDITING:
        return [reference, *candidates]
    return list(candidates) if task.is_generation else [reference]


def swap_media(task: Task, media: list[Any]) -> list[Any]:
    """The media of the same request with the two candidates swapped (an edit's source stays first).

    >>> swap_media(Task.IMAGE_EDITING, ["src", "a", "b"]), swap_media(Task.IMAGE_UNDERSTANDING, ["ref"])
    (['src', 'b', 'a'], ['ref'])
    """
    if task is Task.IMAGE_EDITING:
        return [media[0], *media[:0:-1]]
    return media[::-1] if task.is_generation else list(media)


def load_pair_media(pair: PreferencePair, root: str | os.PathLike[str] | None, budget: VisionBudget) -> list[Any]:
    """Loaded media of a pair, in prompt order (:func:`media_order`).

    Raises :class:`unireward.media.MediaError` naming the first file that cannot be used, and
    ``ValueError`` for a reference the task cannot use.
    """
    n = len(media_order(pair.task, pair.reference, list(pair.candidates)))
    if pair.task.is_generation:
        cands = [_load(c, pair.task, root, budget, n) for c in pair.candidates]
        if pair.task is Task.IMAGE_EDITING:
            return [_load(pair.reference, pair.task, root, budget, n), *cands]  # type: ignore[arg-type]
        return cands
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
