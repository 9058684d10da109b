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


# --- position: both orders, consistency, slot bias ------------------------------------------------

POSITION_KEYS = ("accuracy_forward", "accuracy_reverse", "accuracy", "consistency", "first_slot_rate", "label_first_rate")


def _pct(k: int, d: int) -> float | None:
    return 100.0 * k / d if d else None


def shown_slot(winner: object, swapped: bool) -> object:
    """The slot a verdict named as the judge saw the pair: verdicts are stored in the pair's own
    orientation, so a swapped judgment's 1 was shown second.

    >>> shown_slot(1, False), shown_slot(1, True), shown_slot("tie", True), shown_slot(None, False)
    (1, 2, 'tie', None)
    """
    if winner in (1, 2) and swapped:
        return 3 - winner  # type: ignore[operator]
    return winner


def position_block(judgments: Iterable[Mapping[str, object]]) -> dict[str, float | None]:
    """The position metrics of a set of pairwise judgments, in percent.

    Each judgment is a mapping with ``id`` (the pair), ``label`` (1 or 2, in the pair's own order;
    pairs labelled ``"tie"`` are left out), ``swapped`` (whether the judge saw the candidates in the
    other order), ``winner`` (1, 2, ``"tie"`` or ``None`` for unparsed, in the pair's own order) and
    optionally ``sample``. Ties and unparsed verdicts count as wrong.

    * ``accuracy_forward`` / ``accuracy_reverse``: over judgments shown as-is / swapped;
    * ``accuracy``: their mean (the MMRB2 convention; the one present when only one order was shown);
    * ``consistency``: share of (pair, sample) judged in both orders whose verdict names the same
      candidate both times (a tie or unparsed verdict is not consistent);
    * ``first_slot_rate``: share of verdicts naming a slot that named the slot shown first;
    * ``label_first_rate``: share of pairs whose preferred candidate is first in the data's order.

    A judge that always names slot 1, on both orders of two pairs:

    >>> js = [{"id": i, "label": lab, "swapped": s, "winner": 2 if s else 1}
    ...       for i, lab in (("a", 1), ("b", 2)) for s in (False, True)]
    >>> position_block(js)
    {'accuracy_forward': 50.0, 'accuracy_reverse': 50.0, 'accuracy': 50.0, 'consistency': 0.0, 'first_slot_rate': 100.0, 'label_first_rate': 50.0}

    An always-right judge shown one order only:

    >>> position_block([{"id": "a", "label": 1, "swapped": False, "winner": 1}])["accuracy_reverse"] is None
    True
    """
    right = {False: [0, 0], True: [0, 0]}  # orientation -> [right, judged]
    first = named = 0
    by_pair: dict[tuple[object, object], dict[bool, object]] = {}
    labels: dict[object, object] = {}
    for j in judgments:
        label = j["label"]
        if label not in (1, 2):
            continue
        swapped, winner = bool(j["swapped"]), j["winner"]
        right[swapped][0] += winner == label
        right[swapped][1] += 1
        slot = shown_slot(winner, swapped)
        if slot in (1, 2):
            named += 1
            first += slot == 1
        by_pair.setdefault((j["id"], j.get("sample", 0)), {})[swapped] = winner
        labels[j["id"]] = label
    fwd, rev = _pct(*right[False]), _pct(*right[True])
    both = [g for g in by_pair.values() if len(g) == 2]
    consistent = sum(g[False] in (1, 2) and g[False] == g[True] for g in both)
    mean = (fwd + rev) / 2 if fwd is not None and rev is not None else (fwd if rev is None else rev)
    return {
        "accuracy_forward": fwd, "accuracy_reverse": rev, "accuracy": mean,
        "consistency": _pct(consistent, len(both)), "first_slot_rate": _pct(first, named),
        "label_first_rate": _pct(sum(v == 1 for v in labels.values()), len(labels)),
    }  # fmt: skip


# --- MMRB2, Multimodal RewardBench, MJ-Bench-Video, HPDv2 -------------------------------------------


