"""The judging tasks and the exact verdict strings each one uses."""

from __future__ import annotations

from enum import Enum


class Task(str, Enum):
    """What is being judged.

    Generation tasks compare two generated media for one caption; understanding tasks compare two
    text answers to a question about one reference image or video; image editing compares two edits
    of one source image (the reference) for one instruction.
    """

    IMAGE_GENERATION = "image_generation"
    VIDEO_GENERATION = "video_generation"
    IMAGE_UNDERSTANDING = "image_understanding"
    VIDEO_UNDERSTANDING = "video_understanding"
    IMAGE_EDITING = "image_editing"

    @classmethod
    def parse(cls, value: str | Task) -> Task:
        """Accept the enum, its value, or a dashed spelling (``image-generation``).

        >>> Task.parse("video-understanding")
        <Task.VIDEO_UNDERSTANDING: 'video_understanding'>
        """
        if isinstance(value, Task):
            return value
        key = str(value).strip().lower().replace("-", "_")
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown task {value!r}; expected one of: {names}") from None

    @property
    def is_generation(self) -> bool:
        """The candidates are media (images, videos, edited images), not text answers."""
        return self in (Task.IMAGE_GENERATION, Task.VIDEO_GENERATION, Task.IMAGE_EDITING)

    @property
    def uses_reference(self) -> bool:
        """Whether a request carries a reference medium: the image/video asked about, or the source
        image of an edit. A reference given to any other task is an error, never dropped.

        >>> Task.IMAGE_EDITING.uses_reference, Task.IMAGE_GENERATION.uses_reference
        (True, False)
        """
        return self is Task.IMAGE_EDITING or not self.is_generation

    @property
    def is_video(self) -> bool:
        return self in (Task.VIDEO_GENERATION, Task.VIDEO_UNDERSTANDING)


#: the four tasks of the paper (UnifiedReward-Think's prompts, the synthetic task, the demo recipes)
THINK_TASKS = (Task.IMAGE_GENERATION, Task.VIDEO_GENERATION, Task.IMAGE_UNDERSTANDING, Task.VIDEO_UNDERSTANDING)


class Mode(str, Enum):
    PAIRWISE = "pairwise"
    POINTWISE = "pointwise"


def candidate_noun(task: Task | str) -> str:
    """The word the prompts use for a candidate.

    >>> candidate_noun("image_generation"), candidate_noun("video_understanding")
    ('Image', 'Answer')
    """
    task = Task.parse(task)
    if task in (Task.IMAGE_GENERATION, Task.IMAGE_EDITING):
        return "Image"
    if task is Task.VIDEO_GENERATION:
        return "Video"
    return "Answer"


def answer_label(task: Task | str, winner: int) -> str:
    """The exact string expected inside ``<answer>`` when candidate ``winner`` is preferred.

    >>> answer_label("video_generation", 2)
    'Video 2 is better'
    """
    if winner not in (1, 2):
        raise ValueError(f"winner must be 1 or 2, got {winner!r}")
    return f"{candidate_noun(task)} {winner} is better"


def label_to_winner(task: Task | str, label: str) -> int | None:
    """Inverse of :func:`answer_label`; ``None`` when ``label`` is not an allowed verdict.

    >>> label_to_winner("image_understanding", "Answer 1 is better")
    1
    >>> label_to_winner("image_understanding", "Image 1 is better") is None
    True
    """
    for w in (1, 2):
        if label == answer_label(task, w):
            return w
    return None
