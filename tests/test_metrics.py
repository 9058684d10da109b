"""Tie-calibrated accuracy against a brute force, VideoAlign's toy case and the official loop."""

from __future__ import annotations

import csv
import math

import pytest
from conftest import VIDEOALIGN
from hypothesis import given, settings
from hypothesis import strategies as st

from unireward.metrics import (
    NO_MODEL_TIES,
    accuracy_with_ties,
    accuracy_with_ties_videoalign,
    accuracy_without_ties,
    category_accuracy,
    genai_bench_correct,
    majority_vote,
)


def brute_force_with_ties(h, m):
    """Every threshold tried from scratch: 'no model ties' and each distinct |margin|."""
    best = (-1.0, None)
    for eps in [NO_MODEL_TIES] + sorted({abs(x) for x in m}):
        right = sum((hi == 0 and abs(mi) <= eps) or (hi != 0 and abs(mi) > eps and hi * mi > 0) for hi, mi in zip(h, m, strict=True))
        if right / len(h) > best[0]:
            best = (right / len(h), eps)
    return best


labels = st.sampled_from([-1, 0, 1])
# Few distinct margin values so groups of equal |margin| (and ±m pairs) are common.
discrete = st.sampled_from([-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])
continuous = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(labels, st.one_of(discrete, continuous)), min_size=1, max_size=40))
def test_with_ties_matches_brute_force(rows):
    h, m = [r[0] for r in rows], [r[1] for r in rows]
    acc, eps = accuracy_with_ties(h, m)
    want_acc, want_eps = brute_force_with_ties(h, m)
    assert acc == pytest.approx(want_acc)
    assert eps == want_eps  # the smallest threshold reaching the maximum


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(labels, discrete), min_size=1, max_size=30))
def test_videoalign_loop_is_at_least_every_threshold_that_predicts_ties(rows):
    """The official loop scores partial groups (optimistic) and skips 'no model ties'."""
    h, m = [r[0] for r in rows], [r[1] for r in rows]
    exact, _ = accuracy_with_ties(h, m)
    official, _ = accuracy_with_ties_videoalign(h, m)
    with_ties_only = max(
        sum((hi == 0 and abs(mi) <= e) or (hi != 0 and abs(mi) > e and hi * mi > 0) for hi, mi in zip(h, m, strict=True)) / len(h)
        for e in {abs(x) for x in m}
    )
    assert official >= with_ties_only - 1e-12


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(labels, continuous), min_size=1, max_size=40, unique_by=lambda r: abs(r[1])))
def test_videoalign_loop_agrees_where_defined(rows):
    """Distinct |margin| and a best threshold that predicts ties: both give the same value."""
    h, m = [r[0] for r in rows], [r[1] for r in rows]
    exact, eps = accuracy_with_ties(h, m)
    official, official_eps = accuracy_with_ties_videoalign(h, m)
    if eps != NO_MODEL_TIES:
        assert official == pytest.approx(exact) and official_eps == eps


def _toy():
    # VideoAlign's own example: human labels and the two score lists, margin = A - B.
    h = [1, -1, 0, 1, -1, 0, 1, -1, 0]
    a = [0.9, -0.7, 0.1, 0.8, -0.6, 0.2, 0.7, -0.5, 0.3]
    b = [0.1, -0.8, 0.5, 0.5, -0.3, 0.3, 0.4, -0.4, 0.4]
    return h, [x - y for x, y in zip(a, b, strict=True)]


def test_videoalign_toy_example():
    h, m = _toy()
    assert round(accuracy_with_ties(h, m)[0], 4) == 0.6667
    assert round(accuracy_with_ties_videoalign(h, m)[0], 4) == 0.6667
    assert round(accuracy_without_ties(h, m), 4) == 0.8333


def test_discrete_margins_differ_from_official_loop():
    # A generative judge: margins are verdicts. Exact keeps "no ties" (100%); the loop cannot.
    assert accuracy_with_ties([1, -1, 1], [1, -1, 1]) == (1.0, NO_MODEL_TIES)
    assert accuracy_with_ties_videoalign([1, -1, 1], [1, -1, 1])[0] == pytest.approx(2 / 3)
    # Equal |margin| group split part-way: the loop reports a value no threshold gives.
    h, m = [0, 1, 1, 1], [1, 1, 2, 2]
    assert accuracy_with_ties(h, m)[0] == 0.75
    assert accuracy_with_ties_videoalign(h, m)[0] == 1.0


