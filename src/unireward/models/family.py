"""Model-family adapters: one class per family says how to load, feed and freeze it.

Every stage talks to a model through a :class:`ModelFamily`, so adding a family (Qwen3-VL,
LLaVA-OneVision) means one new adapter, not new judge/train code.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from unireward.media import VisionBudget

_FAMILIES: dict[str, ModelFamily] = {}


class ModelLoadError(RuntimeError):
    """A model or processor that cannot be loaded, with what to do about it."""


class ModelFamily(ABC):
    name: str = ""
    model_types: tuple[str, ...] = ()
    #: module-name prefixes of the vision tower (frozen by default in every stage)
    vision_prefixes: tuple[str, ...] = ()
    #: side multiple of the vision encoder input
    factor: int = 28

    @abstractmethod
    def model_class(self) -> type: ...

    @abstractmethod
    def build_tiny(self, out_dir: str | os.PathLike[str], seed: int = 0, **sizes: Any) -> Path: ...

    def processor_kwargs(self, budget: VisionBudget) -> dict[str, Any]:
        """Keyword arguments for ``processor(...)`` that keep its own resizing within the budget."""
        return {}

    def video_kwargs(self, videos: list[Any]) -> dict[str, Any]:
        """Extra ``processor(...)`` arguments for these videos (already-sampled frame lists)."""
        return {}

    def expected_image_tokens(self, width: int, height: int, processor: Any = None) -> int | None:
        """Vision tokens the processor gives one ``width`` x ``height`` image (already resized by
        :mod:`unireward.media`); ``None`` where the family cannot say. The default is one token per
        ``factor`` x ``factor`` cell; tiling families (LLaVA-OV) work it out from ``processor``."""
        return (width // self.factor) * (height // self.factor)

    def expected_video_tokens(self, frames: int, processor: Any = None) -> int | None:
        """Vision tokens (and the text tokens the processor writes between frames) of one video of
        ``frames`` frames; ``None`` where the generic per-pixel estimate applies."""
        return None

    def budget(self, **overrides: Any) -> VisionBudget:
        """The default vision budget with this family's factor (``overrides`` may still set one)."""
        return VisionBudget(**{"factor": self.factor, **overrides})

    def is_vision_parameter(self, name: str) -> bool:
        return any(name.startswith(p) or f".{p}" in name for p in self.vision_prefixes)

    def freeze_vision(self, model: Any) -> int:
        """Freeze the vision tower; returns how many parameters were frozen."""
        n = 0
        for name, param in model.named_parameters():
            if self.is_vision_parameter(name):
                param.requires_grad_(False)
                n += param.numel()
        return n

    def load(self, model_id: str, dtype: str = "auto", device: str | None = None, **kwargs: Any) -> tuple[Any, Any]:
        """Model and processor from an HF id or a local folder; processor pads on the left."""
        from transformers import AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(model_id, padding_side="left")
            model = self.model_class().from_pretrained(model_id, dtype=dtype, **kwargs)
        except (OSError, ValueError) as e:  # hub errors are OSErrors; a malformed id is a ValueError
            raise ModelLoadError(_unreachable_message(model_id, e)) from None
        if device:
            model.to(device)
        tok = getattr(processor, "tokenizer", processor)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model.eval()
        return model, processor


def _looks_like_path(model_id: str) -> bool:
    return (
        os.path.isabs(model_id)
        or model_id.startswith((".", "~"))
        or model_id.count("/") > 1
        or os.sep in model_id.replace("/", "")
    )


def _unreachable_message(model_id: str, err: Exception) -> str:
    if Path(model_id).exists():
        return f"cannot load model from folder {model_id!r}: {err}"
    if _looks_like_path(model_id):
        return f"model folder {model_id!r} does not exist"
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model_id):
        return f"{model_id!r} is neither a local folder nor a Hugging Face model id (owner/name)"
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    hint = (
        "HF_HUB_OFFLINE=1 is set, so only the local cache is searched"
        if offline
        else "the Hugging Face Hub is not reachable and the model is not in the local cache"
    )
    return (
        f"cannot load {model_id!r}: {hint}. Download it on a machine with a network "
        f"(`hf download {model_id}`) and pass the local folder, or build a tiny "
        f"offline model with `unireward tiny-model DIR`."
    )


def register(family: ModelFamily) -> ModelFamily:
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> ModelFamily:
    key = name.replace("-", "_").replace(".", "_").lower()
    if key not in _FAMILIES:
        raise KeyError(f"unsupported model family {name!r}; supported: {sorted(_FAMILIES)}")
    return _FAMILIES[key]


def list_families() -> list[str]:
    return sorted(_FAMILIES)


def _checkpoint_config(model_id: str) -> dict[str, Any]:
    """A checkpoint's ``config.json`` as a dict, from a folder or the hub."""
    config_path = Path(model_id) / "config.json"
    if not config_path.is_file():
        from huggingface_hub import hf_hub_download

        try:
            config_path = Path(hf_hub_download(model_id, "config.json"))
        except Exception as e:  # offline, unknown repo, malformed id
            raise ModelLoadError(_unreachable_message(model_id, e)) from None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read {config_path}: {e}") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path} is not a JSON object")
    if "LlavaQwenForCausalLM" in (config.get("architectures") or []):
        raise ModelLoadError(
            f"{model_id!r} is an original LLaVA-NeXT llava_qwen checkpoint, which transformers cannot load; "
            f"convert it once with `unireward convert-llava {model_id} OUT_DIR` and pass OUT_DIR"
        )
    return config


def detect_family(model_id: str) -> ModelFamily:
    """The family of a checkpoint, from its ``config.json`` ``model_type``."""
    model_type = _checkpoint_config(model_id).get("model_type", "")
    for fam in _FAMILIES.values():
        if model_type in fam.model_types:
            return fam
    if not model_type:
        raise ModelLoadError(f"{model_id!r} has no model_type in its config.json")
    raise ModelLoadError(
        f"{model_id!r} is a {model_type!r} model, which unireward does not support; "
        f"supported families: {sorted(_FAMILIES)}"
    )


def resolve_budget(budget: VisionBudget | dict[str, Any] | None, model_id: str, family: str | None = None) -> VisionBudget:
    """A stage's vision budget: a :class:`VisionBudget` as given; a dict of overrides (or nothing) on
    top of the model family's default, so image sides are multiples of what its vision encoder takes
    (28 Qwen2.5-VL, 32 Qwen3-VL, 14 LLaVA-OV) and the processor does not resize a second time."""
    if isinstance(budget, VisionBudget):
        return budget
    fam = get_family(family) if family else detect_family(model_id)
    return fam.budget(**(budget or {}))


def load_model(model_id: str, family: str | None = None, **kwargs: Any) -> tuple[Any, Any, ModelFamily]:
    """Load a judge: ``(model, processor, family)``; the family is detected unless given."""
    if family:
        fam = get_family(family)
        if Path(model_id, "config.json").is_file():
            _checkpoint_config(model_id)  # an unconverted LLaVA-NeXT folder gets its own message
    else:
        fam = detect_family(model_id)
    model, processor = fam.load(model_id, **kwargs)
    return model, processor, fam
