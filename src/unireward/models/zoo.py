"""The released UnifiedReward checkpoints: for each hub id, its model family, the protocol (template
family) it answers, and whether it must be converted before it loads.

The one place these facts live: ``unireward judge --model ID`` and ``unireward serve`` pick the
protocol from here when ``--template-family`` is not given, ``unireward zoo`` lists the entries, and
the README's table of released judges is :func:`markdown_table` (a test compares the two).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReleasedJudge:
    """One released checkpoint."""

    #: Hugging Face hub id
    id: str
    #: the release it belongs to (rows of the README table)
    series: str
    #: model family (``unireward.models.get_family``)
    model_family: str
    #: protocol picked when none is given; ``None``: a base model the training recipes start from,
    #: whose own prompts are not shipped
    template_family: str | None
    #: further protocols the checkpoint was released with (the pair-score prompts)
    other_template_families: tuple[str, ...] = ()
    #: ``"llava_qwen"``: a LLaVA-NeXT checkpoint, ``unireward convert-llava`` it once before loading
    convert: str | None = None

    def __post_init__(self) -> None:
        if self.id.count("/") != 1:
            raise ValueError(f"released judge {self.id!r}: a hub id is owner/name")
        if self.convert not in (None, "llava_qwen"):
            raise ValueError(f"released judge {self.id!r}: unknown conversion {self.convert!r}")

    @property
    def template_families(self) -> tuple[str, ...]:
        first = (self.template_family,) if self.template_family else ()
        return first + self.other_template_families


def _series(
    series: str, ids: tuple[str, ...], model_family: str, template_family: str | None, *others: str,
    convert: str | None = None,
) -> list[ReleasedJudge]:  # fmt: skip
    return [ReleasedJudge(f"CodeGoat24/{i}", series, model_family, template_family, others, convert) for i in ids]


_THINK, _V2, _EDIT = "unifiedreward-think", "unifiedreward-2.0", "unifiedreward-edit"

#: every released checkpoint, in the order of the README table
RELEASED_JUDGES: tuple[ReleasedJudge, ...] = tuple(
    _series("UnifiedReward-Think (Qwen2.5-VL)", ("UnifiedReward-Think-qwen-7b",), "qwen2_5_vl", _THINK)
    + _series("UnifiedReward-Think (Qwen3-VL)",
              tuple(f"UnifiedReward-Think-qwen3vl-{s}" for s in ("2b", "4b", "8b", "32b")), "qwen3_vl", _THINK)
    + _series("UnifiedReward-Think (LLaVA-OV, the paper's)", ("UnifiedReward-Think-7b",), "llava_onevision", _THINK,
              convert="llava_qwen")
    + _series("UnifiedReward-2.0 (Qwen2.5-VL)", tuple(f"UnifiedReward-2.0-qwen-{s}" for s in ("3b", "7b", "32b", "72b")),
              "qwen2_5_vl", _V2, "unifiedreward-2.0-pair-score")
    + _series("UnifiedReward-2.0 (Qwen3-VL)", tuple(f"UnifiedReward-2.0-qwen3vl-{s}" for s in ("2b", "4b", "8b", "32b")),
              "qwen3_vl", _V2, "unifiedreward-2.0-pair-score")
    + _series("UnifiedReward-2.0 (Qwen3.5)", ("UnifiedReward-2.0-qwen35-9b",), "qwen3_5", _V2,
              "unifiedreward-2.0-pair-score")
    + _series("UnifiedReward-Edit (Qwen2.5-VL)", tuple(f"UnifiedReward-Edit-qwen-{s}" for s in ("3b", "7b", "32b", "72b")),
              "qwen2_5_vl", _EDIT, "unifiedreward-edit-pair-score")
    + _series("UnifiedReward-Edit (Qwen3-VL)", ("UnifiedReward-Edit-qwen3vl-8b",), "qwen3_vl", _EDIT,
              "unifiedreward-edit-pair-score")
    + _series("UnifiedReward-Flex (Qwen3-VL)", ("UnifiedReward-Flex-qwen3vl-8b",), "qwen3_vl", "unifiedreward-flex")
    + _series("UnifiedReward (Qwen2.5-VL), base of the Qwen recipe", ("UnifiedReward-qwen-7b",), "qwen2_5_vl", None)
    + _series("UnifiedReward (LLaVA-OV), base of the paper's recipe", ("UnifiedReward-7b",), "llava_onevision", None,
              convert="llava_qwen")
)  # fmt: skip

_BY_ID = {j.id.lower(): j for j in RELEASED_JUDGES}
_BY_NAME = {j.id.split("/")[1].lower(): j for j in RELEASED_JUDGES}


def find_released(model: str | os.PathLike[str]) -> ReleasedJudge | None:
    """The released checkpoint ``model`` names: its hub id (any case), a hub-cache folder of it
    (``.../models--Owner--Name/snapshots/REV``) or a folder named after it; else ``None``.

    >>> find_released("CodeGoat24/UnifiedReward-2.0-qwen-7b").template_family
    'unifiedreward-2.0'
    >>> find_released("/hf/hub/models--CodeGoat24--UnifiedReward-Edit-qwen-7b/snapshots/0a1b").series
    'UnifiedReward-Edit (Qwen2.5-VL)'
    >>> find_released("runs/grpo/final") is None
    True
    """
    text = str(model).rstrip("/\\")
    if text.lower() in _BY_ID:
        return _BY_ID[text.lower()]
    parts = Path(text).parts
    for part in reversed(parts):
        if part.startswith("models--") and part.count("--") >= 2:
            owner_name = part[len("models--"):].replace("--", "/", 1).lower()
            return _BY_ID.get(owner_name)
    return _BY_NAME.get(parts[-1].lower()) if parts else None


def picked_template_family(model: str | os.PathLike[str], mode: str = "pairwise") -> str | None:
    """The protocol a released checkpoint answers in ``mode`` (pairwise or pointwise), ``None`` for
    any other model or a mode the checkpoint's protocol lacks (the toolkit's default applies then).

    >>> picked_template_family("CodeGoat24/UnifiedReward-2.0-qwen-7b", "pointwise")
    'unifiedreward-2.0'
    >>> picked_template_family("CodeGoat24/UnifiedReward-Think-qwen-7b", "pointwise") is None
    True
    """
    from unireward.protocol.templates import family_modes

    judge = find_released(model)
    if judge is None or judge.template_family is None or mode not in family_modes(judge.template_family):
        return None
    return judge.template_family


def protocol_options(model: str | os.PathLike[str]) -> dict[str, str]:
    """:class:`~unireward.judge.options.JudgeOptions` fields that make a judge of ``model`` use its
    released protocol (none for other models), for callers that did not choose one.

    >>> protocol_options("CodeGoat24/UnifiedReward-Edit-qwen-7b")
    {'template_family': 'unifiedreward-edit', 'pointwise_family': 'unifiedreward-edit'}
    >>> protocol_options("CodeGoat24/UnifiedReward-Flex-qwen3vl-8b"), protocol_options("my-judge")
    ({'template_family': 'unifiedreward-flex'}, {})
    """
    picked = {"template_family": picked_template_family(model, "pairwise"),
              "pointwise_family": picked_template_family(model, "pointwise")}  # fmt: skip
    return {k: v for k, v in picked.items() if v is not None}


def _checkpoint_list(ids: list[str]) -> str:
    """The ids of one series, siblings as their differing suffix: ```A-7b`, `-32b```."""
    first, rest = ids[0], ids[1:]
    stem = first.rsplit("-", 1)[0]
    shown = [f"`{first}`"] + [f"`-{i.rsplit('-', 1)[1]}`" if i.rsplit("-", 1)[0] == stem else f"`{i}`" for i in rest]
    return ", ".join(shown)


def markdown_table() -> str:
    """The README's table of released judges, one row per series.

    >>> markdown_table().splitlines()[0]
    '| judge | checkpoints | model family | protocols (first: picked by itself) | loading |'
    """
    lines = [
        "| judge | checkpoints | model family | protocols (first: picked by itself) | loading |",
        "|---|---|---|---|---|",
    ]
    series: dict[str, list[ReleasedJudge]] = {}
    for j in RELEASED_JUDGES:
        series.setdefault(j.series, []).append(j)
    for name, judges in series.items():
        j = judges[0]
        protocols = ", ".join(f"`{f}`" for f in j.template_families) or "none shipped (a training base)"
        loading = "direct" if j.convert is None else f"convert once: `unireward convert-llava {j.id} DIR`"
        ckpts = _checkpoint_list([x.id for x in judges])
        lines.append(f"| {name} | {ckpts} | `{j.model_family}` | {protocols} | {loading} |")
    return "\n".join(lines)


def as_json() -> list[dict[str, Any]]:
    """Every entry as a JSON object (``unireward zoo --json``)."""
    return [{**asdict(j), "other_template_families": list(j.other_template_families)} for j in RELEASED_JUDGES]
