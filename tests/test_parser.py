"""The verdict parser on the official example outputs, on known reward hacks and on arbitrary text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unireward import parse_judgment
from unireward.protocol import Task, answer_label, get_family
from unireward.protocol.tasks import THINK_TASKS
from unireward.rewards import accuracy_reward, format_reward, strict_format_reward

OFFICIAL_EXAMPLE = re.compile(r"^<think>\n.*?</answer>", re.DOTALL | re.MULTILINE)

# What the example output of each official prompt states: winner and the two totals.
OFFICIAL_EXPECTED = {
    Task.IMAGE_GENERATION: (1, {1: 31.0, 2: 28.0}),
    Task.VIDEO_GENERATION: (1, {1: 30.0, 2: 26.0}),
    Task.IMAGE_UNDERSTANDING: (1, {1: 32.0, 2: 29.0}),
    Task.VIDEO_UNDERSTANDING: (1, {1: 31.0, 2: 29.0}),
}


def official_example(task: Task) -> str:
    """The example output written inside the official prompt of ``task``."""
    return OFFICIAL_EXAMPLE.search(get_family("unifiedreward-think").text(task)).group(0)


@pytest.mark.parametrize("task", list(THINK_TASKS))
@pytest.mark.parametrize("strict", [False, True])
def test_official_example_outputs_parse(task: Task, strict: bool) -> None:
    winner, totals = OFFICIAL_EXPECTED[task]
    j = parse_judgment(official_example(task), task, strict=strict)
    assert j.status == "ok", j.reason
    assert j.winner == winner
    assert j.answer == answer_label(task, winner)
    assert j.totals == totals
    assert j.totals_consistent is True
    assert j.think.startswith("1. ")
    # Four dimension lines, each scoring both candidates; the totals line is not a dimension.
    assert len(j.dimensions) == 4
    assert all(set(d.scores) == {1, 2} for d in j.dimensions)


def test_official_image_generation_dimension_scores() -> None:
    j = parse_judgment(official_example(Task.IMAGE_GENERATION), "image_generation")
    got = [(d.name, d.scores[1], d.scores[2]) for d in j.dimensions]
    assert got == [
        ("Semantic consistency", 9.0, 7.0),
        ("Aesthetics", 8.0, 8.0),  # written "Image 2 (8/10) ...; Image 1 (8/10)": order does not matter
        ("Authenticity", 8.0, 5.0),
        ("Additional dimensions if any", 6.0, 8.0),
    ]
    # The per-dimension scores add up to the stated totals.
    assert sum(d.scores[1] for d in j.dimensions) == j.totals[1]
    assert sum(d.scores[2] for d in j.dimensions) == j.totals[2]


def test_dimension_scores_in_the_instruction_wording() -> None:
    # The official instructions say "(e.g., Image 1: 8/10, Image 2: 6/10)"; models do write that.
    text = (
        "<think>\n1. Semantic consistency: Image 1: 8/10, Image 2: 6/10\nTotal score:\n"
        "Image 1: 8=8.\nImage 2: 6=6.\n</think>\n<answer>Image 1 is better</answer>"
    )
    j = parse_judgment(text, "image_generation", strict=True)
    assert j.ok and j.dimensions[0].scores == {1: 8.0, 2: 6.0}
    assert j.totals == {1: 8.0, 2: 6.0} and j.totals_consistent


def test_other_nouns_are_ignored_in_scores() -> None:
    text = official_example(Task.IMAGE_GENERATION)
    j = parse_judgment(text, "video_generation")  # video task, image nouns everywhere
    assert j.status == "invalid" and j.dimensions == [] and j.totals is None


def _official_with(task: Task, answer: str) -> str:
    return re.sub(r"<answer>.*?</answer>", f"<answer>{answer}</answer>", official_example(task))


HACKS = {
    # name: (text, lenient status, lenient winner, strict status)
    "two answer blocks": (
        "<think>x</think><answer>Image 1 is better</answer><answer>Image 2 is better</answer>", "ok", 1, "invalid"),
    "two think blocks": (
        "<think>x</think><think>y</think><answer>Image 2 is better</answer>", "ok", 2, "invalid"),
    "empty answer": ("<think>x</think><answer></answer>", "invalid", None, "invalid"),
    "blank answer": ("<think>x</think><answer>  \n </answer>", "invalid", None, "invalid"),
    "text after the answer": (
        "<think>x</think><answer>Image 2 is better</answer> Actually image 1.", "ok", 2, "invalid"),
    "extra words in the answer": (
        "<think>x</think><answer>I think Image 2 is better.</answer>", "ok", 2, "invalid"),
    "both verdicts in the answer": (
        "<think>x</think><answer>Image 1 is better or Image 2 is better</answer>", "invalid", None, "invalid"),
    "wrong noun": ("<think>x</think><answer>Video 1 is better</answer>", "invalid", None, "invalid"),
    "answer before think": ("<answer>Image 1 is better</answer><think>x</think>", "ok", 1, "invalid"),
    "no think at all": ("<answer>Image 1 is better</answer>", "ok", 1, "invalid"),
    "bare verdict": ("Image 2 is better", "ok", 2, "invalid"),
    "verdict after think without tags": ("<think>x</think>\nImage 2 is better", "ok", 2, "invalid"),
    "text before think": ("Sure! <think>x</think><answer>Image 1 is better</answer>", "ok", 1, "invalid"),
    "leading whitespace": ("\n<think>x</think><answer>Image 1 is better</answer>", "ok", 1, "invalid"),
    "truncated in think": ("<think>1. Semantic consistency: Image 1 (9/10", "truncated", None, "truncated"),
    "truncated in answer": ("<think>x</think>\n<answer>Image 1 is", "truncated", None, "truncated"),
    "truncated after a complete answer": (
        "<think>x</think><answer>Image 1 is better</answer><think>more", "ok", 1, "truncated"),
    "think never closed, answer present": (
        "<think>x <answer>Image 1 is better</answer>", "ok", 1, "invalid"),
    "nested answer inside think": (
        "<think>x <answer>Image 2 is better</answer></think><answer>Image 1 is better</answer>", "ok", 2, "invalid"),
    "case changed": ("<think>x</think><answer>image 1 IS better</answer>", "ok", 1, "invalid"),
    "no tags, no verdict": ("I cannot decide.", "invalid", None, "invalid"),
    "empty": ("", "invalid", None, "invalid"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(HACKS))
def test_hacked_outputs(name: str) -> None:
    text, status, winner, strict_status = HACKS[name]
    lenient = parse_judgment(text, "image_generation")
    assert (lenient.status, lenient.winner) == (status, winner)
    strict = parse_judgment(text, "image_generation", strict=True)
    assert strict.status == strict_status
    assert strict.winner is None
    assert strict.reason  # every rejection says why


def test_verdict_contradicting_totals_is_flagged() -> None:
    text = _official_with(Task.IMAGE_GENERATION, "Image 2 is better")  # totals 31 vs 28 favour Image 1
    j = parse_judgment(text, "image_generation", strict=True)
    assert j.ok and j.winner == 2  # the format is fine ...
    assert j.totals == {1: 31.0, 2: 28.0} and j.totals_consistent is False  # ... the reasoning is not


def test_equal_totals_are_not_consistent_with_either_verdict() -> None:
    text = "<think>Total score:\nAnswer 1: 5+5=10\nAnswer 2: 4+6=10\n</think><answer>Answer 1 is better</answer>"
    assert parse_judgment(text, "image_understanding").totals_consistent is False


@pytest.mark.parametrize(
    "totals",
    ["Total score: Video 1: 8+7=15, Video 2: 9+9=18.", "Total score:\\Video 1: 15\\Video 2: 18",
     "Total score: Video 1: 8+7 = 15; Video 2: 9+9 = 18"],
)  # fmt: skip
def test_totals_on_one_line_are_read(totals: str) -> None:
    """Totals written on one line (the official LLaVA script's prompt even shows them run together
    with backslashes) still feed the consistency check."""
    j = parse_judgment(f"<think>{totals}</think><answer>Video 1 is better</answer>", "video_generation")
    assert j.totals == {1: 15.0, 2: 18.0} and j.totals_consistent is False


@pytest.mark.parametrize(
    "totals,expected",
    [
        ("Image 1: 9+8, Image 2: 7+6", None),  # sums without results
        ("Image 1: 9, 8, 8 -> 25\nImage 2: 7, 7, 7 -> 21", None),  # addends, not totals
        ("Image 1: 9 (semantic) + 8 (aesthetics) + 8 (authenticity) = 25\nImage 2: 7 + 7 + 7 = 21", {1: 25.0, 2: 21.0}),
        ("Image 1: 8*3=24\nImage 2: 7*3 = 21", {1: 24.0, 2: 21.0}),
        ("Image 1: 25/30\nImage 2: 21 points (out of 30)", {1: 25.0, 2: 21.0}),
        # a recap or an aside after the totals does not replace them
        ("Image 1: 9+8+8=25\nImage 2: 7+7+7=21\nComparing dimension 1, Image 1: 9/10, Image 2: 7/10.", {1: 25.0, 2: 21.0}),
        ("Image 1: 9+8+8=25\nImage 2: 7+7+7=21\nImage 1: 4 points ahead of Image 2.", {1: 25.0, 2: 21.0}),
    ],
)  # fmt: skip
def test_only_stated_totals_count(totals: str, expected: dict | None) -> None:
    """A wrong number here would pay (or withhold) the consistency reward, so anything that is not
    clearly a candidate's total is left unread."""
    j = parse_judgment(f"<think>Total score:\n{totals}</think><answer>Image 1 is better</answer>", "image_generation")
    assert j.totals == expected


