"""Convert a LLaVA-NeXT ``llava_qwen`` checkpoint into transformers' LLaVA-OneVision format.

The paper's main judge (``CodeGoat24/UnifiedReward-Think-7b``) and its base (``UnifiedReward-7b``)
were trained with the LLaVA-NeXT code base and saved in its own layout: a Qwen2 ``config.json`` with
``mm_*`` fields, and weights named ``model.layers.*``, ``model.vision_tower.vision_tower.*``,
``model.mm_projector.{0,2}.*`` and ``model.image_newline``. transformers cannot load that; the
``llava_onevision`` family can load what :func:`convert_llava_qwen` writes:

- the weights, renamed one shard at a time (never the whole model in memory), nothing initialised anew:
  every target parameter must come from the source, and every source tensor must land somewhere;
- a :class:`~transformers.LlavaOnevisionConfig` whose text half is the source's Qwen2 fields and whose
  vision half comes from the SigLIP weights' shapes plus what the weights cannot say (input size, heads),
  read from the tower the source names in ``mm_vision_tower`` (its ``config.json`` when it is a folder or
  ``--vision-tower``, else the known towers below). The input size is never inferred from the position
  grid: so400m-patch14-384 has 27 x 27 positions but takes 384-px tiles (27 x 14 = 378);
- the tokenizer with ``<image>``/``<video>`` placeholders added (they must fit in the embedding rows the
  Qwen2 vocabulary already pads, so no row is invented), and the ``qwen_1_5`` conversation layout the
  official inference scripts use (default system turn "You are a helpful assistant.");
- a processor with SigLIP's normalisation (mean = std = 0.5, bicubic, square tiles) and the source's
  ``image_grid_pinpoints`` and ``anyres_max_N`` setting.

LLaVA-NeXT drops SigLIP's last encoder layer and its pooling head and reads the last remaining hidden
state; the converted config does the same with all the saved layers and ``vision_feature_layer=-1``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unireward.models.family import ModelLoadError, _unreachable_message

log = logging.getLogger(__name__)

#: what LLaVA-NeXT writes in ``architectures`` for a Qwen2-based model
LLAVA_QWEN_ARCHITECTURES = ("LlavaQwenForCausalLM",)


@dataclass(frozen=True)
class TowerSpec:
    """What a vision tower's weights do not say: its input side in pixels and its attention heads."""

    image_size: int
    heads: int


#: the vision towers LLaVA-NeXT checkpoints name (values from their published SigLIP configs)
VISION_TOWERS = {
    "google/siglip-so400m-patch14-384": TowerSpec(image_size=384, heads=16),
    "google/siglip-so400m-patch14-224": TowerSpec(image_size=224, heads=16),
}
VISION_TOWER_HEADS = {name: spec.heads for name, spec in VISION_TOWERS.items()}
DEFAULT_SYSTEM = "You are a helpful assistant."
#: LLaVA-NeXT video settings transformers' LLaVA-OneVision reproduces (absent fields take these)
_VIDEO_DEFAULTS = {"mm_spatial_pool_mode": "bilinear", "mm_spatial_pool_stride": 2, "mm_newline_position": "one_token"}
SIGLIP_MEAN = SIGLIP_STD = (0.5, 0.5, 0.5)
_VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."

# LLaVA-NeXT name -> the layout of the llava-hf LLaVA-OneVision checkpoints, which every transformers
# version and vLLM load. First match wins: "model." is the language model's catch-all.
_RENAMES = (
    ("model.vision_tower.vision_tower.", "vision_tower."),
    ("model.mm_projector.0.", "multi_modal_projector.linear_1."),
    ("model.mm_projector.2.", "multi_modal_projector.linear_2."),
    ("model.image_newline", "image_newline"),
    ("model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
)
# in-memory parameter name of transformers' model -> the same layout (v5 drops SigLIP's "vision_model.")
_MEMORY_TO_SAVED = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.vision_tower.vision_model.", "vision_tower.vision_model."),
    ("model.vision_tower.", "vision_tower.vision_model."),
    ("model.", ""),
)


