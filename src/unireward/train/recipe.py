"""Recipes: one YAML file that fixes every stage of a training run, validated on load.

A recipe names the data (files, or the synthetic task), the base model, the teacher, the prompt
family and vision budget shared by all stages, and per-stage overrides of the stage configs.
``resolve`` turns it into the concrete stage configs for an output directory — what ``--dry-run``
prints — without loading a model; ``preflight`` lists what a run needs that is missing.

Relative paths in a recipe file (data files, media root, DeepSpeed configs, a local base model)
resolve against the recipe's folder, so a recipe works from any working directory. The shipped
recipes live in the package (``unireward/configs/recipes``); ``unireward configs`` lists them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from unireward.media import VisionBudget
from unireward.protocol.templates import get_family
from unireward.train.distill import DistillConfig
from unireward.train.grpo import GRPOStageConfig
from unireward.train.sample import SampleConfig
from unireward.train.sft import SFTStageConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

STAGES = ("prepare", "base_sft", "eval_base", "distill", "cold_start", "eval_cold_start", "sample", "rs_sft",
          "eval_rejection_sampling", "grpo", "eval_grpo")  # fmt: skip


@dataclass
class SyntheticSpec:
    #: labelled pairs per cold-start task (the teacher judges them)
    cold_start_pairs: int = 400
    cold_start_tasks: tuple[str, ...] = ("image_generation",)
    train_per_task: int = 300
    test_per_task: int = 100
    size: int = 56
    frames: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.cold_start_pairs, self.train_per_task, self.test_per_task) < 1:
            raise ValueError("synthetic pair counts must be >= 1")
        from unireward.protocol.tasks import Task

        self.cold_start_tasks = tuple(Task.parse(t).value for t in self.cold_start_tasks)


@dataclass
class DataSpec:
    """Either ``synthetic`` or files: ``cold_start`` (labelled pairs the teacher judges), ``train``
    (the unified preference set for rejection sampling) and ``test`` (held-out pairs)."""

    synthetic: SyntheticSpec | None = None
    cold_start: str | None = None
    train: str | None = None
    test: str | None = None
    media_root: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.synthetic, dict):
            self.synthetic = SyntheticSpec(**self.synthetic)
        if self.synthetic is None and not (self.cold_start and self.train and self.test):
            raise ValueError("data needs `synthetic:` or all of `cold_start`, `train` and `test` files")


@dataclass
class ModelSpec:
    base: str = "tiny"
    family: str = "qwen2_5_vl"
    tiny: dict[str, Any] = field(default_factory=dict)
    #: "llava_qwen": the base is a LLaVA-NeXT checkpoint (UnifiedReward-7b); the pipeline converts it
    #: once into models/base (``unireward convert-llava``) and trains from there
    convert: str | None = None
    #: ``ConvertConfig`` fields for that conversion (``dtype``, ``vision_tower``, ``vision_heads``, ``vision_image_size``)
    convert_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.convert not in (None, "llava_qwen"):
            raise ValueError("model.convert must be 'llava_qwen' or absent")
        if self.convert and self.base == "tiny":
            raise ValueError("model.convert needs a LLaVA-NeXT checkpoint as model.base, not 'tiny'")
        if self.convert and self.family != "llava_onevision":
            raise ValueError("model.convert: llava_qwen makes a llava_onevision model; set model.family to it")
        if self.convert_options:
            from unireward.models.llava_convert import ConvertConfig

            if not self.convert:
                raise ValueError("model.convert_options without model.convert")
            ConvertConfig(**self.convert_options)  # unknown or bad options fail here


@dataclass
class TeacherSpec:
    kind: str = "openai"
    base_url: str | None = None
    model: str = "gpt-4o"
    api_key_env: str = "OPENAI_API_KEY"
    accuracy: float = 0.9

    def __post_init__(self) -> None:
        if self.kind not in ("openai", "scripted"):
            raise ValueError("teacher.kind must be 'openai' or 'scripted'")
        if self.kind == "openai" and not self.base_url:
            raise ValueError("an openai teacher needs base_url")
        if not 0 <= self.accuracy <= 1:
            raise ValueError("teacher.accuracy must be in [0, 1]")


@dataclass
class EvalSpec:
    max_new_tokens: int = 1024
    batch_size: int = 64
    strict_format: bool = True


@dataclass
class Recipe:
    name: str
    data: DataSpec
    model: ModelSpec = field(default_factory=ModelSpec)
    teacher: TeacherSpec = field(default_factory=TeacherSpec)
    template_family: str | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    #: optional: first train the base into a unified judge that answers directly (no CoT), the role
    #: UnifiedReward plays for the paper; needed when the base is a random tiny model
    base_sft: dict[str, Any] = field(default_factory=dict)
    #: what the base judge is taught to say: "verdict" (the label alone) or, on the synthetic task,
    #: "rationale" (what it sees, then the label: a judge that describes but does not reason)
    base_style: str = "verdict"
    distill: dict[str, Any] = field(default_factory=dict)
    cold_start: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    rs_sft: dict[str, Any] = field(default_factory=dict)
    grpo: dict[str, Any] = field(default_factory=dict)
    eval: EvalSpec = field(default_factory=EvalSpec)
    #: trackers for every training stage unless a stage sets its own (see ``TrainerCommon.report_to``)
    report_to: str | None = None
    #: candidate order of every training set (``unireward.data.balance``): ``swap_half`` shows a seeded
    #: half of each task's pairs of each label the other way round, ``both_orders`` every pair both ways
    #: (GRPO keeps a pair and its swap in one batch), ``none`` keeps the data's order
    order_balance: str = "swap_half"
    notes: str = ""

    def __post_init__(self) -> None:
        for name, cls in (("data", DataSpec), ("model", ModelSpec), ("teacher", TeacherSpec), ("eval", EvalSpec)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls(**value))
        if self.template_family is not None:
            get_family(self.template_family)
        self.vision_budget()  # validates the budget and the family name
        if self.base_style not in ("verdict", "rationale"):
            raise ValueError("base_style must be 'verdict' or 'rationale'")
        if self.base_style == "rationale" and self.data.synthetic is None:
            raise ValueError("base_style 'rationale' is only available on the synthetic task")
        from unireward.data.balance import check_mode

        check_mode(self.order_balance)

    def vision_budget(self) -> VisionBudget:
        """The recipe's budget, with the model family's side multiple unless the recipe sets one."""
        from unireward.models import get_family

        return VisionBudget(**{"factor": get_family(self.model.family).factor, **self.budget})


def _build(cls: type, section: str, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    trainer = getattr(cls, "TRAINER", None)
    if trainer is not None:  # a training stage: any TRL field by its TRL name, flat or in `trl:`
        from unireward.train.trl_settings import split_settings

        return cls(**split_settings(values, known, trainer, f"recipe section {section!r}"))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"recipe section {section!r}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    return cls(**values)


def shipped(kind: str) -> list[Path]:
    """The configs shipped in the package: ``recipes``, ``accelerate`` or ``deepspeed``."""
    return sorted(p for p in (CONFIGS / kind).iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def find_recipe(name_or_path: str) -> Path:
    """A recipe path, or a name looked up in ``./configs/recipes``, then among the shipped recipes."""
    p = Path(name_or_path)
    if p.is_file():
        return p.resolve()
    stem = p.name if p.suffix in (".yaml", ".yml") else f"{p.name}.yaml"
    for folder in (Path.cwd() / "configs" / "recipes", CONFIGS / "recipes"):
        candidate = folder / stem
        if candidate.is_file():
            return candidate.resolve()
    names = ", ".join(q.stem for q in shipped("recipes"))
    raise FileNotFoundError(f"recipe {name_or_path!r} not found (give a path, or one of the shipped recipes: {names})")


def _local(value: str, folder: Path, must_exist: bool = False) -> str:
    """``value`` against ``folder`` when relative; with ``must_exist``, only if it exists there
    (a model name may be a hub id, which looks like a relative path)."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    candidate = folder / p
    if must_exist and not candidate.exists():
        return value
    return str(candidate)