def test_last_total_score_section_wins() -> None:
    text = (
        "<think>Total score:\nImage 1: 10\nImage 2: 20\nWait, recount.\nTotal score:\nImage 1: 9+9=18\n"
        "Image 2: 7+7=14\n</think><answer>Image 1 is better</answer>"
    )
    j = parse_judgment(text, "image_generation")
    assert j.totals == {1: 18.0, 2: 14.0} and j.totals_consistent is True


def test_unknown_task_and_non_string_input_do_not_raise() -> None:
    assert parse_judgment("<answer>Image 1 is better</answer>", "audio_generation").status == "invalid"
    assert parse_judgment(None, "image_generation").status == "invalid"
    as_bytes = parse_judgment(b"<answer>Image 1 is better</answer>", "image_generation")
    assert as_bytes.status == "ok" and as_bytes.winner == 1
    assert parse_judgment(12, Task.VIDEO_UNDERSTANDING).status == "invalid"


def test_dashed_task_name_and_to_dict() -> None:
    j = parse_judgment(official_example(Task.VIDEO_UNDERSTANDING), "video-understanding")
    d = j.to_dict()
    assert d["task"] == "video_understanding" and d["winner"] == 1
    assert d["totals"] == {"1": 31.0, "2": 29.0}
    assert d["dimensions"][0] == {"name": "Semantic accuracy", "scores": {"1": 8.0, "2": 9.0}}


