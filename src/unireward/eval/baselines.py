"""Judges that need no model: sanity floors for every benchmark.

They answer in the ``answer`` protocol (parsed by the one verdict parser), so the runner treats
them exactly like a model judge. Text-length baselines only make sense where the candidates are
answers (understanding tasks) and refuse generation pairs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from unireward.data.schema import PreferencePair
from unireward.judge.base import BaseJudge
from unireward.protocol import Judgment, answer_label, parse_judgment

BASELINES = ("random", "first", "shorter", "longer")


def _verdict(pair: PreferencePair, winner: int, why: str) -> Judgment:
    text = f"<think>{why}</think>\n<answer>{answer_label(pair.task, winner)}</answer>"
    return parse_judgment(text, pair.task)


class BaselineJudge(BaseJudge):
    """``random`` (seeded per pair id, so reruns and resumed runs agree), ``first`` (always
    candidate 1), ``shorter`` / ``longer`` answer (equal lengths: candidate 1).

    >>> from unireward.data.schema import PreferencePair
    >>> p = PreferencePair("q1", "image_understanding", "What?", ("a short one", "a longer answer"), 2, reference="x.png")
    >>> BaselineJudge("shorter").compare_batch([p])[0].winner, BaselineJudge("longer").compare_batch([p])[0].winner
    (1, 2)
    """

    needs_media = False

    def __init__(self, kind: str, seed: int = 0):
        if kind not in BASELINES:
            raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINES}")
        self.kind, self.seed = kind, seed
        self.name = f"baseline:{kind}" + (f":{seed}" if kind == "random" else "")

    def _winner(self, pair: PreferencePair) -> tuple[int, str]:
        if self.kind == "first":
            return 1, "always the first candidate"
        if self.kind == "random":
            digest = hashlib.sha256(f"{self.seed}\x00{pair.id}".encode()).digest()
            return 1 + (digest[0] & 1), f"coin flip (seed {self.seed})"
        if pair.task.is_generation:
            raise ValueError(f"baseline:{self.kind} compares answer lengths; {pair.task.value} pairs have media candidates")
        n1, n2 = (len(str(c)) for c in pair.candidates)
        if n1 == n2:
            return 1, "equal lengths"
        shorter = 1 if n1 < n2 else 2
        return (shorter if self.kind == "shorter" else 3 - shorter), f"lengths {n1} vs {n2}"

    def compare_batch(
        self, pairs: Sequence[PreferencePair], media_root: str | os.PathLike[str] | None = None
    ) -> list[Judgment]:
        return [_verdict(p, *self._winner(p)) for p in pairs]


def build_judge(spec: str, seed: int = 0, **options: object) -> BaseJudge:
    """A judge from a command-line spec: ``baseline:KIND[:SEED]`` or a model directory / hub id
    (``options`` are the model judge's generation options, e.g. ``max_new_tokens``).

    >>> build_judge("baseline:random:7").name
    'baseline:random:7'
    """
    if spec.startswith("baseline:"):
        parts = spec.split(":")
        kind = parts[1] if len(parts) > 1 else ""
        return BaselineJudge(kind, int(parts[2]) if len(parts) > 2 else seed)
    import unireward.judge as judge_pkg

    if not hasattr(judge_pkg, "Judge"):
        raise ValueError(f"judge {spec!r}: model judges need unireward.judge.Judge, which this install lacks")
    return judge_pkg.Judge.from_pretrained(spec, **{k: v for k, v in options.items() if v is not None})
