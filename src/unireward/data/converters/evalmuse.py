"""EvalMuse-40K: per-image human alignment scores, turned into text-to-image pairs.

Layout read: the dataset card of ``DY-Evalab/EvalMuse`` (``train_list.json``; features
``prompt_id``, ``prompt``, ``type``, ``img_path``, ``total_score`` (a list: one 1-5 score per
annotator), ``element_score``, ``promt_meaningless``, ``split_confidence``, ``attribute_confidence``,
``fidelity_label``). Images come from ``images.zip``; the official UnifiedReward mixture uses
``EvalMuse/images`` as the image folder.

EvalMuse is pointwise. Pairs are built here among images of the same ``prompt_id``: two images
whose mean ``total_score`` differ by at least ``min_margin`` make a pair, the higher one preferred.
The official pairwise file is not public, so this pairing rule is ours; ``max_pairs_per_prompt``
bounds the quadratic blow-up.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from unireward.data.converters.base import ConvertContext, Converter, RowError, require
from unireward.protocol.tasks import Task


def mean_score(value: Any) -> float:
    """Mean of an annotator score list (a bare number is accepted too).

    >>> mean_score([4, 5, 3]), mean_score(2)
    (4.0, 2.0)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return sum(value) / len(value)
    raise RowError(f"total_score: expected a list of numbers, got {value!r:.60}")


class EvalMuseConverter(Converter):
    name = "evalmuse"
    task = Task.IMAGE_GENERATION
    hub_id = "DY-Evalab/EvalMuse"
    files = ("train_list.json",)
    min_margin: float = 1.0
    max_pairs_per_prompt: int = 6

    def convert_all(self, records: Iterable[tuple[str, Any]], ctx: ConvertContext) -> Iterator[tuple[str, Any]]:
        groups: dict[str, list[tuple[str, dict[str, Any], float, str]]] = {}
        for ref, rec in records:
            try:
                if isinstance(rec, RowError):
                    raise rec
                if not isinstance(rec, dict):
                    raise RowError(f"expected an object, got {type(rec).__name__}")
                pid, prompt, img = require(rec, "prompt_id", "prompt", "img_path")
                score = mean_score(rec.get("total_score"))
                groups.setdefault(str(pid), []).append((ref, rec, score, ctx.path(img, "img_path")))
            except RowError as e:
                yield ref, (e, rec if isinstance(rec, dict) else None)
        for pid, items in groups.items():
            made = 0
            # Largest gaps first: the clearest human preferences are kept when capped.
            combos = sorted(itertools.combinations(items, 2), key=lambda ab: -abs(ab[0][2] - ab[1][2]))
            for a, b in combos:
                if made >= self.max_pairs_per_prompt or abs(a[2] - b[2]) < self.min_margin:
                    break
                hi, lo = (a, b) if a[2] > b[2] else (b, a)
                key = f"{pid}:{made}"
                cands, label = ctx.place(key, hi[3], lo[3])
                pair = self.make(
                    id=f"evalmuse-{pid}-{made}", prompt=a[1]["prompt"], candidates=cands, label=label,
                    meta={"scores": [hi[2], lo[2]] if label == 1 else [lo[2], hi[2]], "prompt_id": pid},
                )  # fmt: skip
                made += 1
                yield a[0], pair
