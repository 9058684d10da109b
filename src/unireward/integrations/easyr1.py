"""Moved to :mod:`unireward.rewards.adapters.easyr1`; this file keeps working as EasyR1's
``reward_function`` path (it is loaded by path, so it holds the entry point itself)."""

from unireward.rewards.adapters.easyr1 import REWARD_NAME, REWARD_TYPE, compute_score

__all__ = ["REWARD_NAME", "REWARD_TYPE", "compute_score"]
