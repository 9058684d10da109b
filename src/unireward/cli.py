"""The ``unireward`` command. Each pipeline folder contributes its sub-commands through a
``cli.register(subparsers)`` function, listed in ``_COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence

_COMMAND_MODULES = (
    "unireward.models.cli",
    "unireward.judge.cli",
    "unireward.serve.cli",
    "unireward.data.cli",
    "unireward.train.cli",
    "unireward.eval.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unireward", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):  # that part of the toolkit is not built yet
                continue
            raise
        module.register(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from unireward.data.schema import SchemaError
    from unireward.media import MediaError
    from unireward.models.family import ModelLoadError

    return (MediaError, ModelLoadError, SchemaError, FileNotFoundError, ValueError, KeyError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc = args.func(args)
    except _user_errors() as e:
        if args.verbose:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(json.dumps({"error": type(e).__name__, "message": msg}), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
