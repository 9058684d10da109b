"""SFT on chain-of-thought records (cold start and the rejection-sampling stage), on TRL's SFTTrainer.

Data are prompt/completion pairs, so the loss covers the completion only; images (and video frames,
passed as images because TRL drops video inputs) sit in an ``images`` column. ``max_length=None``
so image tokens are never cut. The vision tower is frozen by default, as in the paper.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from unireward.manifest import Manifest, begin_run, file_fingerprint, model_fingerprint
from unireward.media import VisionBudget
from unireward.models.family import resolve_budget
from unireward.rows import replace_json
from unireward.train.stream import lazy_dataset
from unireward.train.trl_settings import (
    build_trl_config,
    check_trl_block,
    normalise_report_to,
    trl_field_names,
)

log = logging.getLogger(__name__)


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0 <= self.dropout < 1:
            raise ValueError("LoRA needs r >= 1, alpha >= 1 and 0 <= dropout < 1")


@dataclass(kw_only=True)
class TrainerCommon:
    """Settings every training stage shares (keyword-only, so stage configs keep their own order).

    ``trl`` takes any other field of TRL's ``SFTConfig`` / ``GRPOConfig`` by its TRL name, checked
    against TRL's dataclass on construction."""

    #: TRL's config class behind the stage: "sft" or "grpo"
    TRAINER = "sft"

    freeze_vision: bool = True
    lora: LoraSettings | None = None
    bf16: bool = False
    gradient_checkpointing: bool = False
    save_total_limit: int = 2
    seed: int = 0
    #: a DeepSpeed JSON config (a recipe's relative path resolves against the recipe's folder)
    deepspeed: str | None = None
    #: "none", or trackers through TRL/transformers' integrations: tensorboard, wandb, trackio
    report_to: str | tuple[str, ...] = "none"
    #: train on the CPU even under a DeepSpeed launch (tests; off on GPUs)
    use_cpu: bool = False
    #: a VisionBudget, or overrides of the model family's default (see ``models.family.resolve_budget``)
    budget: VisionBudget | dict[str, Any] | None = None
    #: any other TRL trainer field, by its TRL name
    trl: dict[str, Any] = field(default_factory=dict)
    #: start afresh when ``output_dir`` holds checkpoints or a ``final/`` trained with other settings
    overwrite: bool = False

    def _coerce_common(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if isinstance(self.budget, dict):
            VisionBudget(**self.budget)  # fail on construction; the family's factor is added at run time
        if self.save_total_limit < 1:
            raise ValueError("save_total_limit must be >= 1")
        self.report_to = normalise_report_to(self.report_to)
        self.trl = dict(self.trl or {})
        own = {f.name for f in fields(self)} & trl_field_names(self.TRAINER)
        for key, value in check_trl_block(self.trl, own, self.TRAINER, type(self).__name__).items():
            setattr(self, key, value)  # a TRL name the stage types itself: one place for each setting

    def _trl_common(self) -> dict[str, Any]:
        """TRL fields every stage sets the same way."""
        return {
            "output_dir": self.output_dir, "bf16": self.bf16, "gradient_checkpointing": self.gradient_checkpointing,  # type: ignore[attr-defined]
            "save_strategy": "steps", "save_total_limit": self.save_total_limit, "seed": self.seed,
            "report_to": [] if self.report_to == ("none",) else list(self.report_to), "remove_unused_columns": False,
            "deepspeed": self.deepspeed, "use_cpu": self.use_cpu,
        }  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["budget"] = asdict(self.budget) if isinstance(self.budget, VisionBudget) else self.budget
        return d


@dataclass
class SFTStageConfig(TrainerCommon):
    """One SFT run. Defaults follow the paper (lr 2.5e-6, batch 1 x grad-accum 16, warm-up 0.3)."""

    model: str
    train_file: str
    output_dir: str
    media_root: str | None = None
    family: str | None = None
    template_family: str | None = None
    learning_rate: float = 2.5e-6
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 16
    warmup_ratio: float = 0.3
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    save_steps: int = 500
    logging_steps: int = 10

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.max_steps == 0 or (self.max_steps < 0 and self.num_train_epochs <= 0):
            raise ValueError("set max_steps > 0 or num_train_epochs > 0")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("batch size and gradient accumulation must be >= 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        self._coerce_common()

    def trl_args(self) -> Any:
        """TRL's ``SFTConfig``: the typed fields, then the ``trl`` block."""
        return build_trl_config("sft", {
            **self._trl_common(), "learning_rate": self.learning_rate, "num_train_epochs": self.num_train_epochs,
            "max_steps": self.max_steps, "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps, "warmup_steps": self.warmup_ratio,
            "lr_scheduler_type": self.lr_scheduler_type, "weight_decay": self.weight_decay,
            "save_steps": self.save_steps, "logging_steps": self.logging_steps, "max_length": None,
            "completion_only_loss": True, "dataloader_num_workers": 0, "disable_tqdm": False,
        }, self.trl)  # fmt: skip


def load_policy(model: str, family: str | None, freeze_vision: bool, lora: LoraSettings | None, train: bool = True) -> tuple[Any, Any, Any]:
    """Model, processor and family ready for training (vision frozen, LoRA applied)."""
    from unireward.models import load_model

    m, processor, fam = load_model(model, family=family)
    if freeze_vision:
        frozen = fam.freeze_vision(m)
        log.info("froze %d vision parameters", frozen)
    if lora is not None:
        from peft import LoraConfig, get_peft_model

        # LoRA only on the language model: the vision tower stays as it is.
        targets = [n for n, _ in m.named_modules()
                   if n.rsplit(".", 1)[-1] in lora.target_modules and not fam.is_vision_parameter(n + ".")]  # fmt: skip
        m = get_peft_model(m, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets))
    if train:
        m.train()
    return m, processor, fam


#: config fields that change how a run is saved or logged, not the weights it produces
_NOT_SHAPING = ("output_dir", "overwrite", "save_steps", "save_total_limit", "logging_steps", "deepspeed", "report_to",
                "use_cpu")


def begin_stage(command: str, cfg: TrainerCommon) -> str:
    """Check ``output_dir`` against this run's settings before training (see :func:`unireward.manifest.begin_run`):
    a ``final/`` or checkpoints made from another base model, data or hyper-parameters are refused, not reused."""
    out = Path(cfg.output_dir)  # type: ignore[attr-defined]
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_SHAPING}
    settings["model_fingerprint"] = model_fingerprint(settings["model"])
    train_file = Path(settings["train_file"])
    settings["train_file_fingerprint"] = file_fingerprint(train_file) if train_file.is_file() else None
    produced = [out / "final", *sorted(out.glob("checkpoint-*"))]
    return begin_run(out, Manifest(command, settings), produced, overwrite=cfg.overwrite)


