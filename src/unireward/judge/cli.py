"""``unireward judge``: one pair to stdout, or a JSONL file of pairs to a resumable JSONL file."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from unireward.cli_args import hidden_alias
from unireward.protocol.tasks import Task


def register(sub: argparse._SubParsersAction) -> None:
    from unireward.protocol.templates import list_families

    p = sub.add_parser(
        "judge",
        help="judge a pair (prints JSON) or a JSONL file of pairs (appends results, resumable)",
        description="Judge one pair (--task/--prompt/--candidate x2) or a file of pairs (--input/--out).",
    )
    src = p.add_argument_group("model")
    src.add_argument(
        "--model", required=True, help="local folder or hub id; with --base-url the served model name"
    )
    hidden_alias(src, src.add_argument("--model-family", dest="family", default=None, help="model family (detected from config.json if omitted)"), "--family")
    src.add_argument(
        "--base-url",
        action="append",
        default=None,
        help="OpenAI-compatible endpoint (e.g. a vLLM server) instead of loading --model; repeat for several "
        "(least-in-flight, failover, health checks)",
    )
    src.add_argument(
        "--api-key",
        default=os.environ.get("UNIREWARD_API_KEY"),
        help="key for --base-url (env UNIREWARD_API_KEY)",
    )
    src.add_argument("--concurrency", type=int, default=8, help="requests in flight per --base-url")
    src.add_argument("--device", default=None)
    src.add_argument("--dtype", default="auto")
    one = p.add_argument_group("one pair")
    one.add_argument("--task", choices=[t.value for t in Task])
    one.add_argument("--prompt", help="caption (generation), question (understanding) or instruction (image_editing)")
    one.add_argument(
        "--candidate", action="append", default=[], help="media path (generation) or answer text; give twice"
    )
    one.add_argument("--reference", help="image/video the question is about (understanding), or the source image (image_editing)")
    one.add_argument(
        "--pointwise", action="store_true",
        help="score one --candidate instead of comparing two (with --input: each candidate of each pair)"
    )
    many = p.add_argument_group("file of pairs")
    many.add_argument("--input", help="pairs JSONL (unireward schema)")
    hidden_alias(many, many.add_argument(
        "--out", dest="output", metavar="PATH", help="results JSONL; a rerun with the same settings judges only what is missing or failed"
    ), "--output")
    many.add_argument("--overwrite", action="store_true", help="start afresh when --out was made with other settings")
    many.add_argument("--max-error-rate", type=float, default=0.0,
                      help="share of failed rows (0-1) tolerated before the exit status is 1 (default 0)")  # fmt: skip
    many.add_argument(
        "--media-root", default=None, help="directory relative media paths are resolved against"
    )
    many.add_argument(
        "--chunk-size", type=int, default=16, help="pairs per backend call (results are written after each)"
    )
    gen = p.add_argument_group("generation")
    gen.add_argument("--max-new-tokens", type=int, default=4096)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument(
        "--num-samples",
        type=int,
        default=1,
        help="majority vote over this many samples (needs --temperature > 0)",
    )
    gen.add_argument(
        "--swap", action="store_true", help="also judge with candidates swapped; report agreement"
    )
    gen.add_argument("--strict", action="store_true", help="strict output format")
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument(
        "--batch-size", type=int, default=16, help="prompts per generate call (transformers backend)"
    )
    gen.add_argument(
        "--max-pixels", type=int, default=None, help="pixel cap per image/frame (default: the family's)"
    )
    gen.add_argument("--frames", type=int, default=None, help="frames sampled per video (default 8)")
    gen.add_argument("--template-family", default=None, choices=list_families(),
                     help="protocol: the released judge's prompts and verdict (default: the one `unireward zoo` "
                          "lists for --model, else unifiedreward-think; with --pointwise, that family's pointwise "
                          "prompts)")  # fmt: skip
    gen.add_argument("--video-as", choices=["video", "frames"], default="video",
                     help="send videos as videos or as frame images (models trained with TRL saw frames)")  # fmt: skip
    gen.add_argument("--no-progress", action="store_true")
    from unireward.runs.ray_engine import add_engine_args

    add_engine_args(p)
    p.set_defaults(func=run)


def build_judge(args: argparse.Namespace) -> Any:
    from unireward.judge.judge import Judge
    from unireward.judge.options import BatchOptions, JudgeOptions
    from unireward.media import VisionBudget
    from unireward.models.zoo import picked_template_family
    from unireward.protocol.templates import family_modes, list_families

    pointwise = getattr(args, "pointwise", False)
    # a released checkpoint answers in its own protocol; an explicit --template-family wins
    family = args.template_family or picked_template_family(args.model, "pointwise" if pointwise else "pairwise")
    if family is not None and pointwise and "pointwise" not in family_modes(family):
        raise ValueError(f"template family {family!r} has no pointwise prompts; pointwise families: "
                         f"{[f for f in list_families() if 'pointwise' in family_modes(f)]}")  # fmt: skip
    opts = JudgeOptions(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
        num_samples=args.num_samples, swap=args.swap, strict=args.strict, seed=args.seed,
        template_family=family if family is None or "pairwise" in family_modes(family) else None,
        pointwise_family=family if family is not None and "pointwise" in family_modes(family) else None,
        video_as=args.video_as,
    )  # fmt: skip
    overrides = {k: v for k, v in (("max_pixels", args.max_pixels), ("frames", args.frames)) if v is not None}
    if args.base_url:
        budget = VisionBudget(**overrides)
        judge = Judge.from_endpoint(
            args.base_url, args.model, api_key=args.api_key, concurrency=args.concurrency, budget=budget
        )
        judge.options = opts
        return judge
    from unireward.judge.backends import TransformersBackend
    from unireward.models import detect_family, get_family

    fam = get_family(args.family) if args.family else detect_family(args.model)
    budget = fam.budget(**overrides)
    backend = TransformersBackend.load(args.model, family=fam.name, device=args.device, dtype=args.dtype, budget=budget,
                                       batch=BatchOptions(max_batch_size=args.batch_size))  # fmt: skip
    return Judge(backend, opts)


def result_row(res: Any, pair: Any = None) -> dict[str, Any]:
    """The JSON row of one judgment: verdict first, then scores, reasoning and raw text."""
    d = res.to_dict()
    row: dict[str, Any] = {"id": res.id, "status": d["status"], "winner": d["winner"], "tie": d["tie"],
                           "score": d["score"], "overall": d["overall"], "scores": d["scores"]}  # fmt: skip
    if pair is not None:
        row["label"] = pair.label
        row["correct"] = None if pair.label == "tie" or res.winner is None else res.winner == pair.label
    for key in ("answer", "think", "totals", "totals_consistent", "dimensions", "votes", "preference", "agreement",
                "reason", "error", "task", "mode", "template_family", "verdict", "text", "samples", "swapped_samples",
                "swapped_representative"):  # fmt: skip
        row[key] = d.get(key)
    return row


def run(args: argparse.Namespace) -> int:
    if args.input or args.output:
        if not (args.input and args.output):
            raise ValueError("--input and --out go together")
        if args.task or args.candidate:
            raise ValueError(
                "give either --input/--out or one pair (--task/--prompt/--candidate), not both"
            )
        return run_file(args)
    return run_one(args)


def run_one(args: argparse.Namespace) -> int:
    if not args.task or args.prompt is None:
        raise ValueError("one pair needs --task, --prompt and --candidate (or use --input/--out)")
    need = 1 if args.pointwise else 2
    if len(args.candidate) != need:
        raise ValueError(f"--candidate must be given {need} time(s), got {len(args.candidate)}")
    judge = build_judge(args)
    if args.pointwise:
        res = judge.score(args.task, args.prompt, args.candidate[0], reference=args.reference)
    else:
        res = judge.compare(
            args.task, args.prompt, args.candidate[0], args.candidate[1], reference=args.reference
        )
    print(json.dumps(result_row(res), ensure_ascii=False))
    return 0 if res.error is None else 1


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What shapes a file run's rows (recorded in its manifest; a rerun must match to resume)."""
    from unireward.manifest import file_fingerprint, model_fingerprint

    return {
        "model": args.model, "model_fingerprint": None if args.base_url else model_fingerprint(args.model),
        "family": args.family, "template_family": args.template_family, "video_as": args.video_as,
        "max_pixels": args.max_pixels, "frames": args.frames, "media_root": args.media_root,
        "max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p,
        "num_samples": args.num_samples, "swap": args.swap, "strict": args.strict, "seed": args.seed,
        "pointwise": args.pointwise, "input_fingerprint": file_fingerprint(args.input),
    }  # fmt: skip