def test_without_ties_zero_margin_is_wrong_and_human_ties_ignored():
    assert accuracy_without_ties([1, -1, 0], [0.0, -1.0, 5.0]) == 0.5
    assert math.isnan(accuracy_without_ties([0, 0], [1.0, -1.0]))


def test_input_validation():
    with pytest.raises(ValueError):
        accuracy_with_ties([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        accuracy_without_ties([1], [0.1, 0.2])


def test_videoalign_example_labels_load_as_signs(shared_data):
    from unireward.eval.benchmarks import load_videogen_rewardbench

    pairs = load_videogen_rewardbench(str(VIDEOALIGN / "example.csv"))
    with open(VIDEOALIGN / "example.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(pairs) == len(rows) == 12
    sign = {"A": 1, "B": -1, "same": 0}
    for p, r in zip(pairs, rows, strict=True):
        assert p.meta["labels"] == {d: sign[r[d]] for d in ("VQ", "MQ", "TA")}


def test_genai_and_vlrb_helpers():
    assert genai_bench_correct("[[A=B]]", "tievote") and not genai_bench_correct("[[A>B]]", "rightvote")
    with pytest.raises(ValueError):
        genai_bench_correct("[[A>B]]", "leftVote")
    r = category_accuracy(["a", "b", "b"], [True, False, None], exclude_unparsed=True)
    assert r["macro"] == 50.0 and r["categories"]["b"]["n"] == 2
    assert majority_vote([2, 2, 1]) == 2


# --- the metrics of the newer benchmarks against brute force ---------------------------------------


@given(st.lists(st.tuples(st.sampled_from([1, 2, "tie", None]), st.sampled_from([1, 2])), max_size=30))
@settings(max_examples=60, deadline=None)
def test_pooled_accuracy_is_mmrb2s_rule(judged):
    from unireward.metrics import pooled_accuracy

    evaluated = [(v, c) for v, c in judged if v]  # MMRB2: `if judgement:` drops empty ones
    assert pooled_accuracy(judged) == (sum(v == c for v, c in evaluated), len(evaluated))


@given(st.lists(st.integers(0, 5), min_size=2, max_size=7), st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_inversion_from_pair_verdicts_equals_hpsv2_on_a_score_ranking(human, rng):
    """A judge that prefers the higher of distinct hidden scores: counting its wrong pair verdicts
    gives HPSv2's inversion score of the ranking those scores induce."""
    from itertools import combinations

    from unireward.metrics import inversion_score, ranking_from_wins

    n = len(human)
    scores = rng.sample(range(100), n)
    model_rank = [sorted(scores, reverse=True).index(s) for s in scores]  # 0 = best, as HPSv2's argsort
    cnt = sum((model_rank[i] > model_rank[j] and human[i] < human[j]) or (model_rank[i] < model_rank[j] and human[i] > human[j])
              for i, j in combinations(range(n), 2))  # fmt: skip
    hps = 1 - cnt / (n * (n - 1) / 2)
    discordant = sum(((scores[i] > scores[j]) != (human[i] < human[j])) for i, j in combinations(range(n), 2) if human[i] != human[j])
    assert inversion_score(n, discordant) == pytest.approx(hps)
    wins = {(i, j): float(scores[i] > scores[j]) for i, j in combinations(range(n), 2)}
    assert ranking_from_wins(n, wins) == model_rank


def test_tie_aware_accuracy_by_hand():
    from unireward.metrics import tie_aware_accuracy

    verdicts = [1, 2, "tie", None, 2, 1]
    labels = [1, 1, 2, 2, "tie", 2]  # the human tie is not scored
    strict, aware = tie_aware_accuracy(verdicts, labels)
    assert strict == pytest.approx(100 * 1 / 5) and aware == pytest.approx(100 * 2 / 5)
    assert tie_aware_accuracy([], []) == (None, None)
