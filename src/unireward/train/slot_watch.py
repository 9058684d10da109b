"""Watching a GRPO run for slot bias.

Two monitor functions with TRL's reward signature ride along with the rewards at weight 0, so TRL
logs their batch means each step without changing any advantage: ``first_slot_share`` (the share of
completions whose verdict names slot 1) and ``label_first_share`` (the share whose label is slot 1,
the batch's label prior). :class:`SlotWatch` reads them from the logs and warns once when the first
share drifts from the prior by more than ``bound`` for ``patience`` logged steps in a row: a judge
learning the slot instead of the task (what a label-skewed GRPO set rewards).
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

from unireward.protocol.parser import parse_judgment
from unireward.protocol.tasks import Task, label_to_winner
from unireward.rewards import completion_text

log = logging.getLogger(__name__)

FIRST_KEY = "rewards/first_slot_share/mean"
PRIOR_KEY = "rewards/label_first_share/mean"


def first_slot_share(completions: list[Any], task: list[Any], **kwargs: Any) -> list[float]:
    """1.0 for each completion whose verdict (lenient parser) names slot 1, else 0.0.

    >>> first_slot_share(["<think>t</think><answer>Image 1 is better</answer>", "<answer>Image 2 is better</answer>", "?"],
    ...                  task=["image_generation"] * 3)
    [1.0, 0.0, 0.0]
    """
    return [1.0 if parse_judgment(completion_text(c), Task.parse(t)).winner == 1 else 0.0 for c, t in zip(completions, task, strict=True)]


def label_first_share(completions: list[Any], label: list[Any], task: list[Any], **kwargs: Any) -> list[float]:
    """1.0 for each completion whose prompt's label is slot 1, else 0.0 (its mean is the label prior).

    >>> label_first_share(["a", "b"], label=["Video 1 is better", "Video 2 is better"], task=["video_generation"] * 2)
    [1.0, 0.0]
    """
    return [1.0 if label_to_winner(Task.parse(t), str(lab)) == 1 else 0.0 for lab, t in zip(label, task, strict=True)]


MONITORS = (first_slot_share, label_first_share)


class SlotWatch(TrainerCallback):
    """Collects each logged step's first-slot share, label prior and zero-variance fraction; warns
    once when ``|share - prior| > bound`` for ``patience`` logged steps in a row (0 turns it off).

    >>> w = SlotWatch(bound=0.25, patience=2)
    >>> for share in (0.5, 0.9, 0.95):
    ...     w.observe(step=len(w.steps) + 1, share=share, prior=0.5, zero_std=0.25)
    >>> print(w.warning)
    the share of completions naming slot 1 was more than 0.25 from the batch's label prior for 2 logged steps in a row (to step 3: 0.95 against 0.50): the judge is learning the slot, not the task; balance the candidate order (order_balance: swap_half or both_orders)
    """

    def __init__(self, bound: float = 0.25, patience: int = 5):
        self.bound, self.patience = bound, patience
        self.steps: list[dict[str, float]] = []
        self.run = 0
        self.warning: str | None = None

    def observe(self, step: int, share: float, prior: float, zero_std: float | None) -> None:
        self.steps.append({"step": step, "first_slot_share": share, "label_first_share": prior, "frac_reward_zero_std": zero_std})  # type: ignore[dict-item]
        self.run = self.run + 1 if abs(share - prior) > self.bound else 0
        if self.patience and self.run == self.patience and self.warning is None:
            self.warning = (
                f"the share of completions naming slot 1 was more than {self.bound} from the batch's label prior for "
                f"{self.patience} logged steps in a row (to step {step}: {share:.2f} against {prior:.2f}): the judge is "
                "learning the slot, not the task; balance the candidate order (order_balance: swap_half or both_orders)"
            )
            log.warning(self.warning)

    def summary(self) -> dict[str, Any]:
        """Means over the logged steps, the per-step values and the warning (for ``grpo_summary.json``)."""
        n = len(self.steps)
        mean = {k: (sum(s[k] for s in self.steps if s[k] is not None) / n if n else None) for k in ("first_slot_share", "label_first_share")}
        return {"bound": self.bound, "patience": self.patience, **{f"mean_{k}": v for k, v in mean.items()},
                "steps": self.steps, "warning": self.warning}  # fmt: skip

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and FIRST_KEY in logs and PRIOR_KEY in logs and state.is_world_process_zero:
            zero = logs.get("frac_reward_zero_std")
            self.observe(state.global_step, float(logs[FIRST_KEY]), float(logs[PRIOR_KEY]), None if zero is None else float(zero))
