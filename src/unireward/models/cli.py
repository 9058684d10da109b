"""``unireward tiny-model``: build a tiny random judge offline."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from unireward.models.family import list_families

    p = sub.add_parser("tiny-model", help="build a tiny random model (tokenizer, processor, chat template) offline")
    p.add_argument("out_dir")
    p.add_argument("--family", default="qwen2_5_vl", choices=list_families())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=2)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from unireward.models.family import get_family

    fam = get_family(args.family)
    out = fam.build_tiny(args.out_dir, seed=args.seed, hidden_size=args.hidden_size, num_layers=args.num_layers)
    print(json.dumps({"family": fam.name, "path": str(out)}))
    return 0