def pooled_accuracy(judgments: Iterable[tuple[object, object]]) -> tuple[int, int]:
    """MMRB2's accuracy: ``(right, evaluated)`` over ``(verdict, chosen)`` judgments of both orders,
    verdicts already mapped back to the pair's own order; an empty verdict (``None``) leaves the
    denominator, any other verdict that is not ``chosen`` (a tie) is wrong.

    >>> pooled_accuracy([(1, 1), (2, 1), (None, 1), ("tie", 2), (2, 2)])
    (2, 4)
    """
    right = total = 0
    for verdict, chosen in judgments:
        if verdict is None:
            continue
        total += 1
        right += verdict == chosen
    return right, total


def coin_for_unparsed(verdicts: Sequence[object], seed: int = 123) -> list[object]:
    """Multimodal RewardBench's reading of verdicts: an unparsed one (``None``, or a tie) becomes a
    coin flip from one ``random.Random(seed)`` drawn in file order, 1 when ``random() < 0.5``.

    >>> coin_for_unparsed([1, None, 2, None])
    [1, 1, 2, 1]
    """
    import random

    rng = random.Random(seed)
    return [v if v in (1, 2) else (1 if rng.random() < 0.5 else 2) for v in verdicts]


def mmrb1_category(category: str, item_id: str) -> str:
    """Multimodal RewardBench's reporting category: safety splits into bias (ids starting ``pairs``)
    and toxicity, reasoning into math (ids starting ``math``) and coding.

    >>> mmrb1_category("safety", "PAIRS-12"), mmrb1_category("reasoning", "EMMA-Coding-3"), mmrb1_category("vqa", "x")
    ('safety/bias', 'reasoning/coding', 'vqa')
    """
    if category == "safety":
        return "safety/bias" if item_id.lower().startswith("pairs") else "safety/toxicity"
    if category == "reasoning":
        return "reasoning/math" if item_id.lower().startswith("math") else "reasoning/coding"
    return category


def tie_aware_accuracy(verdicts: Sequence[object], labels: Sequence[object]) -> tuple[float | None, float | None]:
    """``(strict, tie_aware)`` accuracy in percent over decided human labels (1 or 2): a verdict
    that is a tie or unparsed is wrong when strict and worth 0.5 when tie-aware.

    >>> tie_aware_accuracy([1, "tie", None, 1], [1, 2, 1, 2])
    (25.0, 50.0)
    """
    if len(verdicts) != len(labels):
        raise ValueError("verdicts and labels differ in length")
    n = strict = undecided = 0
    for v, lab in zip(verdicts, labels, strict=True):
        if lab not in (1, 2):
            continue
        n += 1
        strict += v == lab
        undecided += v not in (1, 2)
    if not n:
        return None, None
    return 100.0 * strict / n, 100.0 * (strict + 0.5 * undecided) / n


def inversion_score(n: int, discordant: float) -> float:
    """HPSv2's per-prompt ranking score, ``1 - discordant / C(n, 2)``; pairs the humans tied count
    in the denominator and are never discordant.

    >>> inversion_score(4, 1), inversion_score(2, 0)
    (0.8333333333333334, 1.0)
    """
    if n < 2:
        raise ValueError("an inversion score needs at least two images")
    return 1.0 - discordant / (n * (n - 1) / 2)


def ranking_from_wins(n: int, wins: Mapping[tuple[int, int], float]) -> list[int]:
    """A ranking (0 = best) of ``n`` candidates from pairwise wins: ``wins[(i, j)]`` is the share of
    the judgments of pair ``(i, j)`` that preferred ``i``. Candidates are ordered by total wins
    (Copeland), equal totals keep their index order.

    >>> ranking_from_wins(3, {(0, 1): 0.0, (0, 2): 1.0, (1, 2): 1.0})
    [1, 0, 2]
    """
    score = [0.0] * n
    for (i, j), w in wins.items():
        score[i] += w
        score[j] += 1.0 - w
    order = sorted(range(n), key=lambda k: (-score[k], k))
    rank = [0] * n
    for r, k in enumerate(order):
        rank[k] = r
    return rank
