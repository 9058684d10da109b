"""TRL settings passed through: any ``SFTConfig`` / ``GRPOConfig`` field, checked against TRL's own dataclass.

A stage config keeps typed fields only where the project adds meaning (the paper's defaults, the
vision budget, the reward names); every other trainer setting is a TRL field given by its TRL name,
in a recipe's ``trl:`` block, a ``--config`` file or ``--trl KEY=VALUE``. Precedence is one rule:
explicit flags > config file > recipe > defaults.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import fields
from typing import Any

log = logging.getLogger(__name__)

#: set by the stage itself (its reason in the value): refused in ``trl`` so they cannot drift
MANAGED = {
    "output_dir": "the stage's output_dir",
    "remove_unused_columns": "the media and label columns must reach the trainer",
    "max_length": "image tokens must never be cut (SFT keeps max_length=None)",
    "completion_only_loss": "the loss covers the judgment only",
    "gradient_checkpointing": "set the stage's gradient_checkpointing",
    "activation_checkpointing": "set the stage's gradient_checkpointing",
}

REPORT_TO = ("none", "tensorboard", "wandb", "trackio", "all")


def trl_class(kind: str) -> type:
    """TRL's config dataclass for a stage kind (``"sft"`` or ``"grpo"``)."""
    if kind == "sft":
        from trl import SFTConfig

        return SFTConfig
    if kind == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    raise ValueError(f"unknown trainer kind {kind!r}")


def trl_field_names(kind: str) -> frozenset[str]:
    return frozenset(f.name for f in fields(trl_class(kind)) if f.init)


def unknown_key_error(where: str, key: str, allowed: set[str] | frozenset[str]) -> ValueError:
    """A ``ValueError`` naming the key, with the closest allowed names.

    >>> str(unknown_key_error("grpo", "num_generation", {"num_generations", "beta"}))
    "grpo: unknown setting 'num_generation' (did you mean 'num_generations'?)"
    """
    close = difflib.get_close_matches(key, sorted(allowed), n=3)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return ValueError(f"{where}: unknown setting {key!r}{hint}")


def split_settings(values: dict[str, Any], own: set[str], kind: str, where: str) -> dict[str, Any]:
    """Route flat settings: the stage's own fields stay, other TRL fields go to ``trl``.

    A key that is neither is refused by name; a ``trl`` block given inside ``values`` is merged
    (a key set both flat and in ``trl`` is refused, so there is one place for each).
    """
    out = {k: v for k, v in values.items() if k in own and k != "trl"}
    trl = dict(values.get("trl") or {})
    names = trl_field_names(kind)
    for key, value in values.items():
        if key in own or key == "trl":
            continue
        if key not in names:
            raise unknown_key_error(where, key, set(own) | names)
        if key in trl:
            raise ValueError(f"{where}: {key!r} is set both directly and in the trl block")
        trl[key] = value
    if trl:
        out["trl"] = trl
    return out


def check_trl_block(trl: dict[str, Any], own: set[str], kind: str, where: str) -> dict[str, Any]:
    """Validate a ``trl`` block against TRL's dataclass; returns the keys that are the stage's own
    typed fields (lifted out of the block), the rest stays in ``trl``."""
    names = trl_field_names(kind)
    lifted: dict[str, Any] = {}
    for key in list(trl):
        if key in MANAGED:
            raise ValueError(f"{where}: trl.{key} is managed by the stage ({MANAGED[key]})")
        if key not in names:
            raise unknown_key_error(f"{where}: trl", key, names)
        if key in own:
            lifted[key] = trl.pop(key)
    return lifted


def normalise_report_to(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``--report-to`` values as a tuple, validated; ``none`` alone means no tracker.

    >>> normalise_report_to("tensorboard,wandb")
    ('tensorboard', 'wandb')
    >>> normalise_report_to(None)
    ('none',)
    """
    if value is None:
        return ("none",)
    items = tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
    bad = [v for v in items if v not in REPORT_TO]
    if bad or not items:
        raise ValueError(f"report_to: unknown tracker(s) {bad or items}; choose from {REPORT_TO}")
    if "none" in items and len(items) > 1:
        raise ValueError("report_to: 'none' cannot be combined with a tracker")
    return items


def build_trl_config(kind: str, ours: dict[str, Any], trl: dict[str, Any]) -> Any:
    """TRL's config from the stage's values and its ``trl`` block; TRL's own checks run here and a
    failure names the stage's settings."""
    cls = trl_class(kind)
    values = dict(ours)
    names = trl_field_names(kind)
    gc = values.pop("gradient_checkpointing", False)
    # transformers 5.2x renamed gradient_checkpointing (the old name warns); use whichever exists.
    values["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = gc
    values.update(trl)
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{kind} trainer settings rejected by TRL: {e}") from None


def world_size() -> int:
    """Processes of this launch, as TRL counts them (``WORLD_SIZE`` from the launcher; 1 alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_generation_batch(per_device: int, steps_per_generation: int, num_generations: int, num_processes: int,
                           generation_batch_size: int | None = None) -> None:  # fmt: skip
    """TRL's rule: one generation batch holds whole groups of ``num_generations`` completions, and it
    is ``per_device x num_processes x steps_per_generation`` (steps per generation default to the
    gradient accumulation).

    >>> check_generation_batch(1, 1, 8, 8)  # the paper: batch 1, G=8, on 8 GPUs
    >>> check_generation_batch(1, 1, 8, 1)
    Traceback (most recent call last):
    ...
    ValueError: GRPO: per_device_train_batch_size (1) x processes (1) x steps_per_generation (1) = 1 completions per generation batch, not a multiple of num_generations (8)
    """
    total = generation_batch_size or per_device * num_processes * steps_per_generation
    if total % num_generations:
        raise ValueError(
            f"GRPO: per_device_train_batch_size ({per_device}) x processes ({num_processes}) x steps_per_generation "
            f"({steps_per_generation}) = {total} completions per generation batch, not a multiple of "
            f"num_generations ({num_generations})"
        )
