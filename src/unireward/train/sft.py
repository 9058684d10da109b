"""SFT on chain-of-thought records (cold start and the rejection-sampling stage), on TRL's SFTTrainer.

Data are prompt/completion pairs, so the loss covers the completion only; images (and video frames,
passed as images because TRL drops video inputs) sit in an ``images`` column. ``max_length=None``
so image tokens are never cut. The vision tower is frozen by default, as in the paper.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unireward.manifest import Manifest, begin_run, file_fingerprint, model_fingerprint
from unireward.media import VisionBudget
from unireward.models.family import resolve_budget
from unireward.rows import read_rows, replace_json
from unireward.train.records import iter_rows, to_dataset

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
    """Settings every training stage shares (keyword-only, so stage configs keep their own order)."""

    freeze_vision: bool = True
    lora: LoraSettings | None = None
    bf16: bool = False
    gradient_checkpointing: bool = False
    save_total_limit: int = 2
    seed: int = 0
    deepspeed: str | None = None
    #: a VisionBudget, or overrides of the model family's default (see ``models.family.resolve_budget``)
    budget: VisionBudget | dict[str, Any] | None = None
    #: start afresh when ``output_dir`` holds checkpoints or a ``final/`` trained with other settings
    overwrite: bool = False

    def _coerce_common(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if isinstance(self.budget, dict):
            VisionBudget(**self.budget)  # fail on construction; the family's factor is added at run time
        if self.save_total_limit < 1:
            raise ValueError("save_total_limit must be >= 1")

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
_NOT_SHAPING = ("output_dir", "overwrite", "save_steps", "save_total_limit", "logging_steps", "deepspeed")


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


def run_sft(cfg: SFTStageConfig, callbacks: list[Any] | None = None) -> Path:
    """Train and save ``output_dir/final`` (model + processor); resumes from the newest checkpoint."""
    from trl import SFTConfig, SFTTrainer

    out = Path(cfg.output_dir)
    final = out / "final"
    begin_stage("sft", cfg)
    if (final / "config.json").exists():
        log.info("%s already trained with these settings; skipping", final)
        return final
    records = read_rows(cfg.train_file, required=("pair",))
    if not records:
        raise ValueError(f"{cfg.train_file}: no SFT records")
    errors: list[str] = []
    budget = resolve_budget(cfg.budget, cfg.model, cfg.family)
    rows = list(iter_rows(records, cfg.media_root, budget, with_completion=True, errors=errors, family=cfg.template_family))
    if not rows:
        raise ValueError(f"{cfg.train_file}: every record failed to load ({errors[:3]})")
    dataset = to_dataset(rows)
    model, processor, fam = load_policy(cfg.model, cfg.family, cfg.freeze_vision, cfg.lora)
    args = SFTConfig(
        output_dir=str(out), learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler_type, weight_decay=cfg.weight_decay, bf16=cfg.bf16,
        gradient_checkpointing=cfg.gradient_checkpointing, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps, seed=cfg.seed, report_to=[],
        max_length=None, completion_only_loss=True, remove_unused_columns=False, dataloader_num_workers=0,
        deepspeed=cfg.deepspeed, disable_tqdm=False,
    )  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor, callbacks=callbacks or [])
    trainer.train(resume_from_checkpoint=latest_checkpoint(out))
    if trainer.is_world_process_zero():
        to_save = trainer.model.merge_and_unload() if cfg.lora is not None else trainer.model
        to_save.save_pretrained(final)
        processor.save_pretrained(final)
        replace_json(out / "sft_summary.json", {
            "records": len(records), "rows": len(rows), "load_errors": errors, "steps": trainer.state.global_step,
            "log_history": trainer.state.log_history, "config": cfg.to_dict(),
        })  # fmt: skip
    trainer.accelerator.wait_for_everyone()
    return final