def _first_rename(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    for old, new in rules:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


class ConversionError(ModelLoadError):
    """A checkpoint that cannot be converted, with the field or tensor at fault."""


def rename_key(key: str) -> str | None:
    """The transformers name of a LLaVA-NeXT weight; ``None`` for tensors that are not parameters.

    >>> rename_key("model.layers.0.mlp.up_proj.weight")
    'language_model.model.layers.0.mlp.up_proj.weight'
    >>> rename_key("model.vision_tower.vision_tower.vision_model.post_layernorm.bias")
    'vision_tower.vision_model.post_layernorm.bias'
    >>> rename_key("model.mm_projector.2.weight")
    'multi_modal_projector.linear_2.weight'
    >>> rename_key("model.image_newline"), rename_key("lm_head.weight")
    ('image_newline', 'language_model.lm_head.weight')
    >>> rename_key("model.layers.3.self_attn.rotary_emb.inv_freq") is None
    True
    """
    if key.endswith(".inv_freq") or ".vision_model.head." in key:  # buffers; SigLIP's unused pooling head
        return None
    return _first_rename(key, _RENAMES)


def is_llava_qwen(config: dict[str, Any]) -> bool:
    """Whether a ``config.json`` is an original LLaVA-NeXT Qwen2 checkpoint.

    >>> is_llava_qwen({"architectures": ["LlavaQwenForCausalLM"], "model_type": "llava"})
    True
    >>> is_llava_qwen({"model_type": "llava_onevision"})
    False
    """
    archs = config.get("architectures") or []
    return any(a in LLAVA_QWEN_ARCHITECTURES for a in archs) or config.get("model_type") == "llava_qwen"


def anyres_max_tiles(aspect: str) -> int:
    """The tile cap of an ``anyres_max_N`` setting.

    >>> anyres_max_tiles("anyres_max_9")
    9
    """
    m = re.fullmatch(r"anyres_max_(\d+)", aspect or "")
    if not m:
        raise ConversionError(
            f"image_aspect_ratio {aspect!r} is not supported: transformers' LLaVA-OneVision implements "
            "'anyres_max_N' only (the setting of every released LLaVA-OV and UnifiedReward checkpoint)"
        )
    return int(m.group(1))


@dataclass(frozen=True)
class ConvertConfig:
    """What :func:`convert_llava_qwen` writes and how.

    ``vision_tower``: a SigLIP checkpoint (HF id or folder) to take the vision weights from when the
    source does not hold them (a LLaVA-NeXT run with a frozen tower may not save it); its last encoder
    layer and head are dropped, as LLaVA-NeXT does. ``vision_heads``: attention heads of the vision
    tower when ``mm_vision_tower`` is not one of :data:`VISION_TOWER_HEADS`.
    ``dtype``: ``"auto"`` keeps the source's, else ``float16``/``bfloat16``/``float32``.
    """

    dtype: str = "auto"
    vision_tower: str | None = None
    vision_heads: int | None = None
    vision_image_size: int | None = None
    system_prompt: str | None = DEFAULT_SYSTEM
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "float16", "bfloat16", "float32"):
            raise ValueError(f"dtype must be auto, float16, bfloat16 or float32, not {self.dtype!r}")
        if self.vision_heads is not None and self.vision_heads < 1:
            raise ValueError("vision_heads must be positive")
        if self.vision_image_size is not None and self.vision_image_size < 1:
            raise ValueError("vision_image_size must be positive")


def conversation_template(system_prompt: str | None = DEFAULT_SYSTEM) -> str:
    """LLaVA-NeXT's ``qwen_1_5`` layout as a chat template: a default system turn unless the messages
    bring one, then ``<image>``/``<video>`` placeholders (one per part, each on its own line) in order."""
    from unireward.models.llava_onevision import llava_chat_template

    body = llava_chat_template()
    if not system_prompt:
        return body
    literal = "'" + system_prompt.replace("\\", "\\\\").replace("'", "\\'") + "'"
    default = (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        "{{ '<|im_start|>system\\n' + " + literal + " + '<|im_end|>\\n' }}"
        "{%- endif -%}"
    )
    return default + body


