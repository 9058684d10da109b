"""verl entry point: the paper's format + accuracy reward in verl's ``compute_score`` shape.

verl loads it with ``custom_reward_function.path=pkg://unireward.rewards
custom_reward_function.name=compute_score`` (the package re-exports it).
"""

from __future__ import annotations

from typing import Any

from unireward.rewards.policy import accuracy_reward, format_reward


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None
) -> dict[str, float]:
    """verl custom-reward entry point: ``{"score", "format", "accuracy"}`` (score = sum, 0-2). EasyR1 calls
    rewards in another shape: use :mod:`unireward.rewards.adapters.easyr1`.

    ``ground_truth`` is the verdict string, or 1/2 with ``extra_info["task"]``.

    >>> compute_score("unireward", "<think>x</think><answer>Answer 2 is better</answer>", "Answer 2 is better")
    {'score': 2.0, 'format': 1.0, 'accuracy': 1.0}
    >>> compute_score("unireward", "<think>x</think><answer>Video 1 is better</answer>", 1, {"task": "video_generation"})
    {'score': 2.0, 'format': 1.0, 'accuracy': 1.0}
    """
    task = (extra_info or {}).get("task")
    fmt = format_reward([solution_str])[0]
    acc = accuracy_reward([solution_str], label=[ground_truth], task=[task])[0]
    return {"score": fmt + acc, "format": fmt, "accuracy": acc}
