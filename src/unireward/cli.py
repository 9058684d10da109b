"""The ``unireward`` command. Each pipeline folder contributes its sub-commands through a
``cli.register(subparsers)`` function, listed in ``_COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from unireward import __version__
from unireward.cli_args import HelpFormatter

_COMMAND_MODULES = (
    "unireward.models.cli",
    "unireward.judge.cli",
    "unireward.serve.cli",
    "unireward.data.cli",
    "unireward.train.cli",
    "unireward.demo.cli",
    "unireward.eval.cli",
    "unireward.app.cli",
)


class UsageError(Exception):
    """A command line argparse rejects (unknown command, missing argument, bad choice)."""


class _Parser(argparse.ArgumentParser):
    # argparse prints usage and exits 2 by itself; raise instead so main() reports it as one JSON
    # line like every other user error (sub-parsers inherit this class).
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)  # every --help shows the defaults
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="unireward", description="Unified multimodal chain-of-thought reward model: judge, train, evaluate, serve.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"unireward {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):  # that part of the toolkit is not built yet
                continue
            raise
        module.register(sub)
    _register_media_info(sub)
    return parser


def _register_media_info(sub: argparse._SubParsersAction) -> None:
    from unireward.media import VisionBudget

    d = VisionBudget()  # the one place the budget's defaults are written
    p = sub.add_parser("media-info", help="load images/videos under the vision budget and print what a model would see")
    p.add_argument("paths", nargs="+")
    p.add_argument("--frames", type=int, default=d.frames, help=f"frames sampled per video (default {d.frames})")
    p.add_argument("--fps", type=float, default=None, help="sample at this rate instead (capped at --frames)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help=f"pixel cap per image or frame (default {d.max_pixels})")
    p.add_argument("--min-pixels", type=int, default=d.min_pixels, help=f"pixel floor per image or frame (default {d.min_pixels})")
    p.add_argument("--max-total-pixels", type=int, default=None, help="shared by all the given files")
    p.set_defaults(func=_media_info)


def _media_info(args: argparse.Namespace) -> int:
    from unireward.media import VisionBudget, is_video_path, load_image, load_video

    budget = VisionBudget(
        min_pixels=args.min_pixels, max_pixels=args.max_pixels, frames=args.frames, fps=args.fps,
        max_total_pixels=args.max_total_pixels,
    )  # fmt: skip
    n = len(args.paths)
    for path in args.paths:
        if is_video_path(path):
            frames = load_video(path, budget, n_videos=n)
        else:
            frames = [load_image(path, budget, n_images=n)]
        sizes = sorted({f.size for f in frames})
        print(json.dumps({"path": path, "frames": len(frames), "sizes": [list(x) for x in sizes]}))
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    from unireward.data.schema import SchemaError
    from unireward.media import MediaError
    from unireward.models.family import ModelLoadError
    from unireward.rows import RowFileLocked
    from unireward.train.distill import TeacherRefused

    # OSError: missing, unreadable or unwritable files and folders the user named.
    return (MediaError, ModelLoadError, SchemaError, OSError, ValueError, KeyError, RowFileLocked, TeacherRefused)


def _report(e: BaseException) -> int:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    print(json.dumps({"error": type(e).__name__, "message": msg}), file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        return _report(e)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc = args.func(args)
    except _user_errors() as e:
        if args.verbose:
            raise
        return _report(e)
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
