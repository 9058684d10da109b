"""Moved to :mod:`unireward.rewards.remote`; this path keeps working."""

from unireward.rewards.remote import RemoteGroupReward, RemoteRewardError, encode_medium

__all__ = ["RemoteGroupReward", "RemoteRewardError", "encode_medium"]