def _resolve_paths(raw: dict[str, Any], folder: Path, data_root: Path | None = None) -> None:
    """Relative paths of a recipe file, resolved against its folder (in place); the data paths against
    ``data_root`` when given (a shipped recipe lives inside the installed package, the data do not)."""
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("cold_start", "train", "test", "media_root"):
            if isinstance(data.get(key), str):
                data[key] = _local(data[key], data_root or folder)
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("base"), str) and model["base"] != "tiny":
        model["base"] = _local(model["base"], folder, must_exist=True)
    for stage in ("base_sft", "cold_start", "rs_sft", "grpo"):
        section = raw.get(stage)
        if isinstance(section, dict):
            for holder in (section, section.get("trl")):
                if isinstance(holder, dict) and isinstance(holder.get("deepspeed"), str):
                    holder["deepspeed"] = _local(holder["deepspeed"], folder)


def load_recipe(name_or_path: str, data_root: str | os.PathLike[str] | None = None) -> Recipe:
    """A recipe by path or shipped name. Its relative paths resolve against its own folder, except its
    data files (``data.cold_start``/``train``/``test``/``media_root``), which resolve against
    ``data_root`` when one is given: ``--data-root ~/ur`` reads a shipped recipe's
    ``data/unified_pairs.jsonl`` as ``~/ur/data/unified_pairs.jsonl``."""
    path = find_recipe(name_or_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe is a mapping")
    raw.setdefault("name", path.stem)
    _resolve_paths(raw, path.parent, None if data_root is None else Path(data_root).expanduser().resolve())
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown recipe key(s) {unknown}; allowed: {sorted(known)}")
    try:
        return Recipe(**raw)
    except TypeError as e:
        raise ValueError(f"{path}: {e}") from None


@dataclass
class Layout:
    """Where every stage reads and writes under the run directory."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    data = property(lambda self: self.root / "data")
    models = property(lambda self: self.root / "models")
    stages = property(lambda self: self.root / "stages")
    evals = property(lambda self: self.root / "eval")

    def model(self, stage: str) -> Path:
        return self.models / stage


def resolve(recipe: Recipe, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The concrete configuration of every stage for a run in ``out_dir``."""
    lay = Layout(Path(out_dir))
    d = recipe.data
    if d.synthetic is not None:
        media_root = str(lay.data / "synthetic")
        cold, train, test = (str(lay.data / "synthetic" / f"{s}.jsonl") for s in ("cold_start", "train", "test"))
    else:
        media_root, cold, train, test = d.media_root, d.cold_start, d.train, d.test  # type: ignore[assignment]
    budget = asdict(recipe.vision_budget())
    shared = {"media_root": media_root, "template_family": recipe.template_family}
    # the recipe-wide tracker, under each stage's own setting
    track = {"report_to": recipe.report_to} if recipe.report_to else {}
    base = str(lay.model("base")) if recipe.model.base == "tiny" or recipe.model.convert else recipe.model.base
    base_sft = None
    if recipe.base_sft:
        base_sft = _build(SFTStageConfig, "base_sft", {
            "model": base, "train_file": str(lay.root / "base_sft" / "direct.jsonl"),
            "output_dir": str(lay.model("base_sft")), "family": recipe.model.family, "seed": recipe.seed,
            "budget": budget, **shared, **track, **recipe.base_sft,
        })  # fmt: skip
        base = str(lay.model("base_sft") / "final")
    t = recipe.teacher
    distill = _build(DistillConfig, "distill", {
        "pairs": cold, "out_dir": str(lay.root / "distill"), "base_url": t.base_url or "http://127.0.0.1:0/v1",
        "model": t.model if t.kind == "openai" else "scripted-teacher", "api_key_env": t.api_key_env,
        "budget": budget, **shared, **recipe.distill,
    })  # fmt: skip
    # Balanced copies of the SFT sets are written by the pipeline before each SFT stage; GRPO balances
    # its own input (``GRPOStageConfig.order_balance``), which also keeps both orders in one batch.
    balanced = recipe.order_balance != "none"
    cold_start = _build(SFTStageConfig, "cold_start", {
        "model": base, "train_file": str(lay.root / "balanced" / "cold_start.jsonl" if balanced else lay.root / "distill" / "cold_start.jsonl"),
        "output_dir": str(lay.model("cold_start")), "family": recipe.model.family, "seed": recipe.seed,
        "budget": budget, **shared, **track, **recipe.cold_start,
    })  # fmt: skip
    sample = _build(SampleConfig, "sample", {
        "model": str(lay.model("cold_start") / "final"), "pairs": train, "out_dir": str(lay.root / "sample"),
        "family": recipe.model.family, "seed": recipe.seed, "budget": budget, **shared, **recipe.sample,
    })  # fmt: skip
    rs_sft = _build(SFTStageConfig, "rs_sft", {
        "model": str(lay.model("cold_start") / "final"),
        "train_file": str(lay.root / "balanced" / "rs_sft.jsonl" if balanced else lay.root / "sample" / "rs_sft.jsonl"),
        "output_dir": str(lay.model("rejection_sampling")), "family": recipe.model.family, "seed": recipe.seed,
        "budget": budget, **shared, **track, **recipe.rs_sft,
    })  # fmt: skip
    grpo = _build(GRPOStageConfig, "grpo", {
        "model": str(lay.model("rejection_sampling") / "final"), "train_file": str(lay.root / "sample" / "grpo.jsonl"),
        "output_dir": str(lay.model("grpo")), "family": recipe.model.family, "seed": recipe.seed,
        "budget": budget, "order_balance": recipe.order_balance, **shared, **track, **recipe.grpo,
    })  # fmt: skip
    return {
        "recipe": recipe.name, "out_dir": str(lay.root), "data": {"cold_start": cold, "train": train, "test": test,
        "media_root": media_root, "synthetic": asdict(d.synthetic) if d.synthetic else None},
        "model": asdict(recipe.model), "teacher": asdict(t), "eval": asdict(recipe.eval), "order_balance": recipe.order_balance,
        "base_model": base, "base_sft": base_sft, "distill": distill, "cold_start": cold_start, "sample": sample, "rs_sft": rs_sft, "grpo": grpo,
    }  # fmt: skip


_TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}


