"""ShareGPTVideo DPO pairs: video question answering, chosen/rejected answers with scores.

Layout (JSONL, the 17K DPO file of ``ShareGPTVideo/train_video_and_instruction``): ``id``, ``video``
(a video file or a folder of frames, relative to the frames root), ``prompt`` (the question),
``chosen``, ``rejected``, ``chosen_score``, ``rejected_score``. Field names as given in the project
brief and in the paper's description; the exact file name on the hub could not be confirmed from
here. A record whose scores are equal is a tie; a record whose ``chosen_score`` is lower than its
``rejected_score`` is rejected as inconsistent. A ``<video>`` placeholder in the prompt is removed
(media placement is the template's job).
"""

from __future__ import annotations

import re
from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.data.schema import PreferencePair
from unireward.protocol.tasks import Task

_PLACEHOLDER = re.compile(r"<(video|image)>\s*")


class ShareGPTVideoDPOConverter(Converter):
    name = "sharegptvideo-dpo"
    task = Task.VIDEO_UNDERSTANDING
    hub_id = "ShareGPTVideo/train_video_and_instruction"
    files = ("*dpo*.jsonl", "*.jsonl", "*.json")

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        vid, prompt, chosen, rejected = require(rec, "video", "prompt", "chosen", "rejected")
        question = _PLACEHOLDER.sub("", prompt).strip()
        if not question:
            raise RowError("prompt is empty once the media placeholder is removed")
        cs, rs = rec.get("chosen_score"), rec.get("rejected_score")
        meta: dict[str, Any] = {}
        label: int | str
        key = str(rec.get("id") or ref)
        if cs is not None and rs is not None:
            cs, rs = float(cs), float(rs)
            meta["scores"] = [cs, rs]
            if cs < rs:
                raise RowError(f"chosen_score {cs} is below rejected_score {rs}")
        if cs is not None and rs is not None and cs == rs:
            cands, label = (chosen, rejected), "tie"
        else:
            cands, label = ctx.place(key, chosen, rejected)
            if label == 2 and "scores" in meta:
                meta["scores"] = meta["scores"][::-1]
        ref_media = ctx.video(vid, "video")
        return [self.make(id=f"sgv-{key}", prompt=question, candidates=cands, label=label, reference=ref_media, meta=meta)]
