"""Which media a request carries, in which order, and the same request with its candidates swapped."""

from __future__ import annotations

from typing import Any

from unireward.protocol.tasks import Task
from unireward.request.rules import check_reference


def media_order(task: Task, reference: Any, candidates: list[Any]) -> list[Any]:
    """The media of one request in the official order: an edit's source image first, then the edited
    images; the candidates of a generation task; the reference of an understanding task. The
    reference is checked first (:func:`~unireward.request.rules.check_reference`).

    >>> media_order(Task.IMAGE_EDITING, "src", ["a", "b"]), media_order(Task.IMAGE_UNDERSTANDING, "ref", [])
    (['src', 'a', 'b'], ['ref'])
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


def count_media(task: Task, refs: list[Any]) -> tuple[int, int]:
    """Images (the frames of videos given as frame lists included) and video files among ``refs``.

    >>> count_media(Task.VIDEO_GENERATION, [["f1.png", "f2.png"], "b.mp4"])
    (2, 1)
    >>> count_media(Task.IMAGE_EDITING, ["s", "a", "b"])
    (3, 0)
    """
    if not task.is_video:
        return len(refs), 0
    frames = sum(len(r) for r in refs if isinstance(r, list))
    return frames, sum(1 for r in refs if not isinstance(r, list))


def group_share(task: Task, candidates: list[Any], reference: Any = None) -> tuple[int, int]:
    """Images and videos one judged pair of a group holds on average: a group of N candidates is judged
    two at a time, so each medium shares the vision budget with one other (and an edit's source image,
    which rides along with every pair), not with all N.

    >>> group_share(Task.IMAGE_GENERATION, list("abcd")), group_share(Task.IMAGE_EDITING, list("abcd"), "s")
    ((2, 0), (3, 0))
    """
    media = (list(candidates) if task.is_generation else []) + ([reference] if task.uses_reference else [])
    if not media:
        return 0, 0
    n_images, n_videos = count_media(task, media)
    per_pair = min(len(media), 2 + (task is Task.IMAGE_EDITING)) / len(media)
    return round(n_images * per_pair), round(n_videos * per_pair)
