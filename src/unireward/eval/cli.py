"""``unireward eval BENCH --judge J ...`` and ``unireward eval replay ...``."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import Any

from unireward.cli_args import hidden_alias
from unireward.eval.benchmarks import BENCHMARKS, GENAI_TASKS
from unireward.eval.protocols import PROTOCOLS
from unireward.eval.runner import ORDERS, EvalConfig, run_eval


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", "--annotations", dest="data", required=True,
                   help="benchmark file (.jsonl/.json/.csv/.parquet) or a hub dataset id")  # fmt: skip
    p.add_argument("--judge", default="baseline:random",
                   help="baseline:random[:SEED]|first|shorter|longer, a model directory, or with --base-url the served model name")  # fmt: skip
    p.add_argument("--base-url", action="append", default=None,
                   help="OpenAI-compatible endpoint serving --judge; repeat for several (least in flight, failover)")  # fmt: skip
    p.add_argument("--api-key", default=os.environ.get("UNIREWARD_API_KEY"), help="key for --base-url (env UNIREWARD_API_KEY)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight per --base-url")
    p.add_argument("--media-root", "--images", "--videos", dest="media_root", help="folder that media paths are relative to")
    p.add_argument("--split", help="split label / hub split (GenAI-Bench: test or test_v1)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="answer", help="how the judge's text names its verdict")
    p.add_argument("--order", choices=ORDERS, help="candidate order shown to the judge (default: the benchmark's official "
                   "convention, see 'unireward eval list'; both = each pair in both orders, with position metrics)")
    p.add_argument("--seed", type=int, default=0)
    hidden_alias(p, p.add_argument("--num-samples", dest="samples", metavar="N", type=int, default=1,
                                   help="judgments per pair (majority vote on VL-RewardBench)"), "--samples")  # fmt: skip
    p.add_argument("--unparsed", choices=("exclude", "wrong"), help="default: the benchmark's official choice")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, help="first N pairs only")
    p.add_argument("--max-new-tokens", type=int, help="model judges: generation budget per judgment")
    p.add_argument("--temperature", type=float, help="model judges: sampling temperature (needed for --num-samples > 1)")
    p.add_argument("--template-family", help="model judges: prompt family (default: the official prompts)")
    p.add_argument("--video-as", choices=("video", "frames"), help="model judges: send videos as videos or frame images")
    p.add_argument("--synthetic", action="store_true", help="label the numbers as made on synthetic data")
    p.add_argument("--pointwise", action="store_true",
                   help="score each distinct candidate once with the judge's pointwise protocol and compare scores (no order)")
    p.add_argument("--out", help="output folder (default runs/eval/BENCH-JUDGE); rerunning resumes")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--overwrite", action="store_true", help="start afresh when --out was made with other settings")
    p.add_argument("--max-error-rate", type=float, default=0.0,
                   help="share of failed judgments (0-1) tolerated before the exit status is 1 (default 0)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar (shown for model judges)")
    from unireward.runs.ray_engine import add_engine_args

    add_engine_args(p)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    return x


def _run(args: argparse.Namespace) -> int:
    judge_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", args.judge).strip("-")
    cfg = EvalConfig(
        benchmark=args.benchmark, data=args.data, out_dir=args.out or f"runs/eval/{args.benchmark}-{judge_slug}",
        judge=args.judge, media_root=args.media_root, split=args.split, task=getattr(args, "task", None),
        protocol=args.protocol, order=args.order, seed=args.seed, samples=args.samples, unparsed=args.unparsed,
        variant=getattr(args, "variant", None), official_compat=getattr(args, "official_compat", False), margin=getattr(args, "margin", "verdict"),
        batch_size=args.batch_size, limit=args.limit, data_kind="synthetic" if args.synthetic else "real",
        judge_options={k: v for k, v in (("max_new_tokens", args.max_new_tokens), ("temperature", args.temperature),
                                         ("template_family", args.template_family), ("video_as", args.video_as))
                       if v is not None},  # fmt: skip
        overwrite=args.overwrite, progress=not args.no_progress, pointwise=args.pointwise,
    )  # fmt: skip
    judge = None
    if args.base_url:  # a served judge: nothing to load, so build it here and pass it in
        from unireward.judge import Judge

        judge = Judge.from_endpoint(args.base_url, args.judge, api_key=args.api_key, concurrency=args.concurrency,
                                    **cfg.judge_options)  # fmt: skip
    from unireward.runs.ray_engine import options_from_args

    engine = options_from_args(args)
    if engine is not None and args.base_url:
        raise ValueError("--engine ray loads the judge on each worker; a served judge spreads over its --base-url endpoints")
    report = run_eval(cfg, judge, engine)
    if judge is not None:
        from unireward.judge.endpoints import endpoint_summary

        if (per_endpoint := endpoint_summary(judge)) is not None:
            report = {**report, "endpoints": per_endpoint}
            print(json.dumps({"endpoints": per_endpoint}), file=sys.stderr)
    if args.json:
        if cfg.benchmark == "vl-rewardbench":
            res = report["results"]
            out = {"overall": report["overall"], "official": res["official"], "legacy": res["legacy"], "position": report["position"],
                   "position_groups": report["position_groups"], "skipped": report["skipped"], "labels": report["labels"]}  # fmt: skip
        else:
            out = report
        print(json.dumps(_clean(out), indent=2))
    else:
        from unireward.eval.report import render_markdown

        print(render_markdown(report))
        print(f"report written to {cfg.out_dir}")
    errors = report["errors"]
    n_bad = len(errors.get("bad_records", []))
    n_err, n = errors["judgments"] + n_bad, report["n_judgments"] + n_bad
    if n_err > args.max_error_rate * n:
        print(f"unireward eval: {errors['judgments']} of {report['n_judgments']} judgments failed and {n_bad} records could not "
              f"be read ({errors['pairs'] + n_bad} pairs left out of every number); rerun the same command to retry failed "
              "judgments, fix the data, or allow some with --max-error-rate", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _replay(args: argparse.Namespace) -> int:
    from unireward.eval.replay import replay

    result = _clean(replay(args.file, args.protocol, args.task))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


def _list(args: argparse.Namespace) -> int:
    from unireward.eval.benchmarks import benchmark_table

    if args.json:
        rows = [{"name": b.name, "description": b.description, "data_format": b.data_format, "metric": b.metric,
                 "licence": b.licence, "default_order": b.default_order, "tasks": list(b.tasks)} for b in BENCHMARKS.values()]  # fmt: skip
        print(json.dumps(rows, indent=2))
    else:
        print(benchmark_table())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="evaluate a judge on a reward benchmark, or replay stored outputs")
    sub = ev.add_subparsers(dest="benchmark", required=True)
    ls = sub.add_parser("list", help="every benchmark: data format, official metric, licence, default order")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    for name, bench in BENCHMARKS.items():
        p = sub.add_parser(name, help=bench.description)
        _common(p)
        if name == "genai-bench":
            p.add_argument("--task", choices=GENAI_TASKS, help="config (default: detected from the columns)")
        elif bench.tasks:
            p.add_argument("--task", choices=bench.tasks, help="one task or subset only (default: all)")
        if bench.variants:
            p.add_argument("--variant", choices=bench.variants, required=True, help="which of the benchmarks of this name")
        if name == "videogen-rewardbench":
            p.add_argument("--official-compat", action="store_true", help="w/ ties by VideoAlign's own loop")
            p.add_argument("--margin", choices=("verdict", "totals"), default="verdict",
                           help="score_A - score_B from the verdicts (±1, averaged) or the <think> total scores")  # fmt: skip
        p.set_defaults(func=_run)
    rp = sub.add_parser("replay", help="score existing judge outputs (no model)")
    rp.add_argument("file")
    rp.add_argument("--protocol", choices=PROTOCOLS, default="genai-bench")
    rp.add_argument("--task", default="image_generation", help="task for the answer protocol")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=_replay)
