"""Moved to :mod:`unireward.rewards.group`; this path keeps working.

``majority_vote`` here is the old name of :func:`unireward.rewards.group.majority_share` (winner and
share of votes for the first candidate); :func:`unireward.metrics.majority_vote` is the plain
most-common vote.
"""

from unireward.rewards.group import (
    best_index,
    group_win_rates,
    majority_share,
    preference_of_first,
    swap_agreement,
    unswap,
)

majority_vote = majority_share  # the old name

__all__ = [
    "best_index",
    "group_win_rates",
    "majority_share",
    "majority_vote",
    "preference_of_first",
    "swap_agreement",
    "unswap",
]
