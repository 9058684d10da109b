"""Trainer callbacks the stages add to TRL's trainers."""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class ZeroStdWatch(TrainerCallback):
    """Warn once when ``frac_reward_zero_std`` stays at 1 for ``patience`` logged steps in a row.

    At 1 every group of completions got one reward for all its members: every advantage is 0 and
    GRPO learns nothing (typically a model that never writes the format, or never gets one right).

    >>> w = ZeroStdWatch(patience=2)
    >>> for v in (1.0, 0.5, 1.0, 1.0):
    ...     w.observe(step=len(w.seen) + 1, value=v)
    >>> w.warning
    'frac_reward_zero_std was 1.0 for 2 logged steps in a row (to step 4): every group had one reward for all its completions, so no advantage and no learning; check the format reward and the data, or sample with a higher temperature'
    """

    def __init__(self, patience: int = 10):
        self.patience = patience
        self.run = 0
        self.seen: list[float] = []
        self.warning: str | None = None

    def observe(self, step: int, value: float) -> None:
        self.seen.append(value)
        self.run = self.run + 1 if value >= 1.0 - 1e-9 else 0
        if self.patience and self.run == self.patience and self.warning is None:
            self.warning = (
                f"frac_reward_zero_std was 1.0 for {self.patience} logged steps in a row (to step {step}): every "
                "group had one reward for all its completions, so no advantage and no learning; check the format "
                "reward and the data, or sample with a higher temperature"
            )
            log.warning(self.warning)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "frac_reward_zero_std" in logs and state.is_world_process_zero:
            self.observe(state.global_step, float(logs["frac_reward_zero_std"]))
