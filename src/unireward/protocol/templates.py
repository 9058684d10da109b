"""The one prompt registry: template families stored as text files, rendered to chat messages.

A family is a folder with one ``<task>.txt`` per task it covers, registered under a name and a mode
(pairwise or pointwise). One name may hold both modes (``unifiedreward-2.0``, ``unifiedreward-edit``):
``get_family(name, mode)`` picks the variant. Each variant also says which verdict its judge writes
(:data:`VERDICTS`), so the one parser (:mod:`unireward.protocol.parser`) knows how to read it.

Placeholders: ``{prompt}`` (caption of a generation task, instruction of an edit), ``{Query}``
(question of an understanding task), ``{R1}``/``{R2}`` (answers). Media parts always come before the
text in the single user turn, with no system prompt, which is how the released UnifiedReward
checkpoints were trained; an edit sends its source image first, then the edited image(s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from unireward.protocol.tasks import Mode, Task

_PLACEHOLDER = re.compile(r"\{(prompt|Query|R1|R2)\}")

#: what a family's judge writes, and so how the parser reads it:
#: ``think``: ``<think>…</think><answer>Image 1 is better</answer>`` (pointwise: a 1-10 score in the answer);
#: ``rank``: a free-text verdict, "Image 1 is better" / "Image 2 is better" / "Both images are equally good";
#: ``pair_scores``: per dimension "Image 1: x" / "Image 2: y", each pair summing to 1;
#: ``point_scores``: "Alignment Score (1-5): x" lines;
#: ``edit_pair_scores``: one signed score per edited image;
#: ``edit_point_scores``: ``"score" : [a, b]``, 0-25 each;
#: ``flex``: one JSON object of categories, sub-dimensions (``score_1 + score_2 = 10``) and a ``winner``.
VERDICTS = ("think", "rank", "pair_scores", "point_scores", "edit_pair_scores", "edit_point_scores", "flex")


@dataclass(frozen=True)
class TemplateFamily:
    name: str
    mode: Mode
    directory: Path
    description: str = ""
    #: "first" (the official layout: media, then text) or "last" (text, then media)
    media_position: str = "first"
    verdict: str = "think"
    #: per task, the dimensions the verdict must name (score verdicts; strict parsing checks them)
    dimensions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.media_position not in ("first", "last"):
            raise ValueError(f"media_position must be 'first' or 'last', got {self.media_position!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def text(self, task: Task | str) -> str:
        task = Task.parse(task)
        path = self.directory / f"{task.value}.txt"
        if not path.is_file():
            covered = sorted(p.stem for p in self.directory.glob("*.txt"))
            raise FileNotFoundError(
                f"template family {self.name!r} ({self.mode.value}) has no prompt for {task.value}; it covers {covered}"
            )
        return _read(path)

    def tasks(self) -> list[str]:
        """The tasks this family has a prompt for."""
        return sorted(p.stem for p in self.directory.glob("*.txt"))


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _builtin(folder: str) -> Path:
    return Path(str(resources.files("unireward.protocol") / "templates" / folder))


_REGISTRY: dict[str, dict[Mode, TemplateFamily]] = {}


def register_family(
    name: str, directory: str | Path, mode: Mode | str, description: str = "", media_position: str = "first",
    verdict: str = "think", dimensions: dict[str, tuple[str, ...]] | None = None,
) -> TemplateFamily:
    """Add a family (e.g. your own prompts) so every stage can refer to it by name; registering a
    second mode under a name adds that variant."""
    family = TemplateFamily(name=name, mode=Mode(mode), directory=Path(directory), description=description,
                            media_position=media_position, verdict=verdict, dimensions=dict(dimensions or {}))  # fmt: skip
    _REGISTRY.setdefault(name, {})[family.mode] = family
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
_ACS = ("Alignment", "Coherence", "Style")
register_family(
    "unifiedreward-2.0", _builtin("unifiedreward_2_0/pair_rank"), Mode.PAIRWISE,
    "Official UnifiedReward-2.0 pair-rank prompts (MIT): a free-text verdict, ties allowed.", verdict="rank",
)  # fmt: skip
register_family(
    "unifiedreward-2.0", _builtin("unifiedreward_2_0/pointwise"), Mode.POINTWISE,
    "Official UnifiedReward-2.0 pointwise prompts (MIT): Alignment/Coherence/Style (images) or "
    "Alignment/Physics/Style (video), 1-5 each.", verdict="point_scores",
    dimensions={"image_generation": _ACS, "video_generation": ("Alignment", "Physics", "Style")},
)  # fmt: skip
register_family(
    "unifiedreward-2.0-pair-score", _builtin("unifiedreward_2_0/pair_score"), Mode.PAIRWISE,
    "Official UnifiedReward-2.0 pair-score prompts (MIT): Alignment/Coherence/Style, each pair sums to 1.",
    verdict="pair_scores", dimensions={"image_generation": _ACS, "video_generation": _ACS},
)  # fmt: skip
register_family(
    "unifiedreward-edit", _builtin("unifiedreward_edit/pair_rank"), Mode.PAIRWISE,
    "Official UnifiedReward-Edit pair-rank prompt (MIT): source image, two edits, the instruction.", verdict="rank",
)  # fmt: skip
register_family(
    "unifiedreward-edit", _builtin("unifiedreward_edit/pointwise"), Mode.POINTWISE,
    "Official UnifiedReward-Edit pointwise prompts (MIT): image_editing = instruction following "
    "(source, edit; editing success and overediting, 0-25), image_generation = quality of one image "
    "(naturalness and artifacts, 0-25).", verdict="edit_point_scores",
    dimensions={"image_editing": ("editing success", "overediting"), "image_generation": ("naturalness", "artifacts")},
)  # fmt: skip
register_family(
    "unifiedreward-edit-pair-score", _builtin("unifiedreward_edit/pair_score"), Mode.PAIRWISE,
    "Official UnifiedReward-Edit pair-score prompt (MIT): one signed score per edited image.",
    verdict="edit_pair_scores", dimensions={"image_editing": ("score",)},
)  # fmt: skip
register_family(
    "unifiedreward-flex", _builtin("unifiedreward_flex"), Mode.PAIRWISE,
    "Official UnifiedReward-Flex prompts (MIT): a JSON verdict with the judge's own sub-dimensions.", verdict="flex",
)  # fmt: skip

DEFAULT_FAMILY = {Mode.PAIRWISE: "unifiedreward-think", Mode.POINTWISE: "unireward-pointwise"}


def get_family(name: str | None = None, mode: Mode | str = Mode.PAIRWISE) -> TemplateFamily:
    """Look up a family; ``None`` gives the default family of ``mode``. A name registered in one mode
    only gives that variant whatever ``mode`` says (``unireward-pointwise`` is pointwise).

    >>> get_family().name
    'unifiedreward-think'
    >>> get_family(mode="pointwise").mode.value
    'pointwise'
    >>> get_family("unifiedreward-edit", "pointwise").verdict
    'edit_point_scores'
    """
    mode = Mode(mode)
    key = name or DEFAULT_FAMILY[mode]
    if key not in _REGISTRY:
        raise KeyError(f"unknown template family {key!r}; registered: {sorted(_REGISTRY)}")
    variants = _REGISTRY[key]
    if mode in variants:
        return variants[mode]
    if len(variants) == 1:
        return next(iter(variants.values()))
    raise KeyError(f"template family {key!r} has no {mode.value} variant")  # pragma: no cover (both modes)


def list_families() -> list[str]:
    return sorted(_REGISTRY)


def family_modes(name: str) -> list[str]:
    """The modes a family has prompts for.

    >>> family_modes("unifiedreward-edit"), family_modes("unifiedreward-think")
    (['pairwise', 'pointwise'], ['pairwise'])
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown template family {name!r}; registered: {sorted(_REGISTRY)}")
    return sorted(m.value for m in _REGISTRY[name])


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
    if task.is_generation:  # captions and edit instructions
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