def _retry(row: dict[str, Any]) -> bool:
    """Failed rows are judged again on rerun (a timeout, a 5xx, a media file fixed since); rows of
    the input that are not valid pairs are not (the input cannot change without a new manifest)."""
    return row.get("error") is not None and row.get("id") is not None


def pointwise_row(pair: Any, results: list[Any]) -> dict[str, Any]:
    """One pair scored candidate by candidate: scores, the higher one as winner (equal: a tie)."""
    scores = [r.score for r in results]
    error = next((f"candidate {i + 1}: {r.error}" for i, r in enumerate(results) if r.error), None)
    winner: Any = None
    if error is None and None not in scores:
        winner = 1 if scores[0] > scores[1] else 2 if scores[1] > scores[0] else "tie"
    status = "error" if error else ("ok" if None not in scores else "invalid")
    correct = None if pair.label == "tie" or winner in (None, "tie") else winner == pair.label
    return {"id": pair.id, "status": status, "winner": winner, "score": None, "label": pair.label, "correct": correct,
            "mode": "pointwise", "scores": scores, "error": error, "task": pair.task.value,
            "think": [r.think for r in results], "text": [r.text for r in results]}  # fmt: skip


def _judge_chunk(judge: Any, pairs: list[Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    if not args.pointwise:
        return [result_row(r, p) for p, r in zip(pairs, judge.compare_batch(pairs, media_root=args.media_root), strict=True)]
    items = [{"task": p.task.value, "prompt": p.prompt, "candidate": c, "reference": p.reference, "id": p.id}
             for p in pairs for c in p.candidates]  # fmt: skip
    res = judge.score_many(items, media_root=args.media_root)
    return [pointwise_row(p, res[2 * i : 2 * i + 2]) for i, p in enumerate(pairs)]


def plan_file(path: Path) -> list[Any]:
    """The items of a pairs file, keyed by id. Ids may repeat in real data (VL-RewardBench does):
    the n-th repeat of an id is keyed ``<id>#n``. A line that is not a valid pair becomes its error
    row (``status: invalid``, naming the line), written once and not retried."""
    from unireward.data.schema import PreferencePair, iter_pairs
    from unireward.runs.job import Item

    seen: Counter[str] = Counter()
    plan = []
    for item in iter_pairs(path, errors="yield"):
        ident = item.id if isinstance(item, PreferencePair) else f"row {item.row}"
        key = ident if seen[ident] == 0 else f"{ident}#{seen[ident]}"
        seen[ident] += 1
        if isinstance(item, PreferencePair):
            plan.append(Item(key, item))
        else:
            plan.append(Item(key, row={"key": key, "id": None, "status": "invalid", "winner": None, "error": str(item)}))
    return plan


def run_file(args: argparse.Namespace) -> int:
    from unireward.runs.job import Job, JobSpec
    from unireward.runs.manifest import Manifest

    in_path, out_path = Path(args.input), Path(args.output)
    if not in_path.is_file():
        raise FileNotFoundError(f"--input {in_path} does not exist")
    if out_path.exists() and out_path.resolve() == in_path.resolve():
        raise ValueError("--out must differ from --input (results are appended to the output)")
    spec = JobSpec("judge", out_path, Manifest("judge", run_settings(args)), key="key", chunk_size=max(1, args.chunk_size),
                   overwrite=args.overwrite, max_error_rate=args.max_error_rate, retry=_retry,
                   progress="" if args.no_progress else "judging", unit="row")  # fmt: skip

    built: list[Any] = []

    def load() -> Any:
        judge = build_judge(args)
        built.append(judge)
        return lambda chunk: [{"key": it.key, **row} for it, row in zip(chunk.items, _judge_chunk(judge, chunk.values, args), strict=True)]

    from unireward.runs.ray_engine import make_runner, options_from_args

    runner = make_runner(load, options_from_args(args))  # None: this process
    result = Job(spec, plan_file(in_path), work=load).run(runner)
    n_err = sum(r.get("error") is not None for r in result.rows)
    unparsed = sum(r.get("error") is None and r.get("winner") is None for r in result.rows)
    summary = {"output": str(out_path), "total": result.total, "skipped": result.skipped, "judged": result.ran,
               "errors": n_err, "unparsed": unparsed}  # fmt: skip
    if built:
        from unireward.judge.endpoints import endpoint_summary

        if (per_endpoint := endpoint_summary(built[0])) is not None:
            summary["endpoints"] = per_endpoint  # several --base-url: what each endpoint did
    if runner is not None and result.ran:
        summary["workers"] = runner.summary()  # --engine ray: rows per node and per worker
    print(json.dumps(summary))
    return result.exit_status()
