"""One judgment request: what is judged (task, prompt, candidates, reference), how (pairwise or
pointwise, which protocol), and, once loaded, the media it shows the judge, in prompt order.

Judging, the server, the app, export and the training stages all build this, so one input is
checked by the same rules and becomes the same chat messages everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from unireward.media import VisionBudget
from unireward.protocol.tasks import Mode, Task
from unireward.protocol.templates import render_messages
from unireward.request.errors import RequestError
from unireward.request.loading import load_medium
from unireward.request.order import count_media, media_order, swap_media
from unireward.request.rules import (
    check_candidates,
    check_count,
    check_family,
    check_prompt,
    check_reference,
    parse_task,
)

if TYPE_CHECKING:  # read by attribute only: no import of the data package at run time, which imports this
    from unireward.data.schema import PreferencePair


@dataclass(frozen=True)
class JudgeRequest:
    """A pairwise (two candidates) or pointwise (one) judgment request.

    Candidates are media (generation tasks: paths, PIL images, bytes, frame lists) or answer strings
    (understanding tasks, about ``reference``); an edit's ``reference`` is its source image.
    ``template_family`` names the protocol, ``None`` leaving it to the judge's options.
    Construction checks the shape (task, mode, the number of candidates); :meth:`validate` checks the
    content, so a batch can turn one bad item into an error row. ``media`` is ``None`` until
    :meth:`load` (or :meth:`with_media`) fills it, in prompt order. ``order`` says whether the
    candidates are in the order given or :meth:`swapped`.

    >>> r = JudgeRequest.from_loose("image_editing", "make it blue", ["a.png", "b.png"], reference="src.png")
    >>> r.validate().media_refs(), r.swapped().media_refs(), r.swapped().order
    (['src.png', 'a.png', 'b.png'], ['src.png', 'b.png', 'a.png'], 'swapped')
    >>> JudgeRequest.from_loose("image_generation", "a cat", ["a.png"])
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: exactly two candidates are required (pairwise), got 1
    """

    task: Task
    prompt: str
    candidates: tuple[Any, ...]
    reference: Any = None
    mode: Mode = Mode.PAIRWISE
    id: str | None = None
    template_family: str | None = None
    media: tuple[Any, ...] | None = None
    order: Literal["original", "swapped"] = "original"

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", parse_task(self.task))
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
        except ValueError:
            raise RequestError(f"mode must be 'pairwise' or 'pointwise', got {self.mode!r}", "mode") from None
        if isinstance(self.candidates, (str, bytes)) or not isinstance(self.candidates, Sequence):
            got = type(self.candidates).__name__
            raise RequestError(f"candidates must be a list, got {got}", "candidates")
        object.__setattr__(self, "candidates", tuple(self.candidates))
        check_count(self.mode, self.candidates)
        if self.media is not None:
            object.__setattr__(self, "media", tuple(self.media))

    # ------------------------------------------------------------ construction

    @classmethod
    def from_pair(cls, pair: PreferencePair, template_family: str | None = None) -> JudgeRequest:
        """The pairwise request of a preference pair, candidates in the pair's order."""
        return cls(pair.task, pair.prompt, tuple(pair.candidates), pair.reference, Mode.PAIRWISE, pair.id,
                   template_family)  # fmt: skip

    @classmethod
    def from_loose(
        cls,
        task: Task | str,
        prompt: str,
        candidates: Sequence[Any],
        reference: Any = None,
        mode: Mode | str = Mode.PAIRWISE,
        id: str | None = None,
        template_family: str | None = None,
    ) -> JudgeRequest:
        """A request from loose arguments (a form, an HTTP body, ``Judge.compare``)."""
        return cls(task, prompt, candidates, reference, mode, id, template_family)  # type: ignore[arg-type]

    # ------------------------------------------------------------ checks

    def validate(self) -> JudgeRequest:
        """Check the content; returns the request. Raises :class:`RequestError` naming the field:
        the prompt, each candidate (given; answers are strings), the reference (required or refused),
        the named family (has prompts for the mode and the task)."""
        check_prompt(self.task, self.prompt)
        check_candidates(self.task, self.candidates)
        check_reference(self.task, self.reference)
        check_family(self.template_family, self.mode, self.task)
        return self

    # ------------------------------------------------------------ media

    def media_refs(self) -> list[Any]:
        """The request's media as given, in prompt order (an edit's source image first)."""
        cands = list(self.candidates) if self.task.is_generation else []
        return media_order(self.task, self.reference, cands)

    def media_counts(self) -> tuple[int, int]:
        """Images (frames of frame lists included) and video files the request shows."""
        return count_media(self.task, self.media_refs())

    def with_media(self, media: Sequence[Any]) -> JudgeRequest:
        """The request with ``media`` standing for :meth:`media_refs` (same order and count)."""
        want = len(self.media_refs())
        if len(media) != want:
            what = f"{self.task.value} ({self.mode.value})"
            raise RequestError(f"{what} shows {want} media item(s), got {len(media)}", "media")
        return replace(self, media=tuple(media))

    def load(self, budget: VisionBudget, root: str | os.PathLike[str] | None = None) -> JudgeRequest:
        """Validated, with its media loaded under ``budget``: the media of one request share it (an
        edit's source image with the edited images). Raises :class:`RequestError` for bad input and
        :class:`~unireward.media.MediaError` naming a file that cannot be used."""
        refs = self.validate().media_refs()
        return self.with_media([load_medium(r, self.task, root, budget, len(refs)) for r in refs])

    def swapped(self) -> JudgeRequest:
        """The same pairwise request with the candidates in the other order (loaded media follow; an
        edit's source image stays first)."""
        if self.mode is not Mode.PAIRWISE:
            raise RequestError("a pointwise request has one candidate, nothing to swap", "mode")
        media = None if self.media is None else tuple(swap_media(self.task, list(self.media)))
        order = "original" if self.order == "swapped" else "swapped"
        return replace(self, candidates=self.candidates[::-1], media=media, order=order)

    # ------------------------------------------------------------ prompt

    @property
    def answers(self) -> tuple[str, ...]:
        """The answer strings an understanding task's prompt quotes (none for generation tasks)."""
        return () if self.task.is_generation else tuple(self.candidates)

    def messages(self, family: str | None = None, video_as: str = "video") -> list[dict[str, Any]]:
        """The chat messages: loaded media (else the media as given), then the filled template.
        ``family`` overrides :attr:`template_family`; ``video_as="frames"`` sends videos as images."""
        media = list(self.media) if self.media is not None else self.media_refs()
        family = family or self.template_family
        return render_messages(self.task, self.prompt, media, self.answers, family=family, mode=self.mode,
                               video_as=video_as)  # fmt: skip

    def media_inputs(self, family: str | None = None, video_as: str = "video") -> tuple[list[Any], list[Any]]:
        """The images and videos of :meth:`messages`, in order (what a processor takes beside the text)."""
        return media_inputs(self.messages(family, video_as))


