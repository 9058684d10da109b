"""One-click examples built from the project's own synthetic media (no download, no licence question).

Each example is one synthetic pair per task: coloured shapes, real PNG and mp4 files written by
:mod:`unireward.data.synthetic`. The caption or question decides which candidate is right, so a
working judge (or the scripted teacher) can be checked at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unireward.data.synthetic import SyntheticConfig, generate
from unireward.protocol.tasks import Task

#: the tasks the synthetic world has pairs for
EXAMPLE_TASKS = (Task.IMAGE_GENERATION, Task.VIDEO_GENERATION, Task.IMAGE_UNDERSTANDING, Task.VIDEO_UNDERSTANDING)


@dataclass(frozen=True)
class Example:
    """One row of the examples table, in the order of the form's inputs."""

    task: str
    prompt: str
    candidate_1: str | None
    candidate_2: str | None
    answer_1: str | None
    answer_2: str | None
    reference: str | None
    label: int

    def row(self) -> list[str | None]:
        return [self.task, self.prompt, self.candidate_1, self.candidate_2, self.answer_1, self.answer_2, self.reference]


def build_examples(out_dir: str | Path, size: int = 112, frames: int = 8, seed: int = 3) -> list[Example]:
    """Write one synthetic pair per task under ``out_dir`` and return them as examples.

    ``size`` is the side of the square images and video frames; videos have ``frames`` frames at 4 fps.
    """
    root = Path(out_dir)
    cfg = SyntheticConfig(n_per_task={t.value: 1 for t in EXAMPLE_TASKS}, size=size, frames=frames, fps=4, seed=seed)
    pairs = generate(root, cfg, split="examples")
    by_task = {p.task: p for p in pairs}
    out = []
    for task in EXAMPLE_TASKS:
        p = by_task[task]
        if task.is_generation:
            c1, c2 = (str(root / str(c)) for c in p.candidates)
            out.append(Example(task.value, p.prompt, c1, c2, None, None, None, int(p.label)))
        else:
            a1, a2 = (str(c) for c in p.candidates)
            out.append(Example(task.value, p.prompt, None, None, a1, a2, str(root / str(p.reference)), int(p.label)))
    return out
