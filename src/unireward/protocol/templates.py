"""The one prompt registry: template families stored as text files, rendered to chat messages.

A family is a folder with one ``<task>.txt`` per task. Placeholders: ``{prompt}`` (caption of a
generation task), ``{Query}`` (question of an understanding task), ``{R1}``/``{R2}`` (answers).
Media parts always come before the text in the single user turn, with no system prompt, which is
how the released UnifiedReward-Think checkpoints were trained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from unireward.protocol.tasks import Mode, Task

_PLACEHOLDER = re.compile(r"\{(prompt|Query|R1|R2)\}")


@dataclass(frozen=True)
class TemplateFamily:
    name: str
    mode: Mode
    directory: Path
    description: str = ""
    #: "first" (the official layout: media, then text) or "last" (text, then media)
    media_position: str = "first"

    def __post_init__(self) -> None:
        if self.media_position not in ("first", "last"):
            raise ValueError(f"media_position must be 'first' or 'last', got {self.media_position!r}")

    def text(self, task: Task | str) -> str:
        task = Task.parse(task)
        path = self.directory / f"{task.value}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"template family {self.name!r} has no template for {task.value} ({path})")
        return _read(path)


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _builtin(folder: str) -> Path:
    return Path(str(resources.files("unireward.protocol") / "templates" / folder))


_REGISTRY: dict[str, TemplateFamily] = {}


def register_family(
    name: str, directory: str | Path, mode: Mode | str, description: str = "", media_position: str = "first"
) -> TemplateFamily:
    """Add a family (e.g. your own prompts) so every stage can refer to it by name."""
    family = TemplateFamily(name=name, mode=Mode(mode), directory=Path(directory), description=description,
                            media_position=media_position)  # fmt: skip
    _REGISTRY[name] = family
    return family


register_family(
    "unifiedreward-think",
    _builtin("unifiedreward_think"),
    Mode.PAIRWISE,
    "Official UnifiedReward-Think prompts (MIT), used by the released checkpoints.",
)
register_family(
    "unireward-pointwise",
    _builtin("unireward_pointwise"),
    Mode.POINTWISE,
    "Our pointwise CoT prompts: per-dimension 1-10 scores, overall score in <answer>.",
)

register_family(
    "unireward-compact",
    _builtin("unireward_compact"),
    Mode.PAIRWISE,
    "Short pairwise prompts with the same output contract, for small models and CPU runs. Media come "
    "after the text, so each candidate sits a few tokens from where the judgment starts: a two-layer "
    "model binds 'Image 1' to its pixels by short relative distance instead of resolving a few "
    "positions at long range.",
    media_position="last",
)

DEFAULT_FAMILY = {Mode.PAIRWISE: "unifiedreward-think", Mode.POINTWISE: "unireward-pointwise"}


def get_family(name: str | None = None, mode: Mode | str = Mode.PAIRWISE) -> TemplateFamily:
    """Look up a family; ``None`` gives the default family of ``mode``.

    >>> get_family().name
    'unifiedreward-think'
    >>> get_family(mode="pointwise").mode.value
    'pointwise'
    """
    key = name or DEFAULT_FAMILY[Mode(mode)]
    if key not in _REGISTRY:
        raise KeyError(f"unknown template family {key!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[key]


def list_families() -> list[str]:
    return sorted(_REGISTRY)


def fill(template: str, values: dict[str, str]) -> str:
    """Substitute placeholders in one pass, so text inside a caption is never re-substituted.

    >>> fill("Q: {Query} A: {R1}", {"Query": "what is {R1}?", "R1": "x"})
    'Q: what is {R1}? A: x'
    """

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise KeyError(f"template needs {{{key}}} but no value was given")
        return values[key]

    return _PLACEHOLDER.sub(sub, template)


def render_text(
    task: Task | str,
    prompt: str,
    answers: tuple[str, ...] = (),
    family: str | None = None,
    mode: Mode | str = Mode.PAIRWISE,
) -> str:
    """The user-turn text of a judgment request.

    >>> text = render_text("image_understanding", "How many cats?", ("Two.", "Three."))
    >>> text.endswith("Question: [How many cats?]\\nAnswer 1: [Two.]\\nAnswer 2: [Three.]")
    True
    """
    task = Task.parse(task)
    fam = get_family(family, mode)
    values: dict[str, str] = {}
    if task.is_generation:
        values["prompt"] = prompt
    else:
        values["Query"] = prompt
        need = 2 if fam.mode is Mode.PAIRWISE else 1
        if len(answers) != need:
            raise ValueError(f"{task.value} ({fam.mode.value}) needs {need} answer(s), got {len(answers)}")
        values["R1"] = answers[0]
        if need == 2:
            values["R2"] = answers[1]
    return fill(fam.text(task), values)


def media_part(kind: str, value: Any) -> dict[str, Any]:
    """One content part in the shape transformers chat templates and processors expect."""
    if kind not in ("image", "video"):
        raise ValueError(f"media kind must be image or video, got {kind!r}")
    return {"type": kind, kind: value}


def render_messages(
    task: Task | str,
    prompt: str,
    media: list[Any] | tuple[Any, ...] = (),
    answers: tuple[str, ...] = (),
    family: str | None = None,
    mode: Mode | str = Mode.PAIRWISE,
    video_as: str = "video",
) -> list[dict[str, Any]]:
    """Chat messages for one request: media parts first, then the filled template (or the other way
    round for a family with ``media_position="last"``).

    ``media`` holds, in order, the candidate media (generation tasks) or the reference media
    (understanding tasks). Each item is whatever the processor accepts (path, PIL image, or for
    video a list of frames). ``video_as="frames"`` turns every video into consecutive image parts,
    the layout of the official Qwen3-VL scripts and the one TRL trains on (it drops video inputs).

    >>> msgs = render_messages("image_generation", "a red cube", ["a.png", "b.png"])
    >>> [p["type"] for p in msgs[0]["content"]]
    ['image', 'image', 'text']
    """
    task = Task.parse(task)
    fam = get_family(family, mode)
    fam_mode = fam.mode
    need = 2 if task.is_generation and fam_mode is Mode.PAIRWISE else 1
    if len(media) != need:
        what = "candidate" if task.is_generation else "reference"
        raise ValueError(f"{task.value} ({fam_mode.value}) needs {need} {what} media item(s), got {len(media)}")
    kind = "video" if task.is_video else "image"
    parts: list[dict[str, Any]] = []
    for item in media:
        if kind == "video" and video_as == "frames":
            parts.extend(media_part("image", frame) for frame in item)
        else:
            parts.append(media_part(kind, item))
    text = {"type": "text", "text": render_text(task, prompt, tuple(answers), family, mode)}
    parts = parts + [text] if fam.media_position == "first" else [text, *parts]
    return [{"role": "user", "content": parts}]
