"""One-click examples built from the project's own synthetic media (no download, no licence question).

Each example is one synthetic pair per task: coloured shapes, real PNG and mp4 files written by
:mod:`unireward.demo.synthetic` (and, for editing, a source image and two edits drawn the same way).
The caption, question or instruction decides which candidate is right, so a working judge (or the
scripted teacher, for the four tasks it knows) can be checked at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unireward.demo.synthetic import SyntheticConfig, draw_shape, generate
from unireward.protocol.tasks import THINK_TASKS, Task


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


def build_examples(out_dir: str | Path, size: int = 112, frames: int = 8, seed: int = 5) -> list[Example]:
    """Write one synthetic pair per task under ``out_dir`` and return them as examples.

    ``size`` is the side of the square images and video frames; videos have ``frames`` frames at 4 fps.
    """
    root = Path(out_dir)
    cfg = SyntheticConfig(n_per_task={t.value: 1 for t in THINK_TASKS}, size=size, frames=frames, fps=4, seed=seed)
    pairs = generate(root, cfg, split="examples")
    by_task = {p.task: p for p in pairs}
    out = []
    for task in THINK_TASKS:
        p = by_task[task]
        if task.is_generation:
            c1, c2 = (str(root / str(c)) for c in p.candidates)
            out.append(Example(task.value, p.prompt, c1, c2, None, None, None, int(p.label)))
        else:
            a1, a2 = (str(c) for c in p.candidates)
            out.append(Example(task.value, p.prompt, None, None, a1, a2, str(root / str(p.reference)), int(p.label)))
    out.append(_editing_example(root / "media", size))
    return out


def _editing_example(folder: Path, size: int) -> Example:
    """A red star to be turned blue: edit 1 turns it green (wrong), edit 2 blue (right)."""
    paths = {}
    for name, colour in (("source", "red"), ("edit-green", "green"), ("edit-blue", "blue")):
        paths[name] = folder / f"examples-image_editing-{name}.png"
        draw_shape("star", colour, size).save(paths[name])
    return Example(Task.IMAGE_EDITING.value, "Make the star blue.", str(paths["edit-green"]), str(paths["edit-blue"]),
                   None, None, str(paths["source"]), 2)  # fmt: skip
