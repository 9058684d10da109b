"""Group rewards, pure: verdicts of single comparisons combined into a winner, win rates over a group
of candidates, the best of N, DPO chosen/rejected picks and pointwise fills.

The judge-backed builders (:func:`unireward.judge.generator.group_rewards`, ``best_of_n``,
``build_dpo_pairs``) and the server's ``/v1/rewards`` route compute with these functions; they hold
no model and read no file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def majority_share(votes: Sequence[int | None]) -> tuple[int | None, float | None]:
    """Winner by majority of valid votes (1 or 2; ``None`` = no verdict) and the share of votes for 1.

    A tie between the two candidates has no winner; with no valid vote the share is ``None``.

    >>> majority_share([1, 1, 2, None])
    (1, 0.6666666666666666)
    >>> majority_share([1, 2])
    (None, 0.5)
    >>> majority_share([None, None])
    (None, None)
    """
    valid = [v for v in votes if v in (1, 2)]
    if not valid:
        return None, None
    share = valid.count(1) / len(valid)
    if share > 0.5:
        return 1, share
    if share < 0.5:
        return 2, share
    return None, share


def unswap(winner: int | None) -> int | None:
    """A verdict given with the candidates swapped, in the original order.

    >>> unswap(1), unswap(2), unswap(None)
    (2, 1, None)
    """
    return None if winner is None else 3 - winner


def swap_agreement(forward: int | None, backward: int | None) -> float | None:
    """1.0 when both orders name the same candidate (``backward`` already un-swapped), 0.0 when they
    differ, ``None`` when either order gave no verdict.

    >>> swap_agreement(1, 1), swap_agreement(1, 2), swap_agreement(None, 2)
    (1.0, 0.0, None)
    """
    if forward is None or backward is None:
        return None
    return 1.0 if forward == backward else 0.0


def preference_of_first(share_for_first: float | None) -> float:
    """How much a comparison favours its first candidate, counting no verdict as a tie (0.5).

    >>> preference_of_first(1.0), preference_of_first(None)
    (1.0, 0.5)
    """
    return 0.5 if share_for_first is None else float(share_for_first)


def group_win_rates(n: int, outcomes: Mapping[tuple[int, int], float | None]) -> list[float]:
    """Win rate of each of ``n`` candidates from pairwise outcomes.

    ``outcomes[(i, j)]`` is how much the comparison "i first, j second" favoured i (1 = i won,
    0 = j won, 0.5 or ``None`` = tie / no verdict). Both orders of a pair may be given; they are
    averaged. Pairs never compared count as ties.

    >>> group_win_rates(3, {(0, 1): 1.0, (0, 2): 1.0, (1, 2): None})
    [1.0, 0.25, 0.25]
    >>> group_win_rates(2, {(0, 1): 1.0, (1, 0): 1.0})  # each order prefers the first shown: a tie
    [0.5, 0.5]
    >>> group_win_rates(1, {})
    [0.5]
    """
    if n < 1:
        raise ValueError("a group needs at least one candidate")
    if n == 1:
        return [0.5]
    sums = [[0.0, 0] for _ in range(n)]  # per pair i<j: total preference for i and count
    pair_scores: dict[tuple[int, int], list[float]] = {}
    for (i, j), p in outcomes.items():
        if i == j or not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"bad pair index {(i, j)} for a group of {n}")
        p = preference_of_first(p)
        key, value = ((i, j), p) if i < j else ((j, i), 1.0 - p)
        pair_scores.setdefault(key, []).append(value)
    for i in range(n):
        for j in range(i + 1, n):
            values = pair_scores.get((i, j), [0.5])
            p_i = sum(values) / len(values)
            sums[i][0] += p_i
            sums[j][0] += 1.0 - p_i
            sums[i][1] += 1
            sums[j][1] += 1
    return [total / count for total, count in sums]


def best_index(rewards: Sequence[float]) -> int:
    """Index of the highest reward (the first one on ties).

    >>> best_index([0.2, 0.9, 0.9])
    1
    """
    if not rewards:
        raise ValueError("no rewards")
    return max(range(len(rewards)), key=lambda i: (rewards[i], -i))


def dpo_pair(rewards: Sequence[float], min_margin: float = 0.0) -> tuple[int, int] | None:
    """Indices (chosen, rejected) of the best and the worst reward, the first one on ties; ``None``
    when they differ by ``min_margin`` or less (no preference signal to learn from).

    >>> dpo_pair([0.25, 1.0, 0.0, 1.0]), dpo_pair([0.5, 0.5]), dpo_pair([0.4, 0.6], min_margin=0.2)
    ((1, 2), None, None)
    """
    hi = best_index(rewards)
    lo = min(range(len(rewards)), key=lambda i: (rewards[i], i))
    if hi == lo or rewards[hi] - rewards[lo] <= min_margin:
        return None
    return hi, lo


def pointwise_rewards(scores: Sequence[float | None]) -> list[float]:
    """Pointwise rewards: the parsed score, or the mean of the parsed ones for an unparsed answer
    (a neutral advantage, as a tie is in pairwise mode); 0.0 when nothing parsed.

    >>> pointwise_rewards([8.0, None, 6.0]), pointwise_rewards([None])
    ([8.0, 7.0, 6.0], [0.0])
    """
    valid = [s for s in scores if s is not None]
    fill = sum(valid) / len(valid) if valid else 0.0
    return [float(s) if s is not None else fill for s in scores]
