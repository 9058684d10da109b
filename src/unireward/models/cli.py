"""``unireward tiny-model`` (a tiny random judge, offline), ``unireward convert-llava`` (a LLaVA-NeXT
checkpoint into the transformers format the ``llava_onevision`` family loads) and ``unireward zoo``
(the released checkpoints)."""

from __future__ import annotations

import argparse
import json

from unireward.cli_args import hidden_alias


def register(sub: argparse._SubParsersAction) -> None:
    from unireward.models.family import list_families

    p = sub.add_parser("tiny-model", help="build a tiny random model (tokenizer, processor, chat template) offline")
    p.add_argument("out_dir")
    hidden_alias(p, p.add_argument("--model-family", dest="family", default="qwen2_5_vl", choices=list_families()), "--family")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=2)
    p.set_defaults(func=_run)

    c = sub.add_parser(
        "convert-llava",
        help="convert a LLaVA-NeXT llava_qwen checkpoint (UnifiedReward-Think-7b) to transformers' LLaVA-OneVision",
    )
    c.add_argument("source", help="HF id or folder of the LLaVA-NeXT checkpoint")
    c.add_argument("out_dir")
    c.add_argument("--dtype", default="auto", choices=("auto", "float16", "bfloat16", "float32"))
    c.add_argument("--vision-tower", default=None, help="SigLIP checkpoint to take the vision weights from when the source lacks them")
    c.add_argument("--vision-heads", type=int, default=None, help="vision attention heads, for a tower not in the known list")
    c.add_argument("--vision-image-size", type=int, default=None,
                   help="vision input side in pixels (SigLIP-so400m-patch14-384: 384), for a tower not in the known list")
    c.add_argument("--no-system-prompt", action="store_true", help="no default system turn in the chat template")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=_convert)

    z = sub.add_parser("zoo", help="list the released UnifiedReward checkpoints: model family, protocol, conversion")
    z.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    z.add_argument("--markdown", action="store_true", help="the README table (one row per release)")
    z.set_defaults(func=_zoo)


def _run(args: argparse.Namespace) -> int:
    from unireward.models.family import get_family

    fam = get_family(args.family)
    out = fam.build_tiny(args.out_dir, seed=args.seed, hidden_size=args.hidden_size, num_layers=args.num_layers)
    print(json.dumps({"family": fam.name, "path": str(out)}))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from unireward.models.llava_convert import DEFAULT_SYSTEM, ConvertConfig, convert_llava_qwen

    cfg = ConvertConfig(
        dtype=args.dtype, vision_tower=args.vision_tower, vision_heads=args.vision_heads,
        vision_image_size=args.vision_image_size,
        system_prompt=None if args.no_system_prompt else DEFAULT_SYSTEM, overwrite=args.overwrite,
    )  # fmt: skip
    out = convert_llava_qwen(args.source, args.out_dir, cfg)
    print(json.dumps({"converted": args.source, "path": str(out), "family": "llava_onevision"}))
    return 0


def _zoo(args: argparse.Namespace) -> int:
    from unireward.models.zoo import RELEASED_JUDGES, as_json, markdown_table

    if args.json:
        print(json.dumps(as_json(), indent=1))
    elif args.markdown:
        print(markdown_table())
    else:
        rows = [("checkpoint", "model family", "protocols", "loading")] + [
            (j.id, j.model_family, ",".join(j.template_families) or "-", "convert-llava" if j.convert else "direct")
            for j in RELEASED_JUDGES
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
