"""One judgment requested from the page (or the ``judge`` API endpoint), run on the shared judge.

The app holds one :class:`~unireward.judge.Judge` (one loaded model or one endpoint client); each
request gets its own options (task settings, swap, samples) over that judge's backend, so
concurrent users never change each other's settings. The result is the JSON ``unireward judge``
prints: one row for a pair, and in pointwise mode one ``unireward judge --pointwise`` row per
candidate given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from unireward.judge.cli import result_row
from unireward.judge.judge import Judge
from unireward.protocol.tasks import Mode, Task
from unireward.protocol.templates import family_modes, get_family


@dataclass
class JudgeRequest:
    """What the form holds, validated on construction (messages name the field to fix). A reference
    the task does not use is ignored: the page hides, but keeps, the fields of other tasks."""

    task: Task
    prompt: str
    candidates: tuple[str | None, str | None]
    reference: str | None = None
    pointwise: bool = False
    template_family: str | None = None
    swap: bool = False
    num_samples: int = 1
    temperature: float = 0.0
    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        self.task = Task.parse(self.task)
        self.prompt = (self.prompt or "").strip()
        self.candidates = tuple(c if c not in ("", None) else None for c in self.candidates)  # type: ignore[assignment]
        what = "caption" if self.task.is_generation else "question"
        if not self.prompt:
            raise ValueError(f"the {what} is empty")
        noun = "file" if self.task.is_generation else "answer"
        # Pointwise scores candidate 1, and candidate 2 when given (the rows keep that order).
        for i, c in enumerate(self.candidates[: 1 if self.pointwise else 2], 1):
            if c is None:
                raise ValueError(f"candidate {i} has no {noun}")
        if not self.task.uses_reference:
            self.reference = None  # the form keeps a hidden reference when the task changes
        elif not self.reference:
            what = "the source image" if self.task.is_generation else f"a reference {'video' if self.task.is_video else 'image'}"
            raise ValueError(f"{self.task.value} needs {what}")
        if self.template_family:
            mode = Mode.POINTWISE if self.pointwise else Mode.PAIRWISE
            if mode.value not in family_modes(self.template_family):
                raise ValueError(f"template family {self.template_family!r} has no {mode.value} prompts")
            covered = get_family(self.template_family, mode).tasks()
            if self.task.value not in covered:
                raise ValueError(f"template family {self.template_family!r} ({mode.value}) has no prompt for "
                                 f"{self.task.value}; it covers {', '.join(covered)}")  # fmt: skip
        if not 1 <= int(self.num_samples) <= 64:
            raise ValueError(f"samples must be between 1 and 64, got {self.num_samples}")
        self.num_samples = int(self.num_samples)
        if self.num_samples > 1 and self.temperature <= 0:
            raise ValueError("several samples need a temperature above 0 (greedy samples are identical)")


def run_request(judge: Judge, req: JudgeRequest) -> dict[str, Any] | list[dict[str, Any]]:
    """Judge (or score) with per-request options over the shared backend; the CLI's JSON."""
    family = req.template_family or None
    opts = replace(
        judge.options, swap=req.swap, num_samples=req.num_samples, temperature=float(req.temperature),
        max_new_tokens=int(req.max_new_tokens or judge.options.max_new_tokens),
        template_family=judge.options.template_family if req.pointwise else family,
        pointwise_family=family if req.pointwise else judge.options.pointwise_family,
    )  # fmt: skip
    per_request = Judge(judge.backend, opts, budget=judge.budget)
    if req.pointwise:
        return [
            result_row(per_request.score(req.task, req.prompt, c, reference=req.reference))
            for c in req.candidates
            if c is not None
        ]
    a, b = req.candidates
    return result_row(per_request.compare(req.task, req.prompt, a, b, reference=req.reference))
