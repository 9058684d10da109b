"""The judge as a reward for image/video generators: group win rates, best-of-N, DPO pairs.

For N generations of one prompt every pair is judged (optionally in both orders); a generation's
reward is its win rate against the others, with ties and unusable verdicts counting 0.5. All pairs
of all groups go to the backend in one call, so the transformers backend batches them; each medium
is decoded once per group and, in the transformers backend, encoded once per call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations, permutations
from pathlib import Path
from typing import Any

from unireward.judge.judge import Judge, JudgeResult, load_medium
from unireward.media import MediaError
from unireward.protocol.tasks import Task
from unireward.rewards.group import best_index, dpo_pair, group_win_rates, preference_of_first


@dataclass
class Group:
    """N candidates for one prompt: media (generation tasks) or answers about ``reference``."""

    task: str
    prompt: str
    candidates: list[Any]
    reference: Any = None
    id: str | None = None

    def __post_init__(self) -> None:
        if len(self.candidates) < 1:
            raise ValueError(f"group {self.id or self.prompt[:40]!r} has no candidates")


@dataclass
class GroupRewards:
    rewards: list[float]
    judgments: dict[tuple[int, int], JudgeResult]

    @property
    def best(self) -> int:
        return best_index(self.rewards)


def group_rewards(
    judge: Judge, groups: Sequence[Group], both_orders: bool = True, media_root: Any = None
) -> list[GroupRewards]:
    """Win-rate rewards for each group; ``both_orders`` judges (i, j) and (j, i) to cancel position bias."""
    requests: list[dict[str, Any]] = []
    index: list[tuple[int, int, int]] = []
    for g_i, g in enumerate(groups):
        cands, reference = _preload(judge, g, media_root)
        pairs = (
            permutations(range(len(g.candidates)), 2)
            if both_orders
            else combinations(range(len(g.candidates)), 2)
        )
        for i, j in pairs:
            requests.append({"task": g.task, "prompt": g.prompt, "candidates": [cands[i], cands[j]],
                             "reference": reference, "id": f"{g.id or g_i}:{i}-{j}"})  # fmt: skip
            index.append((g_i, i, j))
    results = judge.compare_many(requests, media_root=media_root) if requests else []
    per_group: list[dict[tuple[int, int], JudgeResult]] = [{} for _ in groups]
    for (g_i, i, j), res in zip(index, results, strict=True):
        per_group[g_i][(i, j)] = res
    out = []
    for g, judged in zip(groups, per_group, strict=True):
        outcomes = {k: preference_of_first(r.preference) for k, r in judged.items()}
        out.append(GroupRewards(group_win_rates(len(g.candidates), outcomes), judged))
    return out


def _preload(judge: Judge, group: Group, media_root: Any) -> tuple[list[Any], Any]:
    """(candidates, reference) of a generation group decoded and sized once, not once per pair they
    appear in, at the size each pair's request gives them (so the pixels, and the verdicts, are those
    of decoding per pair); identical pixels then also share one vision encoding in the backend.
    A medium that cannot be loaded stays as given, so its pairs report the error."""
    task = Task.parse(group.task)
    if not task.is_generation:
        return list(group.candidates), group.reference
    per_request = 2 + (task is Task.IMAGE_EDITING)  # an edit's source image rides along with each pair

    def load(ref: Any, ref_task: Task) -> Any:
        try:
            return load_medium(ref, ref_task, media_root, judge.budget, per_request)
        except MediaError:
            return ref

    reference = group.reference
    if reference is not None and task is Task.IMAGE_EDITING:
        reference = load(reference, task)
    return [load(c, task) for c in group.candidates], reference


def best_of_n(
    judge: Judge,
    task: str,
    prompt: str,
    candidates: Sequence[Any],
    reference: Any = None,
    both_orders: bool = True,
) -> tuple[int, list[float]]:
    """Index of the best candidate and every candidate's win rate."""
    r = group_rewards(judge, [Group(task, prompt, list(candidates), reference)], both_orders)[0]
    return r.best, r.rewards


def build_dpo_pairs(
    judge: Judge,
    groups: Iterable[Group],
    output: str | os.PathLike[str],
    min_margin: float = 0.0,
    both_orders: bool = True,
    media_root: Any = None,
) -> int:
    """Write one chosen/rejected row per group (best vs worst win rate) to JSONL; returns rows written.

    Groups whose best and worst rewards differ by ``min_margin`` or less are skipped (no signal).
    """
    groups = list(groups)
    rewards = group_rewards(judge, groups, both_orders, media_root)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "a", encoding="utf-8") as f:
        for g_i, (g, r) in enumerate(zip(groups, rewards, strict=True)):
            picked = dpo_pair(r.rewards, min_margin)
            if picked is None:
                continue
            hi, lo = picked
            row = {
                "id": g.id or str(g_i), "task": g.task, "prompt": g.prompt,
                "chosen": _jsonable(g.candidates[hi]), "rejected": _jsonable(g.candidates[lo]),
                "chosen_reward": r.rewards[hi], "rejected_reward": r.rewards[lo],
                "reference": _jsonable(g.reference), "rewards": r.rewards,
            }  # fmt: skip
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"DPO rows need media given as paths, got {type(value).__name__}")
