"""Training records on disk: a preference pair plus what the stage needs (a CoT target for SFT).

Every stage reads and writes JSONL of ``{"pair": {...}, "completion": "...", ...}``; this module
turns them into the TRL datasets (prompt/completion for SFT, prompt/label for GRPO) with media
loaded through the one vision budget and prompts built by :mod:`unireward.request`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from unireward.data.schema import PreferencePair
from unireward.media import MediaError, VisionBudget
from unireward.request import load_pair_media, media_inputs, pair_messages

log = logging.getLogger(__name__)


def _strip_media(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # TRL takes images in their own column and fills the placeholders itself. Every part gets
    # the same keys so Arrow can store the list.
    out = []
    for msg in messages:
        parts = []
        for part in msg["content"]:
            if part["type"] == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                parts.append({"type": "image", "text": None})
        out.append({"role": msg["role"], "content": parts})
    return out


def prompt_row(pair: PreferencePair, media_root: str | None, budget: VisionBudget, family: str | None = None) -> dict[str, Any]:
    """``{"prompt": messages, "images": [PIL...]}`` for one pair; videos become frame images."""
    media = load_pair_media(pair, media_root, budget)
    messages = pair_messages(pair, media, family=family, video_as="frames")
    images, _ = media_inputs(messages)
    return {"prompt": _strip_media(messages), "images": images}


def iter_rows(
    records: Iterable[dict[str, Any]],
    media_root: str | None,
    budget: VisionBudget,
    with_completion: bool,
    errors: list[str] | None = None,
    family: str | None = None,
) -> Iterator[dict[str, Any]]:
    for rec in records:
        pair = PreferencePair.from_dict(rec["pair"])
        try:
            row = prompt_row(pair, media_root, budget, family)
        except MediaError as e:
            if errors is not None:
                errors.append(f"{pair.id}: {e}")
            log.warning("skipping %s: %s", pair.id, e)
            continue
        if with_completion:
            row["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": rec["completion"]}]}]
        else:
            row["label"] = pair.label_text
            row["task"] = pair.task.value
        yield row


def to_dataset(rows: list[dict[str, Any]]) -> Any:
    """An HF dataset whose ``images`` column is a list of images (DESIGN: needs an explicit cast)."""
    from datasets import Dataset, Image, List

    ds = Dataset.from_list(rows)
    return ds.cast_column("images", List(Image()))
