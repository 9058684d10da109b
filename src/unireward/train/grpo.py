"""Stage 3: GRPO on the pairs rejection sampling got wrong, on TRL's GRPOTrainer.

Rewards are the paper's ``format + accuracy`` (0-2) unless configured otherwise; the strict format
and consistency rewards are there to close the known hacks. Videos go in as frame images: TRL
silently trains without a video passed as a video. TRL logs ``frac_reward_zero_std`` (groups whose
G completions all got the same reward, hence no gradient); the stage summary keeps it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unireward.models.family import resolve_budget
from unireward.rewards import get_reward_functions
from unireward.rows import read_rows, replace_json
from unireward.train.records import iter_rows, to_dataset
from unireward.train.sft import TrainerCommon, begin_stage, latest_checkpoint, load_policy

log = logging.getLogger(__name__)


@dataclass
class GRPOStageConfig(TrainerCommon):
    """One GRPO run. Defaults follow the paper: G=8, beta 0.04, lr 1e-6, temperature 1.0, top-p 0.95
    (the official Qwen script), the original GRPO loss with per-group std scaling."""

    model: str
    train_file: str
    output_dir: str
    media_root: str | None = None
    family: str | None = None
    template_family: str | None = None
    rewards: tuple[str, ...] = ("format", "accuracy")
    reward_weights: tuple[float, ...] | None = None
    num_generations: int = 8
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-6
    beta: float = 0.04
    temperature: float = 1.0
    top_p: float = 0.95
    max_completion_length: int = 4096
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    num_train_epochs: float = 1.0
    max_steps: int = -1
    warmup_ratio: float = 0.0
    lr_scheduler_type: str = "constant"
    save_steps: int = 200
    logging_steps: int = 1
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = 0.3

    def __post_init__(self) -> None:
        get_reward_functions(self.rewards)  # validates the names
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ValueError("reward_weights needs one weight per reward")
        if self.num_generations < 2:
            raise ValueError("GRPO needs num_generations >= 2 (advantages are relative within a group)")
        if (self.per_device_train_batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ValueError("per_device_train_batch_size x gradient_accumulation_steps must be a multiple of num_generations")
        if self.beta < 0 or self.learning_rate <= 0 or self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("need beta >= 0, learning_rate > 0, temperature > 0, 0 < top_p <= 1")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError("scale_rewards must be 'group', 'batch' or 'none'")
        if self.vllm_mode not in ("colocate", "server"):
            raise ValueError("vllm_mode must be 'colocate' or 'server'")
        if self.max_steps == 0 or (self.max_steps < 0 and self.num_train_epochs <= 0):
            raise ValueError("set max_steps > 0 or num_train_epochs > 0")
        self._coerce_common()
        self.rewards = tuple(self.rewards)

    def trl_args(self) -> Any:
        from trl import GRPOConfig

        extra: dict[str, Any] = {}
        if self.use_vllm:
            extra = {"use_vllm": True, "vllm_mode": self.vllm_mode, "vllm_gpu_memory_utilization": self.vllm_gpu_memory_utilization}
            if self.vllm_server_base_url:
                extra["vllm_server_base_url"] = self.vllm_server_base_url
        return GRPOConfig(
            output_dir=self.output_dir, learning_rate=self.learning_rate, beta=self.beta,
            num_generations=self.num_generations, per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, temperature=self.temperature,
            top_p=self.top_p, max_completion_length=self.max_completion_length, loss_type=self.loss_type,
            scale_rewards=self.scale_rewards, num_train_epochs=self.num_train_epochs, max_steps=self.max_steps,
            warmup_steps=self.warmup_ratio, lr_scheduler_type=self.lr_scheduler_type,
            reward_weights=list(self.reward_weights) if self.reward_weights else None, bf16=self.bf16,
            gradient_checkpointing=self.gradient_checkpointing, save_strategy="steps", save_steps=self.save_steps,
            save_total_limit=self.save_total_limit, logging_steps=self.logging_steps, seed=self.seed,
            report_to=[], remove_unused_columns=False, deepspeed=self.deepspeed,
            **extra,
        )  # fmt: skip


def grpo_dataset(cfg: GRPOStageConfig) -> tuple[Any, list[str]]:
    records = read_rows(cfg.train_file, required=("pair",))
    errors: list[str] = []
    budget = resolve_budget(cfg.budget, cfg.model, cfg.family)
    rows = list(iter_rows(records, cfg.media_root, budget, with_completion=False, errors=errors, family=cfg.template_family))
    rows = [r for r in rows if r["label"] is not None]  # no tie verdict exists in the protocol
    if not rows:
        raise ValueError(f"{cfg.train_file}: no usable GRPO prompts ({errors[:3]})")
    return to_dataset(rows), errors


def run_grpo(
    cfg: GRPOStageConfig, callbacks: list[Any] | None = None, dataset: Any = None, reward_funcs: list[Any] | None = None
) -> Path:
    """Train and save ``output_dir/final``; resumes from the newest checkpoint.

    ``reward_funcs`` replaces the named rewards of ``cfg`` (any TRL reward callables)."""
    from trl import GRPOTrainer

    out = Path(cfg.output_dir)
    final = out / "final"
    begin_stage("grpo", cfg)
    if (final / "config.json").exists():
        log.info("%s already trained with these settings; skipping", final)
        return final
    errors: list[str] = []
    if dataset is None:
        dataset, errors = grpo_dataset(cfg)
    model, processor, fam = load_policy(cfg.model, cfg.family, cfg.freeze_vision, cfg.lora)
    trainer = GRPOTrainer(
        model=model, reward_funcs=reward_funcs or get_reward_functions(cfg.rewards), args=cfg.trl_args(),
        train_dataset=dataset, processing_class=processor, callbacks=callbacks or [],
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=latest_checkpoint(out))
    if trainer.is_world_process_zero():
        to_save = trainer.model.merge_and_unload() if cfg.lora is not None else trainer.model
        to_save.save_pretrained(final)
        processor.save_pretrained(final)
        history = trainer.state.log_history
        zero = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
        replace_json(out / "grpo_summary.json", {
            "prompts": len(dataset), "load_errors": errors, "steps": trainer.state.global_step,
            "mean_frac_reward_zero_std": sum(zero) / len(zero) if zero else None,
            "log_history": history, "config": cfg.to_dict(),
        })  # fmt: skip
    trainer.accelerator.wait_for_everyone()
    return final
