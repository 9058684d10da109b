"""The canonical preference pair every stage reads and writes (one JSON object per line).

A pair is a caption (generation) or question (understanding), two candidates and a human label.
Generation tasks: candidates are media paths (an image, a video, or a list of frame images).
Understanding tasks: candidates are answer strings and ``reference`` is the image or video.
Relative media paths are resolved against a media root by the stage that loads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from unireward.protocol.tasks import Task, answer_label

log = logging.getLogger(__name__)

Label = Literal[1, 2, "tie"]
MediaRef = str | list[str]
_FIELDS = ("id", "task", "prompt", "candidates", "label", "reference", "source", "meta")


class SchemaError(ValueError):
    """A row that does not fit the schema; the message names the row and the field."""

    def __init__(self, message: str, row: int | str | None = None, field: str | None = None):
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.message, self.row, self.field = message, row, field


class DuplicateIdError(SchemaError):
    """A pair id seen before in a file whose results are keyed by id (the input, not one line, is wrong)."""


def _check_media(value: Any, fld: str, row: Any) -> MediaRef:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise SchemaError(f"expected a media path or a non-empty list of frame paths, got {value!r:.80}", row, fld)


def normalize_label(value: Any, row: Any = None) -> Label:
    """Map the usual spellings to 1, 2 or "tie".

    >>> [normalize_label(v) for v in (1, "2", "A", "b", "same", "tie", "left", "Image 2 is better")]
    [1, 2, 1, 2, 'tie', 'tie', 1, 2]
    """
    if isinstance(value, bool):
        raise SchemaError(f"label must be 1, 2 or 'tie', got {value!r}", row, "label")
    if isinstance(value, (int, float)) and value in (1, 2):
        return int(value)  # type: ignore[return-value]
    text = str(value).strip().lower()
    table = {
        "1": 1, "2": 2, "a": 1, "b": 2, "left": 1, "right": 2, "leftvote": 1, "rightvote": 2,
        "tie": "tie", "same": "tie", "equal": "tie", "tievote": "tie", "bothbad_vote": "tie",
    }  # fmt: skip
    if text in table:
        return table[text]  # type: ignore[return-value]
    for w in (1, 2):
        if text.endswith(f"{w} is better"):
            return w  # type: ignore[return-value]
    raise SchemaError(f"label must be 1, 2 or 'tie', got {value!r}", row, "label")


@dataclass
class PreferencePair:
    id: str
    task: Task
    prompt: str
    candidates: tuple[MediaRef, MediaRef]
    label: Label
    reference: MediaRef | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, row: int | str | None = None) -> None:
        row = self.id if row is None and getattr(self, "id", None) else row
        if not isinstance(self.id, str) or not self.id:
            raise SchemaError("id must be a non-empty string", row, "id")
        try:
            self.task = Task.parse(self.task)
        except ValueError as e:
            raise SchemaError(str(e), row, "task") from None
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise SchemaError("prompt must be a non-empty string", row, "prompt")
        cands = self.candidates
        if not isinstance(cands, (list, tuple)) or len(cands) != 2:
            raise SchemaError("exactly two candidates are required", row, "candidates")
        if self.task.is_generation:
            self.candidates = (_check_media(cands[0], "candidates[0]", row), _check_media(cands[1], "candidates[1]", row))
            if self.reference is not None:
                self.reference = _check_media(self.reference, "reference", row)
            elif self.task.uses_reference:
                raise SchemaError(f"{self.task.value} needs the source image as its reference", row, "reference")
        else:
            for i, c in enumerate(cands):
                if not isinstance(c, str):
                    raise SchemaError(f"answers must be strings, got {type(c).__name__}", row, f"candidates[{i}]")
            self.candidates = (cands[0], cands[1])
            if self.reference is None:
                raise SchemaError(f"{self.task.value} needs the reference image or video", row, "reference")
            self.reference = _check_media(self.reference, "reference", row)
        self.label = normalize_label(self.label, row)
        if not isinstance(self.source, str):
            raise SchemaError(f"source must be a string, got {type(self.source).__name__}", row, "source")
        if not isinstance(self.meta, dict):
            raise SchemaError("meta must be an object", row, "meta")

    @property
    def label_text(self) -> str | None:
        """The verdict string a correct judge writes (``None`` for a tie)."""
        return None if self.label == "tie" else answer_label(self.task, self.label)  # type: ignore[arg-type]

    def swapped(self) -> PreferencePair:
        """The same pair with candidates in the other order and the label flipped."""
        flip = {1: 2, 2: 1, "tie": "tie"}[self.label]
        return PreferencePair(
            id=f"{self.id}#swap", task=self.task, prompt=self.prompt,
            candidates=(self.candidates[1], self.candidates[0]), label=flip,  # type: ignore[arg-type]
            reference=self.reference, source=self.source, meta={**self.meta, "swapped": True},
        )  # fmt: skip

    def media_paths(self) -> list[str]:
        """Every media file this pair needs (frames of a video given as frames included)."""
        items: list[MediaRef] = list(self.candidates) if self.task.is_generation else []
        if self.reference is not None:
            items.append(self.reference)
        out: list[str] = []
        for item in items:
            out.extend(item if isinstance(item, list) else [item])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "task": self.task.value, "prompt": self.prompt,
            "candidates": list(self.candidates), "label": self.label, "reference": self.reference,
            "source": self.source, "meta": self.meta,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Any, row: int | str | None = None) -> PreferencePair:
        if not isinstance(d, dict):
            raise SchemaError(f"expected a JSON object, got {type(d).__name__}", row)
        missing = [k for k in ("id", "task", "prompt", "candidates", "label") if k not in d]
        if missing:
            raise SchemaError("missing required field", row, missing[0])
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise SchemaError(f"unknown field(s) {unknown}", row, unknown[0])
        try:
            return cls(
                id=str(d["id"]) if isinstance(d["id"], (int, str)) and not isinstance(d["id"], bool) else d["id"], task=d["task"],
                prompt=d["prompt"], candidates=d["candidates"], label=d["label"],
                reference=d.get("reference"), source=d.get("source") or "", meta=d.get("meta") or {},
            )  # fmt: skip
        except SchemaError as e:
            if e.row is None or row is not None:
                raise SchemaError(e.message, row, e.field) from None
            raise


DUPLICATES = ("allow", "refuse", "rename")


def iter_pairs(
    path: str | os.PathLike[str], errors: str = "raise", duplicates: str = "allow"
) -> Iterator[PreferencePair | SchemaError]:
    """Read pairs from a JSONL file; rows are numbered from 1 in error messages.

    ``errors="raise"`` stops at the first bad row; ``"yield"`` yields the :class:`SchemaError` in its place.
    ``duplicates``: a repeated id is kept (``"allow"``), a :class:`SchemaError` naming both lines
    (``"refuse"``: wherever results are keyed by id, a repeat would attach one pair's result to
    another), or renamed ``<id>~<n>`` with a warning (``"rename"``).
    """
    from unireward.rows import BadLine, iter_rows

    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    name = Path(path).name
    first_line: dict[str, int] = {}
    for item in iter_rows(path):
        where = f"{name}:{item.line}"
        try:
            if isinstance(item, BadLine):
                raise SchemaError(item.reason, where)
            pair = PreferencePair.from_dict(item.data, row=where)
            if pair.id in first_line and duplicates != "allow":
                if duplicates == "refuse":
                    raise DuplicateIdError(
                        f"duplicate id {pair.id!r} (first at line {first_line[pair.id]}); ids must be unique "
                        "(fix the data, or ask for unique ids to be made)",
                        where,
                        "id",
                    )
                n, new = 2, f"{pair.id}~2"
                while new in first_line:
                    n, new = n + 1, f"{pair.id}~{n + 1}"
                log.warning("%s: duplicate id %r (first at line %d) renamed %r", where, pair.id, first_line[pair.id], new)
                pair.id = new
            first_line.setdefault(pair.id, item.line)
            yield pair
        except SchemaError as e:
            if errors == "raise":
                raise
            yield e


def read_pairs(
    path: str | os.PathLike[str], duplicates: str = "allow", bad: list[SchemaError] | None = None
) -> list[PreferencePair]:
    """The pairs of a JSONL file. Without ``bad`` the first line that is not a valid pair raises; with
    it, each such line is logged, appended to ``bad`` (``row FILE:LINE: reason``) and skipped. A
    refused duplicate id raises either way: it is the file, not one line, that is wrong."""
    if bad is None:
        return [p for p in iter_pairs(path, duplicates=duplicates) if isinstance(p, PreferencePair)]
    pairs = []
    for item in iter_pairs(path, errors="yield", duplicates=duplicates):
        if isinstance(item, DuplicateIdError):
            raise item
        if isinstance(item, SchemaError):
            log.warning("skipping %s", item)
            bad.append(item)
        else:
            pairs.append(item)
    return pairs


def write_pairs(pairs: Iterable[PreferencePair], path: str | os.PathLike[str], append: bool = False) -> int:
    """Write pairs as JSONL (atomically when not appending); returns the count."""
    from unireward.rows import append_rows, replace_rows

    rows = (p.to_dict() for p in pairs)
    return append_rows(path, rows) if append else replace_rows(path, rows)
