"""Shared pieces of every command line: help that shows defaults, and old flag spellings kept as
hidden aliases (one spelling per idea: ``--out``, ``--num-samples``, ``--max-new-tokens``,
``--model-family`` / ``--template-family``)."""

from __future__ import annotations

import argparse
import copy
import re
from typing import Any

# dests whose default may come from the environment and must not be printed
_SECRET = re.compile(r"(^|_)(key|secret|password|token)($|_)")


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already states its default or
    there is nothing to state (``None``, ``False``, an empty list) or it is a secret (``--api-key``).

    >>> p = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    >>> _ = p.add_argument("--frames", type=int, default=8, help="frames per video")
    >>> _ = p.add_argument("--seed", type=int, default=None, help="random seed")
    >>> _ = p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    >>> _ = p.add_argument("--api-key", default="sk-123", help="key (env X)")
    >>> _ = p.add_argument("--dtype", default="auto")
    >>> help = p.format_help()
    >>> "frames per video (default: 8)" in help, "(default: 0.0)" in help, "(default: auto)" in help
    (True, True, True)
    >>> "(default: None)" in help, "sk-123" in help
    (False, False)
    """

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        default, text = action.default, action.help or ""
        return not (
            default is None or default is False or default is argparse.SUPPRESS or default == [] or "default" in text
            or _SECRET.search(action.dest) or not action.option_strings or text == argparse.SUPPRESS
        )  # fmt: skip

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._shows_default(action):  # argparse prints nothing for an option without help
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not self._shows_default(action):
            return action.help
        return f"{action.help} (default: %(default)s)"


def hidden_alias(parser: Any, action: argparse.Action, *names: str) -> argparse.Action:
    """Accept ``names`` as another spelling of ``action`` without listing them in ``--help``.

    >>> p = argparse.ArgumentParser(prog="x")
    >>> hidden_alias(p, p.add_argument("--num-samples", type=int, default=1), "--samples", "-k").dest
    'num_samples'
    >>> p.parse_args(["-k", "3"]).num_samples, p.parse_args([]).num_samples, "--samples" in p.format_help()
    (3, 1, False)
    """
    kwargs: dict[str, Any] = {"dest": action.dest, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        kwargs["action"] = "store_true" if isinstance(action, argparse._StoreTrueAction) else "store_false"
    elif isinstance(action, (argparse._StoreAction, argparse._AppendAction)):
        kwargs.update(action="append" if isinstance(action, argparse._AppendAction) else "store", type=action.type,
                      choices=action.choices, nargs=action.nargs, metavar=action.metavar)  # fmt: skip
    else:
        raise TypeError(f"hidden_alias: unsupported action {type(action).__name__}")
    return parser.add_argument(*names, **kwargs)