class _Source:
    """Tensor names, shapes and lazy reads over a folder of safetensors (or ``.bin``) shards."""

    def __init__(self, folder: Path, what: str):
        self.folder = folder
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
        if not files:
            raise ConversionError(f"{what} {folder} holds no *.safetensors or pytorch_model*.bin weights")
        self.files = files
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.where: dict[str, Path] = {}
        for f in files:
            for key, shape in _shard_shapes(f).items():
                self.shapes[key] = shape
                self.where[key] = f

    def read(self, file: Path) -> Iterator[tuple[str, Any]]:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(file, framework="pt") as f:
                for key in f.keys():  # noqa: SIM118  (safe_open is not a mapping)
                    yield key, f.get_tensor(key)
        else:
            import torch

            for key, tensor in torch.load(file, map_location="cpu", weights_only=True, mmap=True).items():
                yield key, tensor.clone()  # tied .bin tensors share storage, which safetensors refuses


def _shard_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    try:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(file, framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        import torch

        return {k: tuple(v.shape) for k, v in torch.load(file, map_location="cpu", weights_only=True, mmap=True).items()}
    except Exception as e:  # a truncated or foreign file: name it
        raise ConversionError(f"cannot read weights file {file}: {e}") from None


def _local_folder(model_id: str, what: str, patterns: list[str]) -> Path:
    if Path(model_id).is_dir():
        return Path(model_id)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, allow_patterns=patterns))
    except Exception as e:  # offline, unknown id, malformed id
        raise ConversionError(f"{what}: {_unreachable_message(model_id, e)}") from None


