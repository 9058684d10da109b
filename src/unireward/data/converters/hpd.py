"""HPD v2 (Human Preference Dataset v2): text-to-image pairs with one human choice each.

Layout read: the dataset card of ``ymhao/HPDv2`` on huggingface.co (README "Dataset Structure").
``train.json`` is a JSON array of ``{"human_preference": list[int] (1 marks the preferred image),
"prompt": str, "file_path": list[str]}``; images are in the ``train/`` folder of the archive, so
the media root is the folder that ``file_path`` entries are relative to. ``test.json`` uses a
different layout (``image_path`` + averaged ``rank``) and is not a pairwise training split.
"""

from __future__ import annotations

from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.data.schema import PreferencePair
from unireward.protocol.tasks import Task


class HPDConverter(Converter):
    name = "hpd"
    task = Task.IMAGE_GENERATION
    hub_id = "ymhao/HPDv2"
    files = ("train.json",)

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        prompt, prefs, files = require(rec, "prompt", "human_preference", "file_path")
        if not isinstance(files, list) or len(files) != 2:
            raise RowError(f"file_path: expected two image paths, got {files!r:.80}")
        if not isinstance(prefs, list) or len(prefs) != 2 or sorted(int(p) for p in prefs) != [0, 1]:
            raise RowError(f"human_preference: expected one 1 and one 0, got {prefs!r:.80}")
        label = 1 if int(prefs[0]) == 1 else 2
        cands = (ctx.path(files[0], "file_path[0]"), ctx.path(files[1], "file_path[1]"))
        return [self.make(id=f"hpd-{ref}", prompt=prompt, candidates=cands, label=label)]