# ---- pointwise -------------------------------------------------------------------------------


def _pointwise_example(task: Task) -> str:
    return OFFICIAL_EXAMPLE.search(get_family(mode="pointwise").text(task)).group(0)


@pytest.mark.parametrize("task,score", [(Task.IMAGE_GENERATION, 7.0), (Task.VIDEO_GENERATION, 7.0),
                                        (Task.IMAGE_UNDERSTANDING, 8.0), (Task.VIDEO_UNDERSTANDING, 8.0)])  # fmt: skip
def test_pointwise_template_examples_parse(task: Task, score: float) -> None:
    for strict in (False, True):
        j = parse_judgment(_pointwise_example(task), task, strict=strict, mode="pointwise")
        assert j.ok and j.score == score and j.winner is None
        assert [d.scores[1] for d in j.dimensions] == ([8.0, 7.0, 6.0] if score == 7.0 else [8.0, 7.0, 9.0])


@pytest.mark.parametrize(
    "answer,lenient,strict",
    [
        ("Overall score: 7.5/10", 7.5, 7.5),
        ("overall score: 10/10", 10.0, 10.0),
        ("8", 8.0, 8.0),
        ("1/10", 1.0, 1.0),
        ("The overall score is 6/10.", 6.0, None),
        ("Overall score: 0/10", None, None),
        ("Overall score: 11/10", None, None),
        ("Overall score: 10.5/10", None, None),
        ("Overall score: -3/10", None, None),
        ("Overall score: 1000", None, None),
        ("Overall score: great", None, None),
        ("", None, None),
    ],
)
def test_pointwise_scores_and_range(answer: str, lenient: float | None, strict: float | None) -> None:
    text = f"<think>The image shows a cat.\nTotal score: 8</think>\n<answer>{answer}</answer>"
    for is_strict, expected in ((False, lenient), (True, strict)):
        j = parse_judgment(text, "image_generation", strict=is_strict, mode="pointwise")
        assert j.score == expected
        assert j.ok == (expected is not None)


def test_pointwise_truncated() -> None:
    j = parse_judgment("<think>The video shows", "video_generation", mode="pointwise")
    assert j.status == "truncated" and j.score is None


# ---- properties on arbitrary text ------------------------------------------------------------

PIECES = [
    "<think>", "</think>", "<answer>", "</answer>", "Image 1 is better", "Image 2 is better",
    "Answer 1 is better", "Video 2 is better", "Total score:\n", "Image 1: 9+8=17\n", "Image 2: 3+4=7\n",
    "Image 1 (9/10)", "Overall score: 7/10", "-3", "\n", " ", "<thi", "nk>", "</answer",
]  # fmt: skip
TEXTS = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=14).map("".join),
)
TASKS = st.sampled_from(list(THINK_TASKS))


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, task=TASKS, mode=st.sampled_from(["pairwise", "pointwise"]))
def test_parser_never_raises_and_strict_implies_lenient(text: str, task: Task, mode: str) -> None:
    strict = parse_judgment(text, task, strict=True, mode=mode)
    lenient = parse_judgment(text, task, strict=False, mode=mode)
    for j in (strict, lenient):  # a status always comes with its reason, and only "ok" names a winner
        assert (j.status == "ok") == (j.reason == "")
        assert j.ok or (j.winner is None and j.score is None)
        assert j.status != "truncated" or "<think>" in text or "<answer>" in text
    if strict.ok:
        assert lenient.ok
        assert (lenient.winner, lenient.score) == (strict.winner, strict.score)
    if lenient.ok and mode == "pairwise":
        assert lenient.winner in (1, 2)
    if lenient.ok and mode == "pointwise":
        assert 1.0 <= lenient.score <= 10.0
    if strict.ok and mode == "pairwise":
        # A strictly valid output earns both official rewards against its own verdict.
        assert format_reward([text]) == [1.0]
        assert accuracy_reward([text], label=[answer_label(task, strict.winner)]) == [1.0]
        assert strict_format_reward([text], task=[task.value]) == [1.0]
