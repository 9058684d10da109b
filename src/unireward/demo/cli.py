"""The demo's commands: ``demo`` (the tiny-cpu recipe on the synthetic task) and ``teacher`` (the
scripted teacher served on the OpenAI chat API)."""

from __future__ import annotations

import argparse
import json

from unireward.cli_args import hidden_alias
from unireward.data.balance import ORDER_BALANCE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the CPU demo: the tiny-cpu recipe on the synthetic task")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--recipe", default="tiny-cpu")
    hidden_alias(p, p.add_argument("--model-family", dest="family", default=None, help="tiny model family (default: the recipe's, qwen2_5_vl)"), "--family")
    p.add_argument("--seed", type=int, default=None, help="training seed (tiny-model init, teacher, trainers); data keep theirs")
    p.add_argument("--order-balance", default=None, choices=ORDER_BALANCE,
                   help="candidate order of every training set (default: the recipe's, swap_half); none is the unbalanced ablation")  # fmt: skip
    p.set_defaults(func=_demo)

    p = sub.add_parser("teacher", help="serve the scripted synthetic-task teacher on the OpenAI chat API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8009)
    p.add_argument("--accuracy", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_teacher)


def _demo(args: argparse.Namespace) -> int:
    from unireward.train.cli import _pipeline

    # the pipeline's own flags the demo does not offer, at their defaults
    for key, value in {"dry_run": False, "stop_after": None, "overwrite": False, "report_to": None, "data_root": None}.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return _pipeline(args)


def _teacher(args: argparse.Namespace) -> int:
    import uvicorn

    from unireward.demo.teacher import ScriptedTeacher, create_teacher_app

    print(json.dumps({"base_url": f"http://{args.host}:{args.port}/v1", "accuracy": args.accuracy}), flush=True)
    uvicorn.run(create_teacher_app(ScriptedTeacher(args.accuracy, args.seed)), host=args.host, port=args.port, log_level="warning")
    return 0
