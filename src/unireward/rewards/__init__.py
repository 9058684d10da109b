"""Rewards, in one home.

- :mod:`~unireward.rewards.policy`: the judge's own GRPO rewards (format, accuracy, strict format,
  consistency, any protocol's verdict), pure, with TRL's reward signature;
- :mod:`~unireward.rewards.group`: pure group aggregation for a generator's rewards (majority with
  share, win rates, best of N, DPO picks, pointwise fill);
- :mod:`~unireward.rewards.remote`: :class:`RemoteGroupReward`, a generator's GRPO reward from a
  ``unireward serve`` endpoint (loaded on first use: it is an HTTP client);
- :mod:`~unireward.rewards.adapters`: the entry points verl (``compute_score``, re-exported here for
  ``pkg://unireward.rewards``) and EasyR1 load.
"""

from __future__ import annotations

from typing import Any

from unireward.rewards.adapters.verl import compute_score
from unireward.rewards.group import (
    best_index,
    dpo_pair,
    group_win_rates,
    majority_share,
    pointwise_rewards,
    preference_of_first,
    swap_agreement,
    unswap,
)
from unireward.rewards.policy import (
    REWARD_FUNCTIONS,
    accuracy_reward,
    completion_text,
    consistency_reward,
    format_reward,
    get_reward_functions,
    make_protocol_reward,
    position_consistency_reward,
    protocol_reward,
    strict_format_reward,
)

_REMOTE = ("RemoteGroupReward", "RemoteRewardError", "encode_medium")


def __getattr__(name: str) -> Any:
    if name in _REMOTE:  # the HTTP client, only when asked for
        from unireward.rewards import remote

        return getattr(remote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REWARD_FUNCTIONS",
    "RemoteGroupReward",
    "RemoteRewardError",
    "accuracy_reward",
    "best_index",
    "completion_text",
    "compute_score",
    "consistency_reward",
    "dpo_pair",
    "encode_medium",
    "format_reward",
    "get_reward_functions",
    "group_win_rates",
    "majority_share",
    "make_protocol_reward",
    "pointwise_rewards",
    "position_consistency_reward",
    "position_consistency_reward",
    "preference_of_first",
    "protocol_reward",
    "strict_format_reward",
    "swap_agreement",
    "unswap",
]
