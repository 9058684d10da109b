"""Training commands: ``distill``, ``sft``, ``sample``, ``grpo``, ``pipeline``, ``configs``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from unireward.cli_args import hidden_alias
from unireward.data.balance import ORDER_BALANCE as ORDER_CHOICES


def _budget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--media-root", default=None, help="root for relative media paths")
    p.add_argument("--template-family", default=None, help="prompt family (default: the official prompts)")
    p.add_argument("--max-pixels", type=int, default=None)
    p.add_argument("--frames", type=int, default=None)


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="start afresh when --out was made with other settings")
    p.add_argument("--max-error-rate", type=float, default=0.0,
                   help="share of failed pairs (0-1) tolerated before the exit status is 1 (default 0)")  # fmt: skip


def _exit_status(command: str, failed: int, total: int, rate: float, where: str) -> int:
    """1 when more than ``rate`` of ``total`` failed (said on stderr), else 0."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"--max-error-rate must be between 0 and 1, got {rate}")
    if failed > rate * total:
        print(f"unireward {command}: {failed} of {total} pairs failed (see {where}); rerun the same command to retry them, "
              "or allow some with --max-error-rate", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _named_lines(bad: list[str]) -> str:
    """Where to read about input lines that were skipped (each was named on stderr as it was read)."""
    return f" and the {len(bad)} unreadable input line(s) named above (in bad_lines)" if bad else ""


def _budget(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.max_pixels:
        out["max_pixels"] = args.max_pixels
    if args.frames:
        out["frames"] = args.frames
    return out


_PRECEDENCE = ("Settings apply in one order: explicit flags > --config file > defaults (the pipeline: flags > "
               "recipe > defaults). --config and --trl take any field of TRL's SFTConfig/GRPOConfig by its name.")

#: flags named as TRL names them: (TRL field, type, which trainers)
_TRL_FLAGS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("learning_rate", float, ("sft", "grpo")), ("max_steps", int, ("sft", "grpo")),
    ("num_train_epochs", float, ("sft", "grpo")), ("per_device_train_batch_size", int, ("sft", "grpo")),
    ("gradient_accumulation_steps", int, ("sft", "grpo")), ("warmup_ratio", float, ("sft", "grpo")),
    ("lr_scheduler_type", str, ("sft", "grpo")), ("logging_steps", int, ("sft", "grpo")),
    ("save_steps", int, ("sft", "grpo")), ("seed", int, ("sft", "grpo")), ("deepspeed", str, ("sft", "grpo")),
    ("report_to", str, ("sft", "grpo")), ("bf16", bool, ("sft", "grpo")), ("gradient_checkpointing", bool, ("sft", "grpo")),
    ("use_cpu", bool, ("sft", "grpo")), ("num_generations", int, ("grpo",)), ("beta", float, ("grpo",)),
    ("temperature", float, ("grpo",)), ("top_p", float, ("grpo",)), ("max_completion_length", int, ("grpo",)),
    ("loss_type", str, ("grpo",)), ("scale_rewards", str, ("grpo",)), ("use_vllm", bool, ("grpo",)),
    ("vllm_mode", str, ("grpo",)), ("zero_std_patience", int, ("grpo",)),
)  # fmt: skip


def _trainer_flags(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("--config", default=None, help="YAML/JSON of stage fields or any TRL field (by its TRL name)")
    p.add_argument("--trl", action="append", default=[], metavar="KEY=VALUE",
                   help="any TRL trainer field, e.g. --trl max_grad_norm=0.5 (value read as YAML); repeatable")  # fmt: skip
    for name, typ, kinds in _TRL_FLAGS:
        if kind not in kinds:
            continue
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, type=typ, default=None)
    p.add_argument("--lora", action="store_true", default=None, help="train LoRA adapters (merged on save)")
    p.add_argument("--train-vision", action="store_true", help="do not freeze the vision tower")


def _trl_pairs(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--trl {item!r}: expected KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distil CoT judgments from a teacher endpoint (cold-start data)")
    p.add_argument("pairs", help="labelled pairs (JSONL)")
    p.add_argument("--out", required=True)
    p.add_argument("--base-url", required=True, action="append",
                   help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1; repeat for several (least in flight, failover)")  # fmt: skip
    p.add_argument("--model", default="gpt-4o")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--tasks", default="image_generation",
                   help="comma-separated tasks to distil, or 'all' (paper: image generation)")  # fmt: skip
    p.add_argument("--keep-unsound-reasoning", action="store_true",
                   help="keep answers with an empty <think> or totals that contradict the verdict (dropped by default)")  # fmt: skip
    p.add_argument("--make-unique-ids", action="store_true", help="rename repeated pair ids (with a warning) instead of refusing")
    _run_args(p)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--max-retries", type=int, default=4)
    hidden_alias(p, p.add_argument("--max-new-tokens", dest="max_tokens", metavar="N", type=int, default=2048,
                                   help="generation length of each teacher answer"), "--max-tokens")  # fmt: skip
    p.add_argument("--limit", type=int, default=None)
    _budget_args(p)
    p.set_defaults(func=_distill)

    p = sub.add_parser("sft", help="SFT on CoT records (cold start or rejection-sampling stage)", epilog=_PRECEDENCE)
    p.add_argument("records", help="JSONL of {pair, completion}")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    hidden_alias(p, p.add_argument("--model-family", dest="family", default=None), "--family")
    _trainer_flags(p, "sft")
    p.add_argument("--epochs", type=float, default=None, dest="num_train_epochs", help=argparse.SUPPRESS)  # old name
    p.add_argument("--overwrite", action="store_true", help="retrain when --out holds a model trained with other settings")
    _budget_args(p)
    p.set_defaults(func=_sft)

    p = sub.add_parser("sample", help="rejection sampling: k judgments per pair, routed to SFT or GRPO")
    p.add_argument("pairs")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    hidden_alias(p, p.add_argument("--model-family", dest="family", default=None), "--family")
    hidden_alias(p, p.add_argument("--num-samples", dest="k", metavar="N", type=int, default=4, help="judgments per pair"), "-k")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--judged-by", choices=["majority", "any", "all"], default="majority")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--chunk-size", type=int, default=64, help="pairs per generation call (written after each)")
    p.add_argument("--base-url", action="append", default=None,
                   help="sample from a served judge (--model: its served name); repeat for several (least in flight, failover); "
                        "key in $UNIREWARD_API_KEY")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight per --base-url")
    p.add_argument("--make-unique-ids", action="store_true", help="rename repeated pair ids (with a warning) instead of refusing")
    _run_args(p)
    _budget_args(p)
    from unireward.runs.ray_engine import add_engine_args

    add_engine_args(p)
    p.set_defaults(func=_sample)

    p = sub.add_parser("grpo", help="GRPO with format + accuracy rewards (TRL)", epilog=_PRECEDENCE)
    p.add_argument("records", help="JSONL of {pair} (e.g. grpo.jsonl from `unireward sample`)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    hidden_alias(p, p.add_argument("--model-family", dest="family", default=None), "--family")
    p.add_argument("--rewards", default=None,
                   help="comma-separated: format, accuracy, strict_format, consistency, position_consistency (default: format,accuracy)")  # fmt: skip
    p.add_argument("--order-balance", default=None, choices=ORDER_CHOICES,
                   help="candidate order of the input: none (default), swap_half, both_orders (a pair and its swap in one batch)")  # fmt: skip
    _trainer_flags(p, "grpo")
    p.add_argument("--overwrite", action="store_true", help="retrain when --out holds a model trained with other settings")
    _budget_args(p)
    p.set_defaults(func=_grpo)

    p = sub.add_parser("pipeline", help="distill -> cold start -> rejection sampling -> SFT -> GRPO -> evaluation")
    p.add_argument("--recipe", required=True, help="a recipe file or a name in configs/recipes")
    p.add_argument("--out", required=True)
    p.add_argument("--data-root", default=None,
                   help="folder the recipe's relative data paths resolve against (default: the recipe's folder; "
                        "give it with a shipped recipe, whose folder is inside the installed package)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="validate and print every stage's configuration; load nothing")
    p.add_argument("--stop-after", default=None, help="stop after this stage")
    p.add_argument("--overwrite", action="store_true",
                   help="redo a finished stage whose recipe settings changed (and every stage after it) instead of refusing")  # fmt: skip
    hidden_alias(p, p.add_argument("--model-family", dest="family", default=None, help="model family of the recipe's base model (overrides the recipe)"), "--family")
    p.add_argument("--seed", type=int, default=None, help="training seed (tiny-model init, teacher, trainers); data keep theirs")
    p.add_argument("--report-to", default=None, help="trackers for every training stage: none, tensorboard, wandb, trackio (comma-separated)")
    p.add_argument("--order-balance", default=None, choices=ORDER_CHOICES,
                   help="candidate order of every training set (overrides the recipe): none, swap_half, both_orders")  # fmt: skip
    p.set_defaults(func=_pipeline)

    p = sub.add_parser("configs", help="list the shipped recipes and accelerate/DeepSpeed configs, or print one's path")
    p.add_argument("name", nargs="?", default=None, help="e.g. accelerate/zero2-8gpu.yaml or recipes/tiny-cpu.yaml")
    p.set_defaults(func=_configs)



def _load_overrides(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields")
    return data


def _distill(args: argparse.Namespace) -> int:
    from unireward.train.distill import DistillConfig, distill

    cfg = DistillConfig(
        pairs=args.pairs, out_dir=args.out, base_url=",".join(args.base_url), model=args.model, api_key_env=args.api_key_env,
        media_root=args.media_root, template_family=args.template_family, tasks=args.tasks,
        limit=args.limit, concurrency=args.concurrency, timeout=args.timeout, max_retries=args.max_retries,
        max_tokens=args.max_tokens, budget=_budget(args), filter_reasoning=not args.keep_unsound_reasoning,
        make_unique_ids=args.make_unique_ids, overwrite=args.overwrite,
    )  # fmt: skip
    report = distill(cfg)
    print(json.dumps(report.to_dict(), indent=2))
    where = f"{args.out}/teacher_cache.jsonl and media_errors.jsonl" + _named_lines(report.bad_lines)
    failed = report.failed + report.media_errors + len(report.bad_lines)
    return _exit_status("distill", failed, report.pairs + len(report.bad_lines), args.max_error_rate, where)


def _stage_values(args: argparse.Namespace, cls: type, kind: str, **fixed: Any) -> dict[str, Any]:
    """Config fields of a training stage, in one precedence: explicit flags > --config file > defaults."""
    from dataclasses import fields

    from unireward.train.sft import LoraSettings
    from unireward.train.trl_settings import split_settings

    own = {f.name for f in fields(cls)}
    values = split_settings(_load_overrides(args.config), own, kind, f"--config {args.config}") if args.config else {}
    flags: dict[str, Any] = {"media_root": args.media_root, "template_family": args.template_family, "family": args.family,
                             "overwrite": True if args.overwrite else None,
                             "order_balance": getattr(args, "order_balance", None)}  # fmt: skip
    if _budget(args):
        flags["budget"] = _budget(args)
    flags.update({name: getattr(args, name) for name, _, kinds in _TRL_FLAGS if kind in kinds})
    flags.update(fixed)
    if args.lora:
        flags["lora"] = LoraSettings()
    if args.train_vision:
        flags["freeze_vision"] = False
    values.update({k: v for k, v in flags.items() if v is not None})
    explicit = split_settings(_trl_pairs(args.trl), own, kind, "--trl") if args.trl else {}
    trl = {**values.pop("trl", {}), **explicit.pop("trl", {})}
    values.update(explicit)
    for key in ("model", "train_file", "output_dir"):
        if key in values:
            raise ValueError(f"{key} is managed by the stage (given on the command line), not by --config or --trl")
    if trl:
        values["trl"] = trl
    return values


def _end_process_group() -> None:
    """Leave the process group cleanly: a rank still inside DeepSpeed's ops at interpreter exit can
    abort (seen after a first ``cpu_adam`` build)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _sft(args: argparse.Namespace) -> int:
    from unireward.train.sft import SFTStageConfig, run_sft

    values = _stage_values(args, SFTStageConfig, "sft")
    try:
        final = run_sft(SFTStageConfig(model=args.model, train_file=args.records, output_dir=args.out, **values))
    finally:
        _end_process_group()
    print(json.dumps({"model": str(final)}))
    return 0


def _sample(args: argparse.Namespace) -> int:
    from unireward.train.sample import SampleConfig, sample

    cfg = SampleConfig(
        model=args.model, pairs=args.pairs, out_dir=args.out, family=args.family, media_root=args.media_root,
        template_family=args.template_family, k=args.k, temperature=args.temperature,
        max_new_tokens=args.max_new_tokens, judged_by=args.judged_by, limit=args.limit, budget=_budget(args),
        make_unique_ids=args.make_unique_ids, overwrite=args.overwrite, chunk_size=args.chunk_size,
        base_url=",".join(args.base_url) if args.base_url else None, concurrency=args.concurrency,
    )  # fmt: skip
    from unireward.runs.ray_engine import options_from_args

    stats = sample(cfg, engine=options_from_args(args))
    stats.pop("config", None)
    print(json.dumps(stats, indent=2))
    where = f"{args.out}/samples.jsonl" + _named_lines(stats["bad_lines"])
    return _exit_status("sample", stats["failed"], stats["total_pairs"] + len(stats["bad_lines"]), args.max_error_rate, where)


def _grpo(args: argparse.Namespace) -> int:
    from unireward.train.grpo import GRPOStageConfig, run_grpo

    values = _stage_values(args, GRPOStageConfig, "grpo", rewards=tuple(args.rewards.split(",")) if args.rewards else None)
    try:
        final = run_grpo(GRPOStageConfig(model=args.model, train_file=args.records, output_dir=args.out, **values))
    finally:
        _end_process_group()
    print(json.dumps({"model": str(final)}))
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from unireward.train.pipeline import Pipeline, dry_run
    from unireward.train.recipe import STAGES, load_recipe

    recipe = load_recipe(args.recipe, data_root=args.data_root)
    if args.family:
        from unireward.models import get_family

        recipe = replace(recipe, model=replace(recipe.model, family=get_family(args.family).name))
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    if getattr(args, "order_balance", None):
        recipe = replace(recipe, order_balance=args.order_balance)
    if getattr(args, "report_to", None):  # an explicit flag beats the recipe, stage sections included
        stages = {k: {**getattr(recipe, k), "report_to": args.report_to} for k in ("base_sft", "cold_start", "rs_sft", "grpo")
                  if getattr(recipe, k) or k != "base_sft"}  # fmt: skip
        recipe = replace(recipe, report_to=args.report_to, **stages)
    if args.stop_after and args.stop_after not in STAGES:
        raise ValueError(f"--stop-after must be one of {STAGES}")
    if args.dry_run:
        from unireward.train.recipe import preflight, resolve

        out = dry_run(recipe, args.out)
        out["preflight"] = check = preflight(recipe, resolve(recipe, args.out))
        print(json.dumps(out, indent=2, default=str))
        for problem in check["problems"]:
            print(f"unireward pipeline --dry-run: {problem}", file=sys.stderr)
        return 0 if check["ok"] else 1
    report = Pipeline(recipe, args.out, stop_after=args.stop_after, overwrite=args.overwrite).run()
    _print_table(report)
    return 0


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    tasks = sorted({t for s in report["stages"] for t in s["per_task"]})
    title = (f"{report['recipe']}: held-out pairwise accuracy on {report['test_pairs']} "
             f"{report['data'].upper()} pairs ({report['test_file_name']}; no ties; unparsed = wrong)")  # fmt: skip
    table = Table(title=title)
    for col in ("stage", "accuracy %", "format valid %", *tasks):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for s in report["stages"]:
        table.add_row(s["name"], f"{100 * s['accuracy']:.1f}", f"{100 * s['format_validity']:.1f}",
                      *(f"{100 * s['per_task'].get(t, 0):.1f}" for t in tasks))  # fmt: skip
    console = Console()
    console.print(table)
    for k, v in report.get("gains", {}).items():
        console.print(f"{k}: {v:+.1f} points")


def _configs(args: argparse.Namespace) -> int:
    from unireward.train.recipe import CONFIGS, shipped

    if args.name:
        path = (CONFIGS / args.name).resolve()
        if CONFIGS.resolve() not in path.parents or not path.is_file():
            raise FileNotFoundError(f"no shipped config {args.name!r}; `unireward configs` lists them")
        print(path)
        return 0
    print(json.dumps({kind: [str(p) for p in shipped(kind)] for kind in ("recipes", "accelerate", "deepspeed")}, indent=2))
    return 0
