"""The rules a judgment request must satisfy, each written once (pure functions, no I/O).

:class:`~unireward.request.JudgeRequest` applies them; the server, the app and the CLI reach them
through it, so one input gets one message everywhere. Every failure is a
:class:`~unireward.request.RequestError` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unireward.protocol.tasks import Mode, Task
from unireward.protocol.templates import family_modes, get_family
from unireward.request.errors import RequestError

#: candidates one request holds in each mode
CANDIDATES = {Mode.PAIRWISE: 2, Mode.POINTWISE: 1}


def parse_task(value: Any) -> Task:
    """The task, or an error naming the field.

    >>> parse_task("image-editing").value
    'image_editing'
    >>> parse_task("painting")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: unknown task 'painting'; expected one of: image_generation, ...
    """
    try:
        return Task.parse(value)
    except ValueError as e:
        raise RequestError(str(e), "task") from None


def prompt_noun(task: Task) -> str:
    """What the prompt of ``task`` is called.

    >>> [prompt_noun(t) for t in (Task.IMAGE_GENERATION, Task.IMAGE_EDITING, Task.VIDEO_UNDERSTANDING)]
    ['caption', 'instruction', 'question']
    """
    if task is Task.IMAGE_EDITING:
        return "instruction"
    return "caption" if task.is_generation else "question"


def check_prompt(task: Task, prompt: Any) -> None:
    """A caption, instruction or question: a string with some text.

    >>> check_prompt(Task.IMAGE_GENERATION, "  ")
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: the caption is empty
    """
    if not isinstance(prompt, str):
        raise RequestError(f"prompt must be a string, got {type(prompt).__name__}", "prompt")
    if not prompt.strip():
        raise RequestError(f"the {prompt_noun(task)} is empty", "prompt")


def check_count(mode: Mode, candidates: Sequence[Any]) -> None:
    """Two candidates for a pairwise request, one for a pointwise one.

    >>> check_count(Mode.PAIRWISE, ["a.png"])
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: exactly two candidates are required (pairwise), got 1
    """
    want = CANDIDATES[mode]
    if len(candidates) != want:
        words = {1: "one candidate is", 2: "two candidates are"}[want]
        raise RequestError(f"exactly {words} required ({mode.value}), got {len(candidates)}", "candidates")


def check_candidates(task: Task, candidates: Sequence[Any], offset: int = 0) -> None:
    """Each candidate is given; an understanding task's candidates are answer strings (an empty answer
    is an answer: a policy may write one). ``offset`` numbers candidates of a larger group.

    >>> check_candidates(Task.IMAGE_UNDERSTANDING, ["two", 2])
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: answers must be strings: candidate 2 is int
    >>> check_candidates(Task.VIDEO_GENERATION, ["a.mp4", ""])
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: candidate 2 has no file
    """
    for i, c in enumerate(candidates, offset):
        field = f"candidates[{i}]"
        if task.is_generation:
            if c is None or (isinstance(c, str) and not c):
                raise RequestError(f"candidate {i + 1} has no file", field)
        elif c is None:
            raise RequestError(f"candidate {i + 1} has no answer", field)
        elif not isinstance(c, str):
            raise RequestError(f"answers must be strings: candidate {i + 1} is {type(c).__name__}", field)


def check_reference(task: Task, reference: Any) -> None:
    """A reference is required where the task uses one and refused elsewhere, never silently dropped.

    >>> check_reference(Task.IMAGE_GENERATION, "src.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: image_generation takes no reference (a source image belongs to ...)
    >>> check_reference(Task.VIDEO_UNDERSTANDING, None)
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: video_understanding needs a reference video (the video asked about)
    """
    if reference is not None and not task.uses_reference:
        raise RequestError(
            f"{task.value} takes no reference (a source image belongs to the image_editing task)", "reference"
        )
    if task.uses_reference and (reference is None or (isinstance(reference, str) and not reference)):
        if task is Task.IMAGE_EDITING:
            what = "the source image"
        else:
            kind = "video" if task.is_video else "image"
            what = f"a reference {kind} (the {kind} asked about)"
        raise RequestError(f"{task.value} needs {what}", "reference")


def check_family(name: str | None, mode: Mode, task: Task) -> None:
    """A named template family has prompts for the mode and the task (``None``: the caller's default,
    checked where it is decided).

    >>> try:  # doctest: +NORMALIZE_WHITESPACE
    ...     check_family("unifiedreward-think", Mode.PAIRWISE, Task.IMAGE_EDITING)
    ... except RequestError as e:
    ...     print(e.field, "|", e)
    template_family |
    template family 'unifiedreward-think' (pairwise) has no prompt for image_editing; it covers
    image_generation, image_understanding, video_generation, video_understanding
    """
    if name is None:
        return
    if not isinstance(name, str):
        raise RequestError("template_family must be a string", "template_family")
    try:
        modes = family_modes(name)
    except KeyError as e:
        raise RequestError(e.args[0], "template_family") from None
    if mode.value not in modes:
        raise RequestError(f"template family {name!r} has no {mode.value} prompts", "template_family")
    covered = get_family(name, mode).tasks()
    if task.value not in covered:
        raise RequestError(
            f"template family {name!r} ({mode.value}) has no prompt for {task.value}; "
            f"it covers {', '.join(covered)}",
            "template_family",
        )


def check_samples(num_samples: int, temperature: float) -> None:
    """Several samples need sampling: greedy samples would all be the same text.

    >>> check_samples(3, 0.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unireward.request.errors.RequestError: several samples need a temperature above 0 (...)
    """
    if num_samples > 1 and temperature <= 0:
        why = "greedy samples are identical"
        raise RequestError(f"several samples need a temperature above 0 ({why})", "temperature")
