"""Reward functions: official semantics, the strict and consistency options, TRL's calling shapes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unireward.protocol import Task, get_family
from unireward.protocol.tasks import THINK_TASKS
from unireward.rewards import (
    accuracy_reward,
    completion_text,
    compute_score,
    consistency_reward,
    format_reward,
    get_reward_functions,
    strict_format_reward,
)

OFFICIAL_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def official_format(s: str) -> float:
    return 1.0 if OFFICIAL_FORMAT.match(s) else 0.0


def official_accuracy(s: str, label: str) -> float:
    m = re.search(r"<answer>(.*?)</answer>", s, re.DOTALL)
    return 1.0 if (m.group(1) if m else s).strip() == label else 0.0


def example(task: Task) -> str:
    text = get_family("unifiedreward-think").text(task)
    return re.search(r"^<think>\n.*?</answer>", text, re.DOTALL | re.MULTILINE).group(0)


IMG = example(Task.IMAGE_GENERATION)  # totals 31 vs 28, "Image 1 is better"
FLIPPED = IMG.replace("<answer>Image 1 is better", "<answer>Image 2 is better")

CASES = {
    # name: (completion, format, accuracy vs "Image 1 is better", strict_format, consistency)
    "official example": (IMG, 1, 1, 1, 1),
    "verdict contradicts totals": (FLIPPED, 1, 0, 1, 0),
    "two answer blocks": (IMG + "<answer>Image 2 is better</answer>", 1, 1, 0, 1),
    "text after the answer": (IMG + "\nI am confident.", 1, 1, 0, 1),
    "trailing whitespace": (IMG + "\n\n", 1, 1, 1, 1),
    "empty answer": ("<think>x</think><answer></answer>", 1, 0, 0, 0),
    "extra words in the answer": (IMG.replace(">Image 1 is better<", ">Image 1 is better.<"), 1, 0, 0, 1),
    "padded answer": (IMG.replace(">Image 1 is better<", ">  Image 1 is better\n<"), 1, 1, 1, 1),
    "answer before think": ("<answer>Image 1 is better</answer><think>x</think>", 0, 1, 0, 0),
    "no think": ("<answer>Image 1 is better</answer>", 0, 1, 0, 0),
    "bare verdict": ("Image 1 is better", 0, 1, 0, 0),
    "leading newline": ("\n" + IMG, 0, 1, 0, 1),
    "truncated": (IMG[:60], 0, 0, 0, 0),
    "empty": ("", 0, 0, 0, 0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reward_table(name: str) -> None:
    text, fmt, acc, strict, cons = CASES[name]
    label = ["Image 1 is better"]
    assert format_reward([text]) == [fmt] == [official_format(text)]
    assert accuracy_reward([text], label=label) == [acc] == [official_accuracy(text, label[0])]
    assert strict_format_reward([text], label=label) == [strict]
    assert consistency_reward([text], label=label) == [cons]


@pytest.mark.parametrize("task", list(THINK_TASKS))
def test_official_examples_of_every_task(task: Task) -> None:
    text = example(task)
    label = re.search(r"<answer>(.*?)</answer>", text).group(1)
    # No task column: the noun is taken from the label or from the completion itself.
    assert format_reward([text]) == [1.0]
    assert accuracy_reward([text], label=[label]) == [1.0]
    assert strict_format_reward([text]) == [1.0]
    assert consistency_reward([text]) == [1.0]
    assert strict_format_reward([text], task=[task.value]) == [1.0]
    # 1/2 labels work with a task column, and the wrong candidate scores 0.
    assert accuracy_reward([text, text], label=[1, 2], task=[task.value, task.value]) == [1.0, 0.0]


def test_task_column_rejects_the_wrong_noun() -> None:
    text = example(Task.IMAGE_UNDERSTANDING)
    assert strict_format_reward([text], task=["video_generation"]) == [0.0]
    assert consistency_reward([text], task=["video_generation"]) == [0.0]


def test_numpy_and_broadcast_labels() -> None:
    text = example(Task.VIDEO_GENERATION)
    assert accuracy_reward([text], label=[np.int64(1)], task=["video_generation"]) == [1.0]
    assert accuracy_reward([text, text], label="Video 1 is better") == [1.0, 1.0]


def test_accuracy_needs_a_label_and_a_task_for_numbers() -> None:
    with pytest.raises(ValueError, match="label"):
        accuracy_reward(["<answer>Image 1 is better</answer>"])
    with pytest.raises(ValueError, match="task"):
        accuracy_reward(["<answer>Image 1 is better</answer>"], label=[1])


def test_trl_call_shape_conversational() -> None:
    # GRPOTrainer calls reward_func(prompts=..., completions=..., completion_ids=..., **dataset columns).
    prompts = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "caption"}]}]] * 3
    completions = [
        [{"role": "assistant", "content": IMG}],
        [{"role": "assistant", "content": [{"type": "text", "text": IMG[:40]}, {"type": "text", "text": IMG[40:]}]}],
        [{"role": "assistant", "content": FLIPPED}],
    ]
    kwargs = {
        "prompts": prompts,
        "completion_ids": [[1, 2]] * 3,
        "label": ["Image 1 is better"] * 3,
        "task": ["image_generation"] * 3,
        "trainer_state": None,
        "id": ["a", "b", "c"],
    }
    fmt = format_reward(completions=completions, **kwargs)
    acc = accuracy_reward(completions=completions, **kwargs)
    assert fmt == [1.0, 1.0, 1.0]
    assert acc == [1.0, 1.0, 0.0]
    assert strict_format_reward(completions=completions, **kwargs) == [1.0, 1.0, 1.0]
    assert consistency_reward(completions=completions, **kwargs) == [1.0, 1.0, 0.0]
    assert [f + a for f, a in zip(fmt, acc, strict=True)] == [2.0, 2.0, 1.0]  # the paper's reward, 0-2


def test_completion_text_shapes() -> None:
    arrow_like = [{"role": "assistant", "content": [
        {"type": "text", "text": "<think>", "image": None},
        {"type": "image", "text": None, "image": None},
        {"type": "text", "text": None, "image": None},
        {"type": "text", "text": "x</think>", "image": None},
    ]}]  # fmt: skip
    assert completion_text(arrow_like) == "<think>x</think>"
    assert completion_text({"role": "assistant", "content": "hi"}) == "hi"
    assert completion_text([{"role": "assistant", "content": None}]) == ""
    assert completion_text(None) == ""


def test_compute_score() -> None:
    assert compute_score("x", IMG, "Image 1 is better") == {"score": 2.0, "format": 1.0, "accuracy": 1.0}
    assert compute_score("x", FLIPPED, "Image 1 is better") == {"score": 1.0, "format": 1.0, "accuracy": 0.0}
    assert compute_score("x", IMG, 2, {"task": "image_generation"})["score"] == 1.0


def test_get_reward_functions() -> None:
    assert get_reward_functions(["strict_format", "consistency"]) == [strict_format_reward, consistency_reward]
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward_functions(["format", "length"])


PIECES = ["<think>", "</think>", "<answer>", "</answer>", "Image 1 is better", "Image 2 is better",
          "Total score:\n", "Image 1: 9+8=17\n", "Image 2: 3+4=7\n", "\n", " "]  # fmt: skip
TEXTS = st.one_of(st.text(), st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=12).map("".join))


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXTS, min_size=1, max_size=4), label=st.sampled_from(["Image 1 is better", "Image 2 is better"]))
def test_reward_properties(texts: list[str], label: str) -> None:
    labels = [label] * len(texts)
    fmt = format_reward(texts)
    strict = strict_format_reward(texts, label=labels)
    acc = accuracy_reward(texts, label=labels)
    cons = consistency_reward(texts, label=labels)
    for rewards in (fmt, strict, acc, cons):
        assert len(rewards) == len(texts) and set(rewards) <= {0.0, 1.0}
    for t, f, s, a in zip(texts, fmt, strict, acc, strict=True):
        assert f == official_format(t) and a == official_accuracy(t, label)
        if f:
            assert t.startswith("<think>")
        assert s <= f
        # Conversational completions score like their text.
        assert format_reward([[{"role": "assistant", "content": t}]]) == [f]


def test_the_package_exports_every_reward_and_the_old_paths_work() -> None:
    import unireward.rewards as pkg
    from unireward.rewards import group, policy

    for module in (policy, group):
        public = {n for n, v in vars(module).items()
                  if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == module.__name__}  # fmt: skip
        assert public and public <= set(pkg.__all__), public - set(pkg.__all__)
    assert all(getattr(pkg, n) is not None for n in pkg.__all__)
    from unireward.integrations.easyr1 import compute_score as easyr1_old
    from unireward.judge.aggregate import majority_vote
    from unireward.remote_reward import RemoteGroupReward
    from unireward.rewards.adapters.easyr1 import compute_score as easyr1_new

    assert easyr1_old is easyr1_new and RemoteGroupReward is pkg.RemoteGroupReward
    assert majority_vote is group.majority_share  # the old name of the (winner, share) vote