def validate_group(task: Task | str, prompt: Any, candidates: Sequence[Any], reference: Any = None) -> Task:
    """The checks of :meth:`JudgeRequest.validate` for a group of candidates of one prompt (a GRPO
    group, judged in pairs or one by one); returns the task.

    >>> validate_group("image_understanding", "how many?", ["two", "three", None], reference="cats.png")
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: candidate 3 has no answer
    """
    task = parse_task(task)
    check_prompt(task, prompt)
    check_candidates(task, candidates)
    check_reference(task, reference)
    return task


def media_inputs(messages: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The images and videos of a message list, in order (what the processor takes beside the text).

    >>> parts = [{"type": "image", "image": "a"}, {"type": "text", "text": "x"}]
    >>> media_inputs([{"role": "user", "content": parts}])
    (['a'], [])
    """
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


def load_pair_media(
    pair: PreferencePair, root: str | os.PathLike[str] | None, budget: VisionBudget
) -> list[Any]:
    """Loaded media of a pair, in prompt order: ``JudgeRequest.from_pair(pair).load(budget, root).media``."""
    return list(JudgeRequest.from_pair(pair).load(budget, root).media or ())


def pair_messages(
    pair: PreferencePair, media: Sequence[Any], family: str | None = None, video_as: str = "video"
) -> list[dict[str, Any]]:
    """Pairwise chat messages for ``pair`` with already loaded ``media`` (in prompt order)."""
    return JudgeRequest.from_pair(pair).with_media(media).messages(family, video_as)
