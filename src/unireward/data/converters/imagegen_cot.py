"""ImageGen-CoT-Reward-5K: the cold-start set, text-to-image pairs with a CoT judgment each.

Layout: ``CodeGoat24/ImageGen-CoT-Reward-5K``, ``train_data.json`` (a JSON array; the hub lists the
file and its format as json). Each record has ``conversations`` (sharegpt: ``{"from", "value"}``; the
human turn is the official image-generation judging prompt ending in ``Text Caption: [<caption>]``,
the gpt turn is ``<think>...</think><answer>Image N is better</answer>``) and ``images`` (two paths
relative to the dataset folder). Confirmed from public code that loads this file. The caption is
recovered from the human turn, the label from the ``<answer>`` block, and the whole gpt turn is kept
as ``meta["cot"]``, the SFT target exporters use.
"""

from __future__ import annotations

import re
from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.data.schema import PreferencePair, normalize_label
from unireward.protocol.tasks import Task

_CAPTION = re.compile(r"Text Caption:\s*\[(.*)\]\s*$", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def caption_of(human: str) -> str:
    """The caption inside the official prompt (or the text itself when it is not that prompt).

    >>> caption_of("<image>\\n<image>\\n...Your task is provided as follows:\\nText Caption: [a [red] cube]")
    'a [red] cube'
    """
    m = _CAPTION.search(human.strip())
    if m:
        return m.group(1).strip()
    return re.sub(r"<image>\s*", "", human).strip()


class ImageGenCoTConverter(Converter):
    name = "imagegen-cot-5k"
    task = Task.IMAGE_GENERATION
    hub_id = "CodeGoat24/ImageGen-CoT-Reward-5K"
    files = ("train_data.json", "*.json")

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        conv, images = require(rec, "conversations", "images")
        if not isinstance(images, list) or len(images) != 2:
            raise RowError(f"images: expected two image paths, got {images!r:.80}")
        if not isinstance(conv, list) or len(conv) < 2:
            raise RowError("conversations: expected a human turn and a gpt turn")
        human = next((t.get("value", "") for t in conv if t.get("from") == "human"), "")
        gpt = next((t.get("value", "") for t in reversed(conv) if t.get("from") == "gpt"), "")
        m = _ANSWER.search(gpt)
        if "<think>" not in gpt or not m:
            raise RowError("conversations: gpt turn has no <think> and <answer> blocks")
        try:
            label = normalize_label(m.group(1).strip())
        except ValueError:
            raise RowError(f"conversations: answer {m.group(1).strip()!r:.40} is not a verdict") from None
        key = str(rec.get("id") or ref)
        cands = (ctx.path(images[0], "images[0]"), ctx.path(images[1], "images[1]"))
        meta = {"cot": gpt.strip(), "origin": rec.get("source")} if rec.get("source") else {"cot": gpt.strip()}
        return [self.make(id=f"imagegen-cot-{key}", prompt=caption_of(human), candidates=cands, label=label, meta=meta)]