def _tower_config(folder: Path) -> dict[str, Any]:
    """The vision half of a tower's ``config.json`` (a SigLIP vision config, or a full SigLIP's)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config.get("vision_config", config) if isinstance(config, dict) else {}


def tower_spec(
    tower: str, source_config: dict[str, Any], tower_config: dict[str, Any] | None = None,
    image_size: int | None = None, heads: int | None = None,
) -> TowerSpec:
    """Input side and heads of the vision tower: explicit values, then the tower's own config, then the
    source's ``image_crop_resolution``, then :data:`VISION_TOWERS`.

    >>> tower_spec("google/siglip-so400m-patch14-384", {})
    TowerSpec(image_size=384, heads=16)
    >>> tower_spec("/ckpt/siglip", {"image_crop_resolution": 384}, {"num_attention_heads": 16})
    TowerSpec(image_size=384, heads=16)
    """
    if tower_config is None and tower and Path(tower).is_dir():  # LLaVA-NeXT configs often name a local folder
        tower_config = _tower_config(Path(tower))
    tower_config = tower_config or {}
    known = VISION_TOWERS.get(tower)
    size = image_size or tower_config.get("image_size") or source_config.get("image_crop_resolution")
    size = size or (known.image_size if known else None)
    heads = heads or tower_config.get("num_attention_heads") or (known.heads if known else None)
    if size is None or heads is None:
        missing = " and ".join(x for x, v in (("--vision-image-size", size), ("--vision-heads", heads)) if v is None)
        raise ConversionError(
            f"unknown vision tower {tower!r}: its input size and attention heads are not in the weights and "
            f"it has no config.json here; pass {missing} (known towers: {sorted(VISION_TOWERS)})"
        )
    return TowerSpec(image_size=int(size), heads=int(heads))


def _vision_config(shapes: dict[str, tuple[int, ...]], prefix: str, spec: TowerSpec) -> dict[str, Any]:
    """SigLIP's vision config: sizes from the weights' shapes, input side and heads from ``spec``."""
    try:
        hidden, _, patch, _ = shapes[prefix + "embeddings.patch_embedding.weight"]
        positions = shapes[prefix + "embeddings.position_embedding.weight"][0]
        intermediate = shapes[prefix + "encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as e:
        raise ConversionError(f"vision tower weights lack {e.args[0]}") from None
    layers = 1 + max(int(k[len(prefix) :].split(".")[2]) for k in shapes if k.startswith(prefix + "encoder.layers."))
    side = spec.image_size // patch  # SigLIP's convolution drops the remainder (384 // 14 = 27)
    if side * side != positions:
        raise ConversionError(
            f"a {spec.image_size}-px input with {patch}-px patches gives {side}x{side} positions, the vision "
            f"weights have {positions}; pass the tower's real --vision-image-size"
        )
    if hidden % spec.heads:
        raise ConversionError(f"vision hidden size {hidden} is not divisible by {spec.heads} heads")
    return {
        "model_type": "siglip_vision_model", "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": spec.heads, "image_size": spec.image_size,
        "patch_size": patch, "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh", "vision_use_head": False,
    }  # fmt: skip


def _external_vision(tower_id: str) -> tuple[_Source, Callable[[str], str | None], dict[str, Any]]:
    """Vision weights from a stock SigLIP checkpoint, renamed to the LLaVA-NeXT layout they replace,
    without the last encoder layer and the head (LLaVA-NeXT deletes both)."""
    folder = _local_folder(tower_id, "vision tower", ["*.json", "*.safetensors"])
    src = _Source(folder, "vision tower")

    def tower_key(key: str) -> str | None:  # hub files say "vision_model.", transformers 5 saves it bare
        rest = key.removeprefix("vision_model.")
        return rest if rest.startswith(("embeddings.", "encoder.", "post_layernorm.")) else None

    layer_ids = [int(k.split(".")[2]) for k in map(tower_key, src.shapes) if k and k.startswith("encoder.layers.")]
    if not layer_ids:
        raise ConversionError(f"vision tower {tower_id!r} holds no SigLIP encoder.layers.* weights")
    last = f"encoder.layers.{max(layer_ids)}."

    def to_original(key: str) -> str | None:
        rest = tower_key(key)
        if rest is None or rest.startswith(last):
            return None  # a text tower or the pooling head (full SigLIP checkpoints), the dropped layer
        return _VISION_PREFIX + rest

    return src, to_original, _tower_config(folder)


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConversionError(f"cannot read {path}: {e}") from None
    if not isinstance(config, dict) or not is_llava_qwen(config):
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise ConversionError(
            f"{folder} is not a LLaVA-NeXT llava_qwen checkpoint (architectures "
            f"{config.get('architectures') if isinstance(config, dict) else None}, model_type {kind!r}); "
            "checkpoints already in transformers format load directly"
        )
    for field, want in (("mm_projector_type", "mlp2x_gelu"), ("mm_patch_merge_type", "spatial_unpad")):
        got = config.get(field, want)
        if got != want:  # "spatial_unpad_nobase", "maxpool2x2", ... pack features differently
            raise ConversionError(f"{field}={got!r} is not supported (LLaVA-OneVision uses {want!r})")
    for flag in ("mm_use_im_start_end", "mm_use_im_patch_token"):
        if config.get(flag):  # extra tokens around every image that transformers' processor never writes
            raise ConversionError(f"{flag}=true is not supported by transformers' LLaVA-OneVision")
    # Video features: transformers pools 2x2 bilinearly and adds one newline per video, as these say.
    video = {k: config.get(k, v) for k, v in _VIDEO_DEFAULTS.items()}
    if video != _VIDEO_DEFAULTS:
        log.warning("%s: video settings %s differ from transformers' LLaVA-OneVision %s; video features will differ",
                    folder, video, _VIDEO_DEFAULTS)
    return config


def _stored_dtype(config: dict[str, Any], written: str | None) -> str:
    """The dtype the converted config advertises: the source's (``torch_dtype``, or ``dtype`` in newer
    configs), else what the weights were written in, so ``dtype="auto"`` loads them as they are.

    >>> _stored_dtype({"torch_dtype": "bfloat16"}, "float32"), _stored_dtype({}, "bfloat16")
    ('bfloat16', 'bfloat16')
    """
    return str(config.get("torch_dtype") or config.get("dtype") or written or "float32")


def _text_config(config: dict[str, Any], vocab_rows: int) -> dict[str, Any]:
    import inspect

    from transformers import Qwen2Config

    keep = set(inspect.signature(Qwen2Config.__init__).parameters) - {"self", "architectures", "transformers_version", "dtype"}
    text = {k: v for k, v in config.items() if k in keep}
    for legacy in ("rope_theta", "rope_scaling"):  # older configs; Qwen2Config still folds them in
        if legacy in config:
            text[legacy] = config[legacy]
    text["vocab_size"] = vocab_rows
    text["model_type"] = "qwen2"
    return text


def convert_llava_qwen(source: str, out_dir: str | os.PathLike[str], cfg: ConvertConfig | None = None) -> Path:
    """Write a transformers LLaVA-OneVision checkpoint for the LLaVA-NeXT checkpoint ``source``
    (HF id or folder) into ``out_dir``; returns ``out_dir``. See the module docstring."""
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import (
        AddedToken,
        AutoTokenizer,
        GenerationConfig,
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    cfg = cfg or ConvertConfig()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise ConversionError(f"output folder {out} is not empty (pass --overwrite to replace its files)")
    meta = ["*.json", "*.txt", "*.model"]  # configs and tokenizer files
    folder = _local_folder(source, "source checkpoint", [*meta, "*.safetensors"])
    if not any(folder.glob("*.safetensors")):  # older checkpoints: .bin only (never fetch both)
        folder = _local_folder(source, "source checkpoint", [*meta, "pytorch_model*.bin"])
    config = _read_config(folder)
    src = _Source(folder, "source checkpoint")

    # One plan for every tensor: file -> {name in the file: transformers name}; shapes by LLaVA-NeXT name
    plan: dict[Path, dict[str, str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    produced: dict[str, tuple[int, ...]] = {}

    def add(file: Path, key: str, original: str, shape: tuple[int, ...]) -> None:
        if (new := rename_key(original)) is not None:
            plan.setdefault(file, {})[key] = new
            shapes[original] = produced[new] = shape

    for key, shape in src.shapes.items():
        add(src.where[key], key, key, shape)
    sources = [src]
    has_vision = any(k.startswith(_VISION_PREFIX) for k in src.shapes)
    tower = str(config.get("mm_vision_tower", ""))
    tower_config: dict[str, Any] | None = None
    if cfg.vision_tower:
        if has_vision:
            raise ConversionError(f"{source} already holds vision tower weights; drop --vision-tower")
        vsrc, to_original, tower_config = _external_vision(cfg.vision_tower)
        sources.append(vsrc)
        for key, shape in vsrc.shapes.items():
            if (original := to_original(key)) is not None:
                add(vsrc.where[key], key, original, shape)
    elif not has_vision:
        raise ConversionError(
            f"{source} holds no vision tower weights ({_VISION_PREFIX}*); pass --vision-tower with the "
            f"SigLIP checkpoint it was trained from ({tower or 'see mm_vision_tower'})"
        )

    if "model.embed_tokens.weight" not in shapes:
        raise ConversionError(f"{source} has no model.embed_tokens.weight: not a full LLaVA-NeXT checkpoint")
    vocab_rows = shapes["model.embed_tokens.weight"][0]
    spec = tower_spec(cfg.vision_tower or tower, config, tower_config, cfg.vision_image_size, cfg.vision_heads)
    vision = _vision_config(shapes, _VISION_PREFIX, spec)
    if config.get("mm_hidden_size", vision["hidden_size"]) != vision["hidden_size"]:
        raise ConversionError(f"mm_hidden_size {config['mm_hidden_size']} differs from the vision weights' {vision['hidden_size']}")
    aspect = str(config.get("image_aspect_ratio", ""))
    anyres_max_tiles(aspect)  # refuses every other aspect mode
    pinpoints = config.get("image_grid_pinpoints")
    if not isinstance(pinpoints, list) or not pinpoints:
        raise ConversionError("config.json has no image_grid_pinpoints list")
    tile = vision["image_size"]
    off_grid = [p for p in pinpoints if p[0] % tile or p[1] % tile]
    if off_grid:  # anyres cuts the fitted image into tiles of the tower's input size
        raise ConversionError(f"image_grid_pinpoints {off_grid[:3]} are not multiples of the {tile}-px vision input")

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in ("<image>", "<video>")], special_tokens=True)
    image_id, video_id = tokenizer.convert_tokens_to_ids(["<image>", "<video>"])
    if max(image_id, video_id) >= vocab_rows:
        raise ConversionError(
            f"the tokenizer needs {max(image_id, video_id) + 1} embedding rows for <image>/<video>, "
            f"the checkpoint has {vocab_rows}; resizing would invent weights the judge never learnt"
        )
    tied = bool(config.get("tie_word_embeddings", False))
    llava_config = LlavaOnevisionConfig(
        text_config=_text_config(config, vocab_rows), vision_config=vision,
        image_token_index=image_id, video_token_index=video_id,
        vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_grid_pinpoints=pinpoints, vision_aspect_ratio=aspect,
        tie_word_embeddings=tied, multimodal_projector_bias=True, projector_hidden_act="gelu",
    )  # fmt: skip

    # Check names and shapes against the real model class before writing a byte.
    with torch.device("meta"):
        memory = LlavaOnevisionForConditionalGeneration(llava_config).state_dict()
    target = {_first_rename(k, _MEMORY_TO_SAVED): v for k, v in memory.items()}
    unexpected = sorted(set(produced) - set(target))
    missing = sorted(set(target) - set(produced) - ({"language_model.lm_head.weight"} if tied else set()))
    if unexpected or missing:
        raise ConversionError(
            "the weights do not match a LLaVA-OneVision model: "
            + (f"unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''} " if unexpected else "")
            + (f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}" if missing else "")
        )
    for name, shape in produced.items():
        if tuple(target[name].shape) != shape:
            raise ConversionError(f"{name}: shape {list(shape)} in the checkpoint, {list(target[name].shape)} expected")

    out.mkdir(parents=True, exist_ok=True)
    # Overwriting: stale weights would be loaded beside (or instead of) the new ones.
    for stale in (*out.glob("*.safetensors"), *out.glob("*.safetensors.index.json"), *out.glob("pytorch_model*.bin"),
                  out / "CONVERTED_FROM.json"):  # fmt: skip
        stale.unlink(missing_ok=True)
    dtype = None if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
    files = [f for s in sources for f in s.files if f in plan]
    weight_map, total, first_float = {}, 0, None
    for i, file in enumerate(tqdm(files, desc="converting shards", unit="shard"), start=1):
        owner = next(s for s in sources if file in s.files)
        names = plan[file]
        tensors = {}
        for key, tensor in owner.read(file):
            if key in names:
                t = tensor if dtype is None or not tensor.is_floating_point() else tensor.to(dtype)
                tensors[names[key]] = t.contiguous()
                if first_float is None and t.is_floating_point():
                    first_float = str(t.dtype).removeprefix("torch.")
        shard = f"model-{i:05d}-of-{len(files):05d}.safetensors"
        save_file(tensors, out / shard, metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = shard
            total += t.numel() * t.element_size()
        del tensors
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n",
        encoding="utf-8",
    )
    llava_config.dtype = cfg.dtype if dtype is not None else _stored_dtype(config, first_float)
    llava_config.architectures = ["LlavaOnevisionForConditionalGeneration"]
    llava_config.save_pretrained(out)

    eos = [i for i in tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]) if i is not None and i != tokenizer.unk_token_id]
    GenerationConfig(eos_token_id=eos, pad_token_id=eos[-1] if eos else None, do_sample=False).save_pretrained(out)

    size = {"height": tile, "width": tile}
    common = {"size": size, "image_mean": list(SIGLIP_MEAN), "image_std": list(SIGLIP_STD), "resample": 3}
    template = conversation_template(cfg.system_prompt)
    tokenizer.chat_template = template
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=pinpoints, do_pad=True, **common),
        video_processor=LlavaOnevisionVideoProcessor(do_sample_frames=False, **common),
        tokenizer=tokenizer,
        num_image_tokens=(tile // vision["patch_size"]) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio=aspect,
        chat_template=template,
    )
    processor.save_pretrained(out)
    record = {"source": source, "converter": "unireward convert-llava", "options": conversion_options(cfg),
              "mm_vision_tower": tower}  # fmt: skip
    (out / "CONVERTED_FROM.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")  # written last
    return out


def conversion_options(cfg: ConvertConfig) -> dict[str, Any]:
    """What a conversion's result depends on besides its source (recorded in ``CONVERTED_FROM.json``)."""
    return {"dtype": cfg.dtype, "vision_tower": cfg.vision_tower, "vision_heads": cfg.vision_heads,
            "vision_image_size": cfg.vision_image_size, "system_prompt": cfg.system_prompt}  # fmt: skip

