"""``unireward judge``: one pair to stdout, or a JSONL file of pairs to a resumable JSONL file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from unireward.protocol.tasks import Task


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a pair (prints JSON) or a JSONL file of pairs (appends results, resumable)",
        description="Judge one pair (--task/--prompt/--candidate x2) or a file of pairs (--input/--output).",
    )
    src = p.add_argument_group("model")
    src.add_argument(
        "--model", required=True, help="local folder or hub id; with --base-url the served model name"
    )
    src.add_argument("--family", default=None, help="model family (detected from config.json if omitted)")
    src.add_argument(
        "--base-url",
        default=None,
        help="OpenAI-compatible endpoint (e.g. a vLLM server) instead of loading --model",
    )
    src.add_argument(
        "--api-key",
        default=os.environ.get("UNIREWARD_API_KEY"),
        help="key for --base-url (env UNIREWARD_API_KEY)",
    )
    src.add_argument("--concurrency", type=int, default=8, help="requests in flight with --base-url")
    src.add_argument("--device", default=None)
    src.add_argument("--dtype", default="auto")
    one = p.add_argument_group("one pair")
    one.add_argument("--task", choices=[t.value for t in Task])
    one.add_argument("--prompt", help="caption (generation) or question (understanding)")
    one.add_argument(
        "--candidate", action="append", default=[], help="media path (generation) or answer text; give twice"
    )
    one.add_argument("--reference", help="image/video the question is about (understanding tasks)")
    one.add_argument(
        "--pointwise", action="store_true", help="score one --candidate 1-10 instead of comparing two"
    )
    many = p.add_argument_group("file of pairs")
    many.add_argument("--input", help="pairs JSONL (unireward schema)")
    many.add_argument("--output", help="results JSONL; appended to, rows already there are skipped")
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
    gen.add_argument("--template-family", default=None, help="prompt family (default: the official prompts)")
    gen.add_argument("--video-as", choices=["video", "frames"], default="video",
                     help="send videos as videos or as frame images (models trained with TRL saw frames)")  # fmt: skip
    gen.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def build_judge(args: argparse.Namespace) -> Any:
    from unireward.judge.judge import Judge
    from unireward.judge.options import BatchOptions, JudgeOptions
    from unireward.media import VisionBudget

    opts = JudgeOptions(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
        num_samples=args.num_samples, swap=args.swap, strict=args.strict, seed=args.seed,
        template_family=args.template_family, video_as=args.video_as,
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
    row: dict[str, Any] = {"id": res.id, "status": d["status"], "winner": d["winner"], "score": d["score"]}
    if pair is not None:
        row["label"] = pair.label
        row["correct"] = None if pair.label == "tie" or res.winner is None else res.winner == pair.label
    for key in ("answer", "think", "totals", "totals_consistent", "dimensions", "votes", "preference", "agreement",
                "reason", "error", "task", "mode", "text", "samples", "swapped_samples"):  # fmt: skip
        row[key] = d.get(key)
    return row


def run(args: argparse.Namespace) -> int:
    if args.input or args.output:
        if not (args.input and args.output):
            raise ValueError("--input and --output go together")
        if args.task or args.candidate:
            raise ValueError(
                "give either --input/--output or one pair (--task/--prompt/--candidate), not both"
            )
        return run_file(args)
    return run_one(args)


def run_one(args: argparse.Namespace) -> int:
    if not args.task or args.prompt is None:
        raise ValueError("one pair needs --task, --prompt and --candidate (or use --input/--output)")
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


def _repair_tail(path: Path) -> None:
    """Drop a half-written last line (a run killed mid-write) so appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)


def done_keys(path: Path) -> set[str]:
    """Keys of the rows an output file already holds."""
    keys: set[str] = set()
    if not path.exists():
        return keys
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                keys.add(str(row["key"]))
    return keys


def run_file(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from unireward.data.schema import PreferencePair, SchemaError, iter_pairs

    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _repair_tail(out_path)
    done = done_keys(out_path)
    # Ids may repeat in real data (VL-RewardBench does); the n-th occurrence of an id is its own key.
    seen: Counter[str] = Counter()
    todo: list[tuple[str, PreferencePair | SchemaError]] = []
    for item in iter_pairs(args.input, errors="yield"):
        ident = item.id if isinstance(item, PreferencePair) else f"row {item.row}"
        key = ident if seen[ident] == 0 else f"{ident}#{seen[ident]}"
        seen[ident] += 1
        if key not in done:
            todo.append((key, item))
    total = sum(seen.values())
    if not todo:
        print(
            json.dumps({"output": str(out_path), "total": total, "skipped": total, "judged": 0, "errors": 0})
        )
        return 0
    judge = build_judge(args)
    n_err = 0
    bar = tqdm(
        total=total,
        initial=total - len(todo),
        desc="judging",
        unit="pair",
        disable=args.no_progress,
        file=sys.stderr,
    )
    with open(out_path, "a", encoding="utf-8") as f:
        for start in range(0, len(todo), max(1, args.chunk_size)):
            chunk = todo[start : start + args.chunk_size]
            pairs = [(k, p) for k, p in chunk if isinstance(p, PreferencePair)]
            results = judge.compare_batch([p for _, p in pairs], media_root=args.media_root) if pairs else []
            by_key = {k: (p, r) for (k, p), r in zip(pairs, results, strict=True)}
            for key, item in chunk:
                if isinstance(item, SchemaError):
                    row = {"key": key, "id": None, "status": "invalid", "winner": None, "error": str(item)}
                else:
                    pair, res = by_key[key]
                    row = {"key": key, **result_row(res, pair)}
                n_err += row.get("error") is not None
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(chunk))
    bar.close()
    print(
        json.dumps(
            {
                "output": str(out_path),
                "total": total,
                "skipped": total - len(todo),
                "judged": len(todo),
                "errors": n_err,
            }
        )
    )
    return 0
