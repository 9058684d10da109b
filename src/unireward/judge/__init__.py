"""Judging: the :class:`Judge` API, its backends, and generator rewards built on it.

Names load on first use (as TRL's ``_LazyModule`` does): ``import unireward.judge`` (and so every
``unireward`` command's start-up) does not import torch or transformers until a backend is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "unireward.judge.backends": (
        "Backend", "BatchingBackend", "Generation", "HTTPBackend", "SamplingParams", "TransformersBackend",
    ),
    "unireward.judge.base": ("BaseJudge",),
    "unireward.judge.generator": ("Group", "GroupRewards", "best_of_n", "build_dpo_pairs", "group_rewards"),
    "unireward.judge.judge": ("Judge", "JudgeResult"),
    "unireward.judge.openai_http": ("ChatClient", "ChatError", "ChatResponse", "encode_messages"),
    "unireward.judge.options": ("BatchOptions", "JudgeOptions"),
    "unireward.judge.aggregate": ("group_win_rates", "majority_share", "majority_vote", "swap_agreement"),
}  # fmt: skip
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

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
    "majority_share",
    "majority_vote",
    "swap_agreement",
]  # the names of _EXPORTS (a test checks)

if TYPE_CHECKING:
    from unireward.judge.aggregate import group_win_rates, majority_share, majority_vote, swap_agreement
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