def latest_checkpoint(output_dir: str | Path) -> str | None:
    ckpts = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1)
    return str(ckpts[-1]) if ckpts else None


def zero3(trainer: Any) -> bool:
    """Whether the trainer runs DeepSpeed ZeRO stage 3 (parameters sharded across ranks)."""
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None) if trainer.is_deepspeed_enabled else None
    return plugin is not None and plugin.zero_stage == 3


def check_lora_sharding(trainer: Any, lora: bool) -> None:
    if lora and zero3(trainer):
        raise ValueError("LoRA merged on save needs whole weights; ZeRO-3 shards them: use ZeRO-2 for LoRA")


def launch_info(trainer: Any) -> dict[str, Any]:
    """How the run was distributed, for the stage summary: accelerate's view, the ZeRO stage and
    the optimizer that really stepped (DeepSpeed's CPU Adam under optimizer offload)."""
    acc = trainer.accelerator
    info: dict[str, Any] = {"distributed_type": str(acc.distributed_type.value), "num_processes": acc.num_processes,
                            "device": str(acc.device)}  # fmt: skip
    if trainer.is_deepspeed_enabled:
        engine = trainer.model_wrapped
        info["zero_stage"] = acc.state.deepspeed_plugin.zero_stage
        info["optimizer"] = type(getattr(engine, "basic_optimizer", None) or trainer.optimizer).__name__
    else:
        info["optimizer"] = type(getattr(trainer.optimizer, "optimizer", trainer.optimizer)).__name__
    return info


def save_final(trainer: Any, processor: Any, final: Path, merge_lora: bool) -> None:
    """Save the trained model and processor to ``final``. Under ZeRO-3 every rank takes part: the
    weights are sharded and ``save_model`` gathers them collectively (rank 0 writes)."""
    if zero3(trainer):
        trainer.save_model(str(final))
    elif trainer.is_world_process_zero():
        to_save = trainer.model.merge_and_unload() if merge_lora else trainer.model
        to_save.save_pretrained(final)
    if trainer.is_world_process_zero():
        processor.save_pretrained(final)
    trainer.accelerator.wait_for_everyone()


def run_sft(cfg: SFTStageConfig, callbacks: list[Any] | None = None) -> Path:
    """Train and save ``output_dir/final`` (model + processor); resumes from the newest checkpoint."""
    from trl import SFTTrainer

    out = Path(cfg.output_dir)
    final = out / "final"
    begin_stage("sft", cfg)
    if (final / "config.json").exists():
        log.info("%s already trained with these settings; skipping", final)
        return final
    errors: list[str] = []
    budget = resolve_budget(cfg.budget, cfg.model, cfg.family)
    args = cfg.trl_args()
    # rows indexed on disk, media loaded per batch: memory follows the batch, not the data
    dataset = lazy_dataset(cfg.train_file, out / "rows.arrow", "sft", cfg.media_root, budget, cfg.template_family,
                           errors, args.main_process_first)  # fmt: skip
    if len(dataset) == 0:
        raise ValueError(f"{cfg.train_file}: no usable SFT record ({errors[:3]})")
    model, processor, fam = load_policy(cfg.model, cfg.family, cfg.freeze_vision, cfg.lora)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor, callbacks=callbacks or [])
    check_lora_sharding(trainer, cfg.lora is not None)
    trainer.train(resume_from_checkpoint=latest_checkpoint(out))
    save_final(trainer, processor, final, merge_lora=cfg.lora is not None)
    if trainer.is_world_process_zero():
        replace_json(out / "sft_summary.json", {
            "records": len(dataset) + len(errors), "rows": len(dataset), "load_errors": errors, "steps": trainer.state.global_step,
            "launch": launch_info(trainer),
            "log_history": trainer.state.log_history, "config": cfg.to_dict(),
        })  # fmt: skip
    trainer.accelerator.wait_for_everyone()
    return final
