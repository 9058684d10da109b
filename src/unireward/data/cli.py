"""``unireward data``: convert public sources, mix them, export to other trainers, print statistics."""

from __future__ import annotations

import argparse
import json

from unireward.cli_args import hidden_alias


def register(sub: argparse._SubParsersAction) -> None:
    from unireward.data.converters import CONVERTERS

    p = sub.add_parser("data", help="training data: convert, mix, export, stats")
    dsub = p.add_subparsers(dest="data_command", required=True)

    c = dsub.add_parser("convert", help="convert a public preference set to pairs JSONL")
    c.add_argument("input", help="the source's folder or data file, or 'hub' to load it from the hub")
    c.add_argument("--source", required=True, choices=sorted(CONVERTERS))
    c.add_argument("--out", required=True, help="pairs JSONL to write")
    c.add_argument("--root", help="folder media paths are relative to (default: the input folder)")
    c.add_argument("--media-out", help="folder for images embedded in the rows (default: beside --out)")
    c.add_argument("--rejects", help="rejected rows JSONL (default: <out>.rejects.jsonl)")
    c.add_argument("--no-balance", action="store_true", help="keep chosen first for chosen/rejected sources")
    c.add_argument("--check-media", action="store_true", help="reject rows whose media files are missing")
    c.add_argument("--limit", type=int, help="stop after this many pairs")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--criterion", help="Rapidata: which criterion decides the label (preference, coherence, alignment)")
    c.add_argument("--tie-margin", type=float, help="Rapidata: share gap at or below which the pair is a tie")
    c.add_argument("--min-margin", type=float, help="EvalMuse: smallest mean-score gap that makes a pair")
    c.set_defaults(func=_convert)

    m = dsub.add_parser("mix", help="sample several sources into one shuffled training file")
    m.add_argument("config", help="mixture YAML")
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, help="override the config's seed")
    m.add_argument("--swap", action="store_true", help="add swapped copies of every pair")
    m.set_defaults(func=_mix)

    e = dsub.add_parser("export", help="write pairs as a TRL, verl/EasyR1 or LLaMA-Factory dataset")
    e.add_argument("input", help="pairs JSONL")
    e.add_argument("--format", required=True, choices=("trl", "verl", "llamafactory"))
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--media-root", help="folder relative media paths are resolved against")
    e.add_argument("--swap", action="store_true", help="add swapped copies (candidates swapped, labels flipped)")
    hidden_alias(e, e.add_argument("--template-family", dest="family", help="prompt template family (default: the official one)"),
                 "--family")  # fmt: skip
    e.add_argument("--video-as", choices=("frames", "video"), default="frames")
    e.add_argument("--frames", type=int, default=8, help="frames sampled per video")
    e.add_argument("--frames-dir", help="where sampled frames are written (default: <out>/frames)")
    e.add_argument("--trl-kind", choices=("sft", "grpo", "both"), default="both")
    e.add_argument("--flavor", choices=("verl", "easyr1"), default="verl", help="verl format: which loader to target")
    e.add_argument("--embed-images", action="store_true", help="verl format: store image bytes in the parquet")
    e.add_argument("--min-pixels", type=int, default=None, help="verl format: per-image lower pixel bound written into each row")
    e.add_argument("--max-pixels", type=int, default=None, help="verl format: per-image upper pixel bound (default: the judge's 147456)")
    e.set_defaults(func=_export)

    s = dsub.add_parser("stats", help="counts per task, label and source; missing media")
    s.add_argument("input", help="pairs JSONL")
    s.add_argument("--media-root")
    s.add_argument("--no-media-check", action="store_true")
    s.set_defaults(func=_stats)


def _convert(args: argparse.Namespace) -> int:
    from unireward.data.converters import convert

    rep = convert(
        args.source, args.input, args.out, root=args.root, media_out=args.media_out, rejects=args.rejects,
        balance=not args.no_balance, check_media=args.check_media, limit=args.limit, seed=args.seed,
        **_options(args),
    )  # fmt: skip
    print(json.dumps(rep.to_dict()))
    return 0 if rep.written else 1


def _options(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    if args.criterion is not None:
        out["criterion"] = args.criterion
    if args.tie_margin is not None:
        out["tie_margin"] = args.tie_margin
    if args.min_margin is not None:
        out["min_margin"] = args.min_margin
    return out


def _mix(args: argparse.Namespace) -> int:
    from unireward.data.mix import MixConfig, mix

    cfg = MixConfig.from_yaml(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    if args.swap:
        cfg.swap_augment = True
    print(json.dumps(mix(cfg, args.out).to_dict()))
    return 0


def _export(args: argparse.Namespace) -> int:
    from unireward.data.export import ExportConfig, export_file

    kinds = ("sft", "grpo") if args.trl_kind == "both" else (args.trl_kind,)
    cfg = ExportConfig(
        format=args.format, media_root=args.media_root, swap=args.swap, family=args.family, video_as=args.video_as,
        frames=args.frames, frames_dir=args.frames_dir, trl_kinds=kinds, flavor=args.flavor,
        embed_images=args.embed_images,
        **{k: v for k, v in (("min_pixels", args.min_pixels), ("max_pixels", args.max_pixels)) if v is not None},
    )  # fmt: skip
    print(json.dumps(export_file(args.input, args.out, cfg).to_dict()))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from unireward.data.stats import pair_stats

    st = pair_stats(args.input, root=args.media_root, check_media=not args.no_media_check)
    print(json.dumps(st.to_dict(), indent=2))
    return 0
