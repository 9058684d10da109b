"""Judging: the :class:`Judge` API, its backends, and generator rewards built on it."""

from unireward.judge.aggregate import group_win_rates, majority_vote, swap_agreement
from unireward.judge.backends import (
    Backend,
    BatchingBackend,
    Generation,
    HTTPBackend,
    SamplingParams,
    TransformersBackend,
)
from unireward.judge.base import BaseJudge
from unireward.judge.generator import Group, GroupRewards, best_of_n, build_dpo_pairs, group_rewards
from unireward.judge.judge import Judge, JudgeResult
from unireward.judge.openai_http import ChatClient, ChatError, ChatResponse, encode_messages
from unireward.judge.options import BatchOptions, JudgeOptions

__all__ = [
    "Backend",
    "BaseJudge",
    "BatchOptions",
    "BatchingBackend",
    "ChatClient",
    "ChatError",
    "ChatResponse",
    "Generation",
    "Group",
    "GroupRewards",
    "HTTPBackend",
    "Judge",
    "JudgeOptions",
    "JudgeResult",
    "SamplingParams",
    "TransformersBackend",
    "best_of_n",
    "build_dpo_pairs",
    "encode_messages",
    "group_rewards",
    "group_win_rates",
    "majority_vote",
    "swap_agreement",
]