def preflight(recipe: Recipe, resolved: dict[str, Any]) -> dict[str, Any]:
    """What a run of ``recipe`` needs that is not there, without loading a model: the data files and
    media root, each training stage's DeepSpeed config (and the ``deepspeed`` package), the teacher's
    API key variable, the trackers' packages; and the models it would download."""
    import importlib.util
    import json

    problems: list[str] = []
    checked: list[str] = []
    d = resolved["data"]
    if recipe.data.synthetic is None:
        for key in ("cold_start", "train", "test"):
            checked.append(d[key])
            if not Path(d[key]).is_file():
                problems.append(f"data.{key}: no file {d[key]}")
        if d["media_root"]:
            checked.append(d["media_root"])
            if not Path(d["media_root"]).is_dir():
                problems.append(f"data.media_root: no folder {d['media_root']}")
    trainers = [k for k in ("base_sft", "cold_start", "rs_sft", "grpo") if resolved.get(k) is not None]
    needs_ds = False
    for key in trainers:
        cfg = resolved[key]
        if cfg.deepspeed:
            needs_ds = True
            checked.append(cfg.deepspeed)
            try:
                ds = json.loads(Path(cfg.deepspeed).read_text(encoding="utf-8"))
                if "zero_optimization" not in ds:
                    problems.append(f"{key}.deepspeed: {cfg.deepspeed} has no zero_optimization section")
            except FileNotFoundError:
                problems.append(f"{key}.deepspeed: no file {cfg.deepspeed}")
            except json.JSONDecodeError as e:
                problems.append(f"{key}.deepspeed: {cfg.deepspeed} is not JSON ({e})")
        for tracker in cfg.report_to:
            module = _TRACKER_MODULES.get(tracker)
            if module and importlib.util.find_spec(module) is None:
                problems.append(f"{key}.report_to: {tracker} is not installed (pip install {module})")
    if needs_ds and importlib.util.find_spec("deepspeed") is None:
        problems.append("deepspeed configs are set but the deepspeed package is not installed (pip install 'unireward[deepspeed]')")
    grpo = resolved.get("grpo")
    if grpo is not None and grpo.use_vllm and importlib.util.find_spec("vllm") is None:
        problems.append("grpo.use_vllm: vllm is not installed (GPU only; pip install 'unireward[vllm]')")
    t = recipe.teacher
    if t.kind == "openai":
        checked.append(f"${t.api_key_env}")
        if not os.environ.get(t.api_key_env):
            problems.append(f"teacher: the API key variable {t.api_key_env} is not set")
    downloads = []
    base = recipe.model.base
    if base != "tiny" and not Path(base).exists():
        downloads.append({"model": base, "from": "the Hugging Face hub", "cached": _hub_cached(base)})
    return {"ok": not problems, "problems": problems, "checked": checked, "downloads": downloads}


def _hub_cached(repo_id: str) -> bool:
    """Whether a hub model's config is already in the local cache (nothing is fetched)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the hub would refuse is simply not cached
        return False
