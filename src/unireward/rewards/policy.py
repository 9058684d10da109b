"""Reward functions for GRPO, as pure functions with TRL's signature ``(completions, **kwargs) -> list[float]``.

``completions`` may be plain strings or conversational (a list of messages per completion). Dataset
columns arrive as keyword lists: ``label`` (the expected verdict string, or 1/2 with a ``task`` column)
and optionally ``task``.

The paper's reward is ``format_reward + accuracy_reward`` (0-2), with the official semantics:
format is a regex *match* anchored at the start that tolerates trailing text, and accuracy is an
exact match of the first answer block. ``strict_format_reward`` and ``consistency_reward`` close the
reward hacks those two leave open.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import Any

from unireward.data.balance import SWAP_SUFFIX
from unireward.protocol.parser import parse_judgment
from unireward.protocol.tasks import Task, answer_label, label_to_winner

_VERDICT_NOUN = re.compile(r"\b(Image|Video|Answer) [12] is better\b")

_OFFICIAL_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_FIRST_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def completion_text(completion: Any) -> str:
    """Text of one completion, plain or conversational.

    >>> completion_text([{"role": "assistant", "content": "hi"}])
    'hi'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    'ab'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, Sequence):
        parts: list[str] = []
        for msg in completion:
            content = msg.get("content", "") if isinstance(msg, dict) else msg
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, Sequence):
                parts.extend(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
        return "".join(parts)
    return "" if completion is None else str(completion)


def _label_text(label: Any, task: Any) -> str:
    """The expected verdict string: the label itself, or built from 1/2 and the task."""
    if isinstance(label, numbers.Number) and not isinstance(label, bool):
        if task is None:
            raise ValueError(f"label {label!r} is a candidate number; pass a 'task' column too, or verdict strings")
        return answer_label(Task.parse(task), int(label))  # type: ignore[call-overload]
    return str(label).strip()


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    col = kwargs.get(name)
    if col is None:
        return [None] * n
    if isinstance(col, (str, int)):
        return [col] * n
    return list(col)


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the output starts with a think block then an answer block (official regex).

    >>> format_reward(["<think>a</think>\\n<answer>Image 1 is better</answer>", "Image 1 is better"])
    [1.0, 0.0]
    >>> format_reward(["<think>a</think><answer>x</answer> anything after"])  # the official rule allows this
    [1.0]
    """
    return [1.0 if _OFFICIAL_FORMAT.match(completion_text(c)) else 0.0 for c in completions]


def accuracy_reward(completions: list[Any], label: list[Any] | None = None, **kwargs: Any) -> list[float]:
    """1.0 when the first ``<answer>`` content (or the whole text) equals the label exactly.

    >>> accuracy_reward(["<answer> Image 2 is better </answer>", "<answer>Image 2 is better.</answer>"],
    ...                 label=["Image 2 is better", "Image 2 is better"])
    [1.0, 0.0]
    >>> accuracy_reward(["<answer>Video 1 is better</answer>"], label=[1], task=["video_generation"])
    [1.0]
    """
    n = len(completions)
    labels = _column({"label": label}, "label", n)
    tasks = _column(kwargs, "task", n)
    out = []
    for c, lab, task in zip(completions, labels, tasks, strict=True):
        if lab is None:
            raise ValueError("accuracy_reward needs a 'label' column")
        text = completion_text(c)
        m = _FIRST_ANSWER.search(text)
        got = (m.group(1) if m else text).strip()
        out.append(1.0 if got == _label_text(lab, task) else 0.0)
    return out


def _task_of(task: Any, label: Any, text: str = "") -> Task:
    """The task whose verdict strings apply: the ``task`` column, else the noun of the label, else
    the noun of the first verdict in the completion (so understanding outputs need no column)."""
    if task is not None:
        return Task.parse(task)
    m = _VERDICT_NOUN.search(label if isinstance(label, str) else "") or _VERDICT_NOUN.search(text)
    noun = m.group(1) if m else "Image"
    return {"Image": Task.IMAGE_GENERATION, "Video": Task.VIDEO_GENERATION, "Answer": Task.IMAGE_UNDERSTANDING}[noun]


def strict_format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 only for exactly one think block, then exactly one answer block holding an allowed verdict.

    >>> strict_format_reward(["<think>a</think><answer>Image 1 is better</answer>",
    ...                       "<think>a</think><answer>Image 1 is better</answer><answer>Image 2 is better</answer>",
    ...                       "<think>a</think><answer></answer>"])
    [1.0, 0.0, 0.0]
    """
    n = len(completions)
    tasks, labels = _column(kwargs, "task", n), _column(kwargs, "label", n)
    texts = [completion_text(c) for c in completions]
    return [
        1.0 if parse_judgment(x, _task_of(t, lab, x), strict=True).ok else 0.0
        for x, t, lab in zip(texts, tasks, labels, strict=True)
    ]


def consistency_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the stated totals in ``<think>`` favour the candidate the answer names.

    >>> good = "<think>Total score:\\nImage 1: 8+9=17\\nImage 2: 5+6=11</think><answer>Image 1 is better</answer>"
    >>> bad = good.replace("Image 1 is better", "Image 2 is better")
    >>> consistency_reward([good, bad, "<answer>Image 1 is better</answer>"])
    [1.0, 0.0, 0.0]
    """
    n = len(completions)
    tasks, labels = _column(kwargs, "task", n), _column(kwargs, "label", n)
    texts = [completion_text(c) for c in completions]
    return [
        1.0 if parse_judgment(x, _task_of(t, lab, x)).totals_consistent else 0.0
        for x, t, lab in zip(texts, tasks, labels, strict=True)
    ]


def position_consistency_reward(completions: list[Any], label: list[Any] | None = None, **kwargs: Any) -> list[float]:
    """Pays a completion only when the verdict is right in both orders of its pair (J1's verdict
    consistency): its own accuracy (official rule) times the share of the completions of the same pair
    shown in the other order that are right, within the batch. The ``pair_id`` column names each
    prompt; a swapped prompt's id is its pair's id plus ``#swap`` (``unireward.data.balance``). A
    completion whose pair has no other order in the batch earns 0. Equals the mean over all pairings of
    this completion with one of the other order's of ``1[both right]``.

    >>> right1, wrong1 = "<answer>Image 1 is better</answer>", "<answer>Image 2 is better</answer>"
    >>> right2, wrong2 = wrong1, right1  # the swapped prompt's label is slot 2
    >>> position_consistency_reward([right1, wrong1, right2, right2, right1],
    ...     label=["Image 1 is better"] * 2 + ["Image 2 is better"] * 2 + ["Image 1 is better"],
    ...     pair_id=["p", "p", "p#swap", "p#swap", "q"])
    [1.0, 0.0, 0.5, 0.5, 0.0]
    """
    n = len(completions)
    ids = _column(kwargs, "pair_id", n)
    if any(i is None for i in ids):
        raise ValueError("position_consistency needs a 'pair_id' column (GRPO data with order_balance: both_orders)")
    right = accuracy_reward(completions, label=label, **{k: v for k, v in kwargs.items() if k != "pair_id"})
    by_prompt: dict[str, list[float]] = {}
    for pid, r in zip(ids, right, strict=True):
        by_prompt.setdefault(str(pid), []).append(r)
    out = []
    for pid, r in zip(ids, right, strict=True):
        pid = str(pid)
        other = pid.removesuffix(SWAP_SUFFIX) if pid.endswith(SWAP_SUFFIX) else pid + SWAP_SUFFIX
        partner = by_prompt.get(other)
        out.append(r * sum(partner) / len(partner) if partner else 0.0)
    return out


def protocol_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """A reward in [0, 1] from the verdict of any template family (``template_family`` column, or
    :func:`make_protocol_reward`), read by the one parser. Pairwise with a ``label`` (1/2 or the
    verdict string): the labelled candidate's ``overall`` share (1.0 for a right verdict, 0.5 for a
    tie, graded for the score protocols); pointwise: ``overall`` (the score mapped onto [0, 1]).
    Unparseable output earns 0. Columns: ``task`` (required), ``label``, ``template_family``, ``mode``.

    >>> protocol_reward(["Alignment Score:\\n Image 1: 0.4\\n Image 2: 0.6\\n"], task=["image_generation"],
    ...                 label=[2], template_family=["unifiedreward-2.0-pair-score"])
    [0.6]
    >>> protocol_reward(["Alignment Score (1-5): 5\\nPhysics Score (1-5): 3\\nStyle Score (1-5): 4"],
    ...                 task=["video_generation"], template_family=["unifiedreward-2.0"], mode=["pointwise"])
    [0.75]
    """
    n = len(completions)
    tasks, labels = _column(kwargs, "task", n), _column(kwargs, "label", n)
    families, modes = _column(kwargs, "template_family", n), _column(kwargs, "mode", n)
    out = []
    for c, task, lab, fam, mode in zip(completions, tasks, labels, families, modes, strict=True):
        if task is None:
            raise ValueError("protocol_reward needs a 'task' column")
        mode = mode or ("pairwise" if lab is not None else "pointwise")
        j = parse_judgment(completion_text(c), task, mode=mode, family=fam)
        if not j.ok or j.overall is None:
            out.append(0.0)
        elif j.mode.value == "pointwise":
            out.append(float(j.overall[1]))
        else:
            if lab is None:
                raise ValueError("a pairwise protocol_reward needs a 'label' column (1, 2 or the verdict string)")
            winner = int(lab) if isinstance(lab, numbers.Number) else label_to_winner(task, str(lab).strip())
            if winner is None:
                raise ValueError(f"label {lab!r} names no candidate of {task}")
            out.append(float(j.overall[winner]))
    return out


def make_protocol_reward(template_family: str, mode: str = "pairwise") -> Any:
    """:func:`protocol_reward` bound to one family and mode, for trainers that pass only dataset columns.

    >>> make_protocol_reward("unifiedreward-flex").__name__
    'unifiedreward_flex_reward'
    """
    from unireward.protocol.templates import get_family

    get_family(template_family, mode)

    def reward(completions: list[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        return protocol_reward(completions, **{**kwargs, "template_family": [template_family] * n, "mode": [mode] * n})

    reward.__name__ = re.sub(r"\W", "_", template_family) + "_reward"
    return reward


REWARD_FUNCTIONS = {
    "format": format_reward,
    "accuracy": accuracy_reward,
    "strict_format": strict_format_reward,
    "consistency": consistency_reward,
    "position_consistency": position_consistency_reward,
    "protocol": protocol_reward,
}


def get_reward_functions(names: Sequence[str]) -> list[Any]:
    """Reward functions by name, in order (``["format", "accuracy"]`` is the paper's).

    >>> [f.__name__ for f in get_reward_functions(["format", "accuracy"])]
    ['format_reward', 'accuracy_reward']
    """
    unknown = [n for n in names if n not in REWARD_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; choose from {sorted(REWARD_FUNCTIONS)}")
    return [REWARD_FUNCTIONS[n] for n in names]

