"""The frames the model actually sees: each uploaded medium loaded the way the judge loads it.

A video is judged from a handful of sampled, resized frames, and an image from a resized copy;
showing those (with their source frame numbers and times) tells a user why a video was judged as it
was. Loading goes through :func:`unireward.request.load_medium` with the judge's vision budget
and the same share of it per medium, so the preview is what the backend receives. A file that
cannot be used yields its :class:`~unireward.media.MediaError` message, never a stand-in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from unireward.app.render import short_paths
from unireward.media import Frames, MediaError, VisionBudget
from unireward.protocol.tasks import Task
from unireward.request import load_medium, media_order


@dataclass
class Seen:
    """One medium as the model sees it: frames (one for an image), a caption per frame, a summary
    line, or the error that stopped it."""

    frames: list[Image.Image] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    summary: str = ""
    error: str | None = None

    def gallery(self) -> list[tuple[Image.Image, str]]:
        return list(zip(self.frames, self.captions, strict=True))


def display_name(path: str | os.PathLike[str]) -> str:
    """The name a user gave a file (an upload lives in a temporary folder of its own).

    >>> display_name("/tmp/gradio/0a1b/red.png")
    'red.png'
    """
    return os.path.basename(str(path))


def error_message(e: MediaError) -> str:
    """A MediaError's message with the file named as the user knows it.

    >>> error_message(MediaError("/tmp/gradio/0a1b/bad.mp4", "no video stream"))
    'bad.mp4: no video stream'
    """
    return f"{display_name(e.source)}: {short_paths(e.reason)}"


def _source_size(path: str) -> tuple[int, int] | None:
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # only for the caption; loading already succeeded
        return None


def see(path: str | None, task: Task, budget: VisionBudget, n: int) -> Seen | None:
    """Load one medium as the judge would when ``n`` media share the request; ``None`` when absent.

    >>> see(None, Task.IMAGE_GENERATION, VisionBudget(), 2) is None
    True
    """
    if not path:
        return None
    try:
        medium: Any = load_medium(str(path), task, None, budget, n)
    except MediaError as e:
        return Seen(summary="", error=error_message(e))
    except (OSError, ValueError) as e:
        return Seen(summary="", error=f"{display_name(path)}: {short_paths(str(e))}")
    if isinstance(medium, Frames):
        times = medium.timestamps()
        caps = [f"frame {i}" + (f" · {times[k]:.2f} s" if times else "") + f" · {f.width}×{f.height}"
                for k, (i, f) in enumerate(zip(medium.indices, medium, strict=True))]  # fmt: skip
        rate = f" at {medium.fps:g} fps" if medium.fps else ""
        sizes = sorted({f.size for f in medium})
        size = ", ".join(f"{w}×{h}" for w, h in sizes)
        summary = f"{len(medium)} of {medium.total} frames{rate}, {size} px each"
        return Seen(list(medium), caps, summary)
    src = _source_size(str(path))
    frm = f" (file {src[0]}×{src[1]})" if src and src != medium.size else ""
    cap = f"{medium.width}×{medium.height}{frm}"
    return Seen([medium], [cap], f"image {medium.width}×{medium.height} px{frm}")


def seen_media(
    task: Task | str,
    candidates: tuple[str | None, str | None],
    reference: str | None,
    budget: VisionBudget,
    pointwise: bool = False,
) -> dict[str, Seen | None]:
    """What the model sees of each slot (``candidate_1``, ``candidate_2``, ``reference``).

    The media of one request share its budget: both candidates of a pair (and the source image of an
    edit); in pointwise mode each candidate is its own request. An understanding task's reference is
    alone in its request, its candidates being text.
    """
    task = Task.parse(task)
    out: dict[str, Seen | None] = {"candidate_1": None, "candidate_2": None, "reference": None}
    if not task.is_generation:
        out["reference"] = see(reference, task, budget, 1)
        return out
    # how many media one request holds, from the judge's own ordering (an edit's source comes first)
    n = len(media_order(task, "reference" if task.uses_reference else None, [None] * (1 if pointwise else 2)))
    for slot, path in zip(("candidate_1", "candidate_2"), candidates, strict=True):
        out[slot] = see(path, task, budget, n)
    if task.uses_reference:
        out["reference"] = see(reference, task, budget, n)
    return out
