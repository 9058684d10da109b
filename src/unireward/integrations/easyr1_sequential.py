"""EasyR1's reward entry in sequential mode: the file EasyR1 loads by path reads ``REWARD_TYPE``
from it, so a mode is a file (``worker.reward.reward_function=/path/to/easyr1_sequential.py:compute_score``)."""

from unireward.rewards.adapters.easyr1 import REWARD_NAME, compute_score

REWARD_TYPE = "sequential"

__all__ = ["REWARD_NAME", "REWARD_TYPE", "compute_score"]
