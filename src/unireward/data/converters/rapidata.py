"""Rapidata human-preference sets: text-to-image (OpenAI-4o) and text-to-video pairs.

Both give, per row, a prompt, two media and the share of annotators preferring each one on several
criteria. The label is taken from ``criterion`` (default ``preference``): the candidate with the larger
weighted share wins, and a gap at or below ``tie_margin`` is a tie.

``rapidata-t2i`` (``Rapidata/OpenAI-4o_t2i_human_preference``): fields ``prompt``, ``image1``, ``image2``
(parquet image structs), ``model1``, ``model2``, ``weighted_results_image1_<criterion>`` /
``weighted_results_image2_<criterion>`` for preference, coherence and alignment. Confirmed from public
code that loads this dataset by these names; the card itself could not be read from here.

``rapidata-t2v`` (``Rapidata/text-2-video-human-preferences``): fields ``prompt``, ``file_name1``,
``file_name2`` (videos under ``videos/`` of the dataset folder), ``weighted_results1_<Criterion>`` /
``weighted_results2_<Criterion>`` (capitalised: Preference, Coherence, Alignment). Confirmed from a
public loader written for Rapidata's sibling text-to-video sets (pika2.2, veo3, wan2.1) that share this
layout; the card of the original set could not be read from here.
"""

from __future__ import annotations

import math
from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.data.schema import PreferencePair
from unireward.protocol.tasks import Task


def share_label(a: Any, b: Any, tie_margin: float = 0.0) -> int | str:
    """Winner from two preference shares.

    >>> share_label(0.7, 0.3), share_label(0.2, 0.8), share_label(0.51, 0.49, tie_margin=0.05)
    (1, 2, 'tie')
    """
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        raise RowError(f"preference shares must be numbers, got {a!r:.30} and {b!r:.30}") from None
    if math.isnan(fa) or math.isnan(fb):
        raise RowError("preference share is NaN")
    if abs(fa - fb) <= tie_margin:
        return "tie"
    return 1 if fa > fb else 2


class RapidataT2IConverter(Converter):
    name = "rapidata-t2i"
    task = Task.IMAGE_GENERATION
    hub_id = "Rapidata/OpenAI-4o_t2i_human_preference"
    files = ("data/*.parquet", "*.parquet", "*.jsonl", "*.json")
    criterion = "preference"
    tie_margin = 0.0

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        c = self.criterion.lower()
        prompt, img1, img2 = require(rec, "prompt", "image1", "image2")
        s1, s2 = require(rec, f"weighted_results_image1_{c}", f"weighted_results_image2_{c}")
        label = share_label(s1, s2, self.tie_margin)
        key = str(rec.get("id") or ref)
        cands = (ctx.media(img1, "image1", f"r4o-{key}-1"), ctx.media(img2, "image2", f"r4o-{key}-2"))
        meta = {"models": [rec.get("model1"), rec.get("model2")], "shares": [float(s1), float(s2)], "criterion": c}
        return [self.make(id=f"rapidata-t2i-{key}", prompt=prompt, candidates=cands, label=label, meta=meta)]


class RapidataT2VConverter(Converter):
    name = "rapidata-t2v"
    task = Task.VIDEO_GENERATION
    hub_id = "Rapidata/text-2-video-human-preferences"
    files = ("data/train-*.parquet", "*.parquet", "*.jsonl", "*.json")
    criterion = "Preference"
    tie_margin = 0.0
    video_dir = "videos"

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        c = self.criterion[:1].upper() + self.criterion[1:].lower()
        prompt, f1, f2 = require(rec, "prompt", "file_name1", "file_name2")
        s1, s2 = require(rec, f"weighted_results1_{c}", f"weighted_results2_{c}")
        label = share_label(s1, s2, self.tie_margin)
        cands = (ctx.path(f"{self.video_dir}/{f1}", "file_name1"), ctx.path(f"{self.video_dir}/{f2}", "file_name2"))
        key = str(rec.get("id") or ref)
        meta = {"shares": [float(s1), float(s2)], "criterion": c}
        return [self.make(id=f"rapidata-t2v-{key}", prompt=prompt, candidates=cands, label=label, meta=meta)]