def media_count(task: Task | str, mode: Mode | str) -> int:
    """Media items a request carries: candidates, plus the source image of an edit.

    >>> media_count("image_editing", "pairwise"), media_count("image_understanding", "pairwise")
    (3, 1)
    """
    task, mode = Task.parse(task), Mode(mode)
    n = (2 if mode is Mode.PAIRWISE else 1) if task.is_generation else 0
    return n + (1 if task.uses_reference else 0)


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

    ``media`` holds, in order, the candidate media (generation tasks), the reference media
    (understanding tasks), or the source image then the edited image(s) (image editing). Each item is whatever the processor accepts (path, PIL image, or for
    video a list of frames). ``video_as="frames"`` turns every video into consecutive image parts,
    the layout of the official Qwen3-VL scripts and the one TRL trains on (it drops video inputs).

    >>> msgs = render_messages("image_generation", "a red cube", ["a.png", "b.png"])
    >>> [p["type"] for p in msgs[0]["content"]]
    ['image', 'image', 'text']
    """
    task = Task.parse(task)
    fam = get_family(family, mode)
    fam_mode = fam.mode
    need = media_count(task, fam_mode)
    if len(media) != need:
        what = {Task.IMAGE_EDITING: "source + edited"}.get(task, "candidate" if task.is_generation else "reference")
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
