"""The one media loader of a request: paths, PIL images, bytes and frame lists under a vision budget."""

from __future__ import annotations

from typing import Any

from PIL import Image

from unireward.media import Frames, VisionBudget, load_frames, load_image, load_video, resolve
from unireward.protocol.tasks import Task


def load_medium(ref: Any, task: Task, root: Any, budget: VisionBudget, n: int) -> Any:
    """One image or video (path resolved against ``root``, PIL image, bytes, frame list, or already
    loaded :class:`~unireward.media.Frames`) sized so ``n`` media of one request share ``budget``.
    Raises :class:`~unireward.media.MediaError` naming a file that cannot be used.

    >>> big = Image.new("RGB", (1024, 1024))
    >>> load_medium(big, Task.IMAGE_GENERATION, None, VisionBudget(), 2).size  # each image: max_pixels
    (364, 364)
    >>> shared = VisionBudget(max_total_pixels=147456)
    >>> load_medium(big, Task.IMAGE_GENERATION, None, shared, 2).size  # half the total each
    (252, 252)
    """
    if isinstance(ref, Image.Image) or isinstance(ref, (bytes, bytearray)):
        return load_image(ref, budget, n_images=n)
    if isinstance(ref, (list, tuple)) and not isinstance(ref, Frames):  # frames (paths or PIL images)
        return load_frames(ref, budget, n_videos=n, root=root)
    if isinstance(ref, Frames):  # loaded by load_video (already sampled): keep where the frames came from
        per = budget.per_image_max(len(ref) * n)
        one = VisionBudget(**{**budget.__dict__, "max_pixels": max(per, budget.min_pixels)})
        frames = [load_image(f if isinstance(f, Image.Image) else resolve(str(f), root), one) for f in ref]
        return Frames(frames, indices=ref.indices, fps=ref.fps, total=ref.total)
    path = resolve(str(ref), root)
    if task.is_video:
        return load_video(path, budget, n_videos=n)
    return load_image(path, budget, n_images=n)
