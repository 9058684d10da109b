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
from unireward.request import JudgeRequest as TaskRequest  # this module's JudgeRequest is the form's old name
from unireward.request import check_samples


@dataclass
class FormRequest:
    """What the form holds, validated on construction by the rules every judgment request follows
    (one :class:`unireward.request.JudgeRequest` per judgment; messages name the field to fix). A
    reference the task does not use is ignored: the page hides, but keeps, the fields of other tasks."""

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
        given = tuple(c if c not in ("", None) else None for c in self.candidates)
        self.candidates = given  # type: ignore[assignment]
        if not self.task.uses_reference:
            self.reference = None  # the form keeps a hidden reference when the task changes
        self.template_family = self.template_family or None
        for request in self.requests():
            request.validate()
        if not 1 <= int(self.num_samples) <= 64:
            raise ValueError(f"samples must be between 1 and 64, got {self.num_samples}")
        self.num_samples = int(self.num_samples)
        check_samples(self.num_samples, float(self.temperature))

    def requests(self) -> list[TaskRequest]:
        """The judgment requests of the form: the pair, or pointwise candidate 1 and candidate 2 when
        given (the rows keep that order)."""
        task, prompt, ref, family = self.task, self.prompt, self.reference, self.template_family
        if not self.pointwise:
            return [TaskRequest.from_loose(task, prompt, self.candidates, ref, template_family=family)]
        first, second = self.candidates
        given = [first] if second is None else [first, second]
        return [TaskRequest.from_loose(task, prompt, (c,), ref, Mode.POINTWISE, template_family=family)
                for c in given]  # fmt: skip


JudgeRequest = FormRequest  # the form's old name


def run_request(judge: Judge, req: FormRequest) -> dict[str, Any] | list[dict[str, Any]]:
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
