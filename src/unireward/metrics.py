"""Benchmark metrics as pure functions.

Conventions used throughout:

* human labels for pair (A, B): ``1`` = A preferred, ``-1`` = B preferred, ``0`` = tie;
* ``margin`` = score(A) − score(B) from the judge (any real scale; for a generative judge it is
  usually a small set of discrete values, e.g. the mean of ±1 verdicts over both orders).

Accuracy *without ties* (VideoGen-RewardBench "w/o ties") ignores human ties and counts a model
margin of 0 as discordant. Accuracy *with ties* is tie-calibrated accuracy (Deutsch et al. 2023):
the model predicts a tie when ``|margin| <= eps`` and ``eps`` is chosen to maximise accuracy over all
pairs. :func:`accuracy_with_ties` is exact: it tries every distinct ``|margin|`` plus "no model ties"
and always moves whole groups of equal ``|margin|`` across the threshold together.
:func:`accuracy_with_ties_videoalign` reproduces VideoAlign's own loop for comparison.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

# ε reported when the best threshold is "the model never predicts a tie" (any negative value works).
NO_MODEL_TIES = -1.0


def _arrays(human: Sequence[float], margin: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(human, dtype=np.int64).reshape(-1)
    m = np.asarray(margin, dtype=np.float64).reshape(-1)
    if h.shape != m.shape:
        raise ValueError(f"human and margin differ in length ({h.size} vs {m.size})")
    if not np.isin(h, (-1, 0, 1)).all():
        raise ValueError("human labels must be 1, -1 or 0")
    if not np.isfinite(m).all():
        raise ValueError("margins must be finite")
    return h, m


def accuracy_without_ties(human: Sequence[float], margin: Sequence[float]) -> float:
    """Pairwise accuracy over the pairs humans did not tie; a zero margin counts as wrong.

    Returns ``nan`` when every human label is a tie.

    >>> accuracy_without_ties([1, -1, 0, 1], [0.5, -2.0, 3.0, 0.0])
    0.6666666666666666
    """
    h, m = _arrays(human, margin)
    decided = h != 0
    if not decided.any():
        return math.nan
    return float(np.mean(h[decided] * m[decided] > 0))


def accuracy_with_ties(human: Sequence[float], margin: Sequence[float]) -> tuple[float, float]:
    """Exact tie-calibrated accuracy and the smallest threshold ``eps`` that reaches it.

    The model predicts a tie when ``|margin| <= eps``; a pair is right when both sides tie or the
    signs agree. Candidates are "no model ties" (returned as ``eps = -1.0``) and every distinct
    ``|margin|``; pairs with equal ``|margin|`` always fall on the same side. O(N log N).

    VideoAlign's toy example (its scores A − B):

    >>> h = [1, -1, 0, 1, -1, 0, 1, -1, 0]
    >>> a = [0.9, -0.7, 0.1, 0.8, -0.6, 0.2, 0.7, -0.5, 0.3]
    >>> b = [0.1, -0.8, 0.5, 0.5, -0.3, 0.3, 0.4, -0.4, 0.4]
    >>> acc, eps = accuracy_with_ties(h, [x - y for x, y in zip(a, b)])
    >>> round(acc, 4), round(eps, 4)
    (0.6667, 0.1)

    A generative judge with discrete margins: the tie group at 0 is all-or-nothing.

    >>> accuracy_with_ties([0, 0, 1, 1], [0, 0, 0, 1])
    (0.75, 0.0)
    >>> accuracy_with_ties([1, 1], [1, 1])
    (1.0, -1.0)
    """
    h, m = _arrays(human, margin)
    n = h.size
    if n == 0:
        return math.nan, NO_MODEL_TIES
    a = np.abs(m)
    order = np.argsort(a, kind="stable")
    a_sorted = a[order]
    h_sorted = h[order]
    concordant = (h_sorted * m[order] > 0).astype(np.int64)
    human_tie = (h_sorted == 0).astype(np.int64)
    # Threshold at the end of each group of equal |margin|: pairs up to it are model ties.
    ends = np.flatnonzero(np.r_[a_sorted[1:] != a_sorted[:-1], True])
    ties_right = np.cumsum(human_tie)[ends]  # both tie
    concordant_left = int(concordant.sum()) - np.cumsum(concordant)[ends]  # signs agree, above eps
    correct = ties_right + concordant_left
    best = int(np.argmax(correct))  # first maximum = smallest eps
    no_ties_correct = int(concordant.sum())
    if no_ties_correct >= int(correct[best]):
        return no_ties_correct / n, NO_MODEL_TIES
    return int(correct[best]) / n, float(a_sorted[ends[best]])


def accuracy_with_ties_videoalign(human: Sequence[float], margin: Sequence[float]) -> tuple[float, float]:
    """VideoAlign's tie-calibration loop, re-implemented for ``--official-compat`` comparisons.

    It walks pairs in order of ``|margin|`` and scores after *each pair* becomes a model tie, so
    (1) "no model ties" is never a candidate and (2) a group of equal ``|margin|`` is scored
    part-way through, where some of its pairs are ties and others are not; that partial state
    is not reachable by any threshold and can only raise the maximum. With distinct margins and a
    best threshold that predicts at least one tie it equals :func:`accuracy_with_ties`.

    >>> accuracy_with_ties_videoalign([1, 1], [1, 1])  # exact: 1.0 with no model ties
    (0.5, 1.0)
    >>> accuracy_with_ties_videoalign([0, 1], [1, 1])  # no threshold reaches 1.0
    (1.0, 1.0)
    """
    h, m = _arrays(human, margin)
    n = h.size
    if n == 0:
        return math.nan, NO_MODEL_TIES
    # Start with "no model ties"; stable sort keeps the input order inside equal |margin| groups.
    correct = int(np.sum(h * m > 0))
    best_acc, best_eps = -math.inf, 0.0
    for i in sorted(range(n), key=lambda j: abs(m[j])):
        hi, mi = int(h[i]), float(m[i])
        correct += (hi == 0) - (hi * mi > 0)  # this pair becomes a model tie
        acc = correct / n
        if acc > best_acc:
            best_acc, best_eps = acc, abs(mi)
    return best_acc, best_eps


# --- GenAI-Bench ---------------------------------------------------------------------------------

GENAI_VOTES = ("leftvote", "rightvote", "tievote", "bothbad_vote")
# Which parsed ``[[...]]`` strings the official scorer accepts for each human vote.
_GENAI_ACCEPT: Mapping[str, frozenset[str]] = {
    "leftvote": frozenset({"[[A>B]]", "[[A>>B]]"}),
    "rightvote": frozenset({"[[B>A]]", "[[B>>A]]"}),
    "tievote": frozenset({"[[A=B]]", "[[A=B=Good]]"}),
    "bothbad_vote": frozenset({"[[A=B]]", "[[A=B=Bad]]"}),
}
_THREE_WAY = {"[[A>B]]": "A", "[[A>>B]]": "A", "[[B>A]]": "B", "[[B>>A]]": "B",
              "[[A=B]]": "tie", "[[A=B=Good]]": "tie", "[[A=B=Bad]]": "tie"}  # fmt: skip
_HUMAN_THREE_WAY = {"leftvote": "A", "rightvote": "B", "tievote": "tie", "bothbad_vote": "tie"}


def _check_vote(human_vote: str) -> str:
    if human_vote not in _GENAI_ACCEPT:
        raise ValueError(f"unknown GenAI-Bench vote {human_vote!r}; expected one of {GENAI_VOTES}")
    return human_vote


def genai_bench_correct(model_vote: str | None, human_vote: str) -> bool:
    """The official 4-way rule: the parsed vote string must be one the human vote accepts exactly.

    ``[[A=B]]`` is right for both tie votes; an unparsed vote (``None``) is wrong.

    >>> genai_bench_correct("[[A>>B]]", "leftvote"), genai_bench_correct("[[A=B]]", "bothbad_vote")
    (True, True)
    >>> genai_bench_correct("[[A=B=Good]]", "bothbad_vote"), genai_bench_correct(None, "tievote")
    (False, False)
    """
    return model_vote in _GENAI_ACCEPT[_check_vote(human_vote)]


def genai_bench_scores(model_votes: Sequence[str | None], human_votes: Sequence[str]) -> dict[str, float | int]:
    """GenAI-Bench accuracies in percent.

    * ``accuracy``: official 4-way, mean over all pairs (unparsed = wrong);
    * ``tau``: 3-way, both human tie votes and all model tie votes are one class, over all pairs;
    * ``diff``: left/right human votes only; the model must pick the same side.

    >>> s = genai_bench_scores(["[[A>B]]", "[[A=B=Good]]", "[[B>A]]", None],
    ...                        ["leftvote", "bothbad_vote", "leftvote", "rightvote"])
    >>> s["accuracy"], s["tau"], round(s["diff"], 2), s["n"], s["unparsed"]
    (25.0, 50.0, 33.33, 4, 1)
    """
    if len(model_votes) != len(human_votes):
        raise ValueError("model_votes and human_votes differ in length")
    n = len(human_votes)
    official = tau = diff_ok = diff_n = unparsed = 0
    for mv, hv in zip(model_votes, human_votes, strict=True):
        official += genai_bench_correct(mv, hv)
        model3 = _THREE_WAY.get(mv) if mv is not None else None
        unparsed += mv is None
        human3 = _HUMAN_THREE_WAY[hv]
        tau += model3 == human3
        if human3 != "tie":
            diff_n += 1
            diff_ok += model3 == human3
    def pct(k: int, d: int) -> float:
        return 100.0 * k / d if d else math.nan

    return {"accuracy": pct(official, n), "tau": pct(tau, n), "diff": pct(diff_ok, diff_n),
            "n": n, "n_diff": diff_n, "unparsed": unparsed}  # fmt: skip


# --- VL-RewardBench ------------------------------------------------------------------------------

VLRB_CATEGORIES = ("general", "hallucination", "reasoning")
VLRB_MAPPINGS = ("official", "legacy")


def vlrb_category(item_id: str, mapping: str = "official") -> str:
    """The VL-RewardBench category of an item, from its id.

    ``official`` (current): POVID (``hallucination_pair-*``), RLAIF-V and RLHF-V are hallucination.
    ``legacy`` (the older mapping UnifiedReward's scripts use): POVID counts as general.

    >>> vlrb_category("hallucination_pair-12"), vlrb_category("hallucination_pair-12", "legacy")
    ('hallucination', 'general')
    >>> vlrb_category("mmmu_pro_test_Math_3"), vlrb_category("RLHF-V-7"), vlrb_category("wildvision-battle-1")
    ('reasoning', 'hallucination', 'general')
    """
    if mapping not in VLRB_MAPPINGS:
        raise ValueError(f"mapping must be one of {VLRB_MAPPINGS}, got {mapping!r}")
    low = item_id.lower()
    if low.startswith(("mathverse", "mmmu")):
        return "reasoning"
    if low.startswith(("rlaif-v", "rlhf-v")):
        return "hallucination"
    if low.startswith("hallucination_pair"):
        return "hallucination" if mapping == "official" else "general"
    return "general"


def category_accuracy(
    categories: Sequence[str], correct: Sequence[bool | None], exclude_unparsed: bool = True
) -> dict[str, object]:
    """Overall (correct / counted) and Macro (mean of per-category accuracies), in percent.

    ``correct[i]`` is ``None`` for an unparsed answer: left out of the counts when
    ``exclude_unparsed`` (the official VL-RewardBench scorer), else counted wrong (UnifiedReward).
    ``n`` is the number of items in a category, ``counted`` how many entered its accuracy.

    >>> r = category_accuracy(["general", "general", "reasoning"], [True, None, False])
    >>> r["overall"], r["macro"], r["categories"]["general"]
    (50.0, 50.0, {'n': 2, 'counted': 1, 'accuracy': 100.0})
    >>> round(category_accuracy(["general", "general", "reasoning"], [True, None, False], False)["overall"], 2)
    33.33
    """
    if len(categories) != len(correct):
        raise ValueError("categories and correct differ in length")
    per: dict[str, list[int]] = {}
    for cat, ok in zip(categories, correct, strict=True):
        n_ok = per.setdefault(cat, [0, 0, 0])  # items, counted, right
        n_ok[0] += 1
        if ok is None and exclude_unparsed:
            continue
        n_ok[1] += 1
        n_ok[2] += bool(ok)
    cats = {c: {"n": v[0], "counted": v[1], "accuracy": 100.0 * v[2] / v[1] if v[1] else math.nan}
            for c, v in sorted(per.items())}  # fmt: skip
    counted = sum(v[1] for v in per.values())
    overall = 100.0 * sum(v[2] for v in per.values()) / counted if counted else math.nan
    macro = float(np.mean([c["accuracy"] for c in cats.values()])) if cats else math.nan
    return {"overall": overall, "macro": macro, "categories": cats}


def majority_vote(votes: Iterable[Hashable | None]) -> Hashable | None:
    """The most common non-``None`` vote; ``None`` when there is none or the top is shared.

    >>> majority_vote([1, 2, 1, None]), majority_vote([1, 2]), majority_vote([None])
    (1, None, None)
    """
    counts = Counter(v for v in votes if v is not None).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]
