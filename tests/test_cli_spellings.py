"""One spelling per idea on every command (``--out``, ``--num-samples``, ``--max-new-tokens``,
``--model-family`` / ``--template-family``), the old spellings still accepted but not listed, and
every option's default shown in ``--help``."""

from __future__ import annotations

import argparse

import pytest

from unireward.cli import build_parser
from unireward.cli_args import HelpFormatter

# (new spelling, old spelling) on real command lines: both must give the same namespace
SPELLINGS = [
    (["judge", "--model", "m", "--input", "a.jsonl", "--out", "b.jsonl"], ["--out"], ["--output"]),
    (["judge", "--model", "m", "--model-family", "qwen3_vl"], ["--model-family"], ["--family"]),
    (["serve", "--model", "m", "--model-family", "qwen3_vl"], ["--model-family"], ["--family"]),
    (["app", "--model", "m", "--model-family", "qwen3_vl"], ["--model-family"], ["--family"]),
    (["tiny-model", "d", "--model-family", "qwen3_vl"], ["--model-family"], ["--family"]),
    (["sample", "p.jsonl", "--model", "m", "--out", "o", "--num-samples", "8"], ["--num-samples"], ["-k"]),
    (["sft", "p.jsonl", "--model", "m", "--out", "o", "--model-family", "qwen3_vl"], ["--model-family"], ["--family"]),
    (["distill", "p.jsonl", "--out", "o", "--base-url", "http://h/v1", "--model", "m", "--max-new-tokens", "64"],
     ["--max-new-tokens"], ["--max-tokens"]),
    (["eval", "vl-rewardbench", "--data", "d.jsonl", "--judge", "baseline:shorter", "--num-samples", "3"], ["--num-samples"], ["--samples"]),
    (["data", "export", "p.jsonl", "--out", "o", "--format", "trl", "--template-family", "unireward-compact"],
     ["--template-family"], ["--family"]),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "new", "old"), SPELLINGS, ids=[" ".join(s[0][:2]) + " " + s[2][0] for s in SPELLINGS])
def test_old_spelling_is_a_hidden_alias(argv: list[str], new: list[str], old: list[str]) -> None:
    parser = build_parser()
    with_old = [old[new.index(a)] if a in new else a for a in argv]
    assert vars(parser.parse_args(argv)) == vars(parser.parse_args(with_old))
    sub, words = parser, list(argv)
    while (subs := [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]) and words[0] in subs[0].choices:
        sub = subs[0].choices[words.pop(0)]  # down to the command's own parser (``data export``, ``eval BENCH``)
    shown = sub.format_help()
    assert all(f"{n} " in shown for n in new) and not any(f"{o} " in shown for o in old)


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    todo = [("unireward", build_parser())]
    while todo:
        name, p = todo.pop()
        out.append((name, p))
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                todo += [(f"{name} {k}", v) for k, v in a.choices.items()]
    return out


def test_every_help_shows_its_defaults() -> None:
    missing = []
    for name, parser in _parsers():
        fmt = HelpFormatter(parser.prog)
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            default = action.default
            if default is None or default is False or default is argparse.SUPPRESS or default == []:
                continue
            if "key" in action.dest.split("_"):
                assert str(default) not in fmt._format_action(action), f"{name} {action.option_strings}: a secret shown"
                continue
            if "default" not in fmt._format_action(action):
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, missing
