"""VideoDPO: text-to-video pairs (winner/loser videos per caption).

Layout: ``pair.json`` beside ``winvideos/`` and ``losevideos/``. Each record has ``video1`` and
``video2`` (global indices: an even index ``i`` is ``winvideos/{i // 2:06d}.mp4``, an odd one
``losevideos/{i // 2:06d}.mp4``), ``frame_caption`` (the prompt) and ``label`` (0: video1 preferred,
1: video2). Read from a public loader of this set (the VideoDPO project page names the data, the file
layout is not documented there); the ``label`` semantics beyond 0 could not be confirmed. The
preferred video is always ``video1`` in the released file, so positions are balanced.
"""

from __future__ import annotations

from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.data.schema import PreferencePair
from unireward.protocol.tasks import Task


def video_path(index: Any) -> str:
    """Relative file of a global VideoDPO video index.

    >>> video_path(0), video_path(7)
    ('winvideos/000000.mp4', 'losevideos/000003.mp4')
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise RowError(f"video index must be a non-negative integer, got {index!r:.40}")
    return f"{'winvideos' if index % 2 == 0 else 'losevideos'}/{index // 2:06d}.mp4"


class VideoDPOConverter(Converter):
    name = "videodpo"
    task = Task.VIDEO_GENERATION
    files = ("pair.json",)

    def convert_record(self, ref: str, rec: dict[str, Any], ctx: ConvertContext) -> list[PreferencePair]:
        caption, v1, v2 = require(rec, "frame_caption", "video1", "video2")
        lab = rec.get("label", 0)
        if lab not in (0, 1):
            raise RowError(f"label: expected 0 or 1, got {lab!r:.30}")
        p1, p2 = ctx.path(video_path(v1), "video1"), ctx.path(video_path(v2), "video2")
        chosen, rejected = (p1, p2) if lab == 0 else (p2, p1)
        cands, label = ctx.place(ref, chosen, rejected)
        return [self.make(id=f"videodpo-{ref}", prompt=caption, candidates=cands, label=label)]
