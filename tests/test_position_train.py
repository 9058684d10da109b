"""Position-robust training: swapping a judgment's text, balanced candidate order in every training
set, the both-orders consistency reward, and the GRPO slot monitor."""

from __future__ import annotations

import pytest
from test_parser import official_example
from test_protocol_zoo import PAIR_SCORE_IMAGE, PAIR_SCORE_VIDEO, _flex

from unireward.protocol import Task, parse_judgment
from unireward.protocol.swap import swap_candidates
from unireward.protocol.tasks import THINK_TASKS

# (text, task, template family) for every protocol family whose outputs name the slots
SLOTTED = [
    *[(official_example(t), t, None) for t in THINK_TASKS],
    (PAIR_SCORE_IMAGE, Task.IMAGE_GENERATION, "unifiedreward-2.0-pair-score"),
    (PAIR_SCORE_VIDEO, Task.VIDEO_GENERATION, "unifiedreward-2.0-pair-score"),
    ("Image 1 keeps the cube's shape, but Image 2 is better.", Task.IMAGE_GENERATION, "unifiedreward-2.0"),
    ("Video 1 is better,", Task.VIDEO_GENERATION, "unifiedreward-2.0"),
    ("Edited Image 1 is better.", Task.IMAGE_EDITING, "unifiedreward-edit"),
    ("Image 1: 7.50\nImage 2: -2.25", Task.IMAGE_EDITING, "unifiedreward-edit-pair-score"),
    (_flex(), Task.IMAGE_GENERATION, "unifiedreward-flex"),
    (_flex().replace("Image", "Video"), Task.VIDEO_GENERATION, "unifiedreward-flex"),
]


def _flip(d: dict | None) -> dict | None:
    return None if d is None else {3 - k: v for k, v in d.items()}


@pytest.mark.parametrize(("text", "task", "family"), SLOTTED)
def test_swapping_a_judgment_is_an_involution_the_parser_reads_to_the_swapped_winner(text: str, task: Task, family: str | None) -> None:
    swapped = swap_candidates(text)
    assert swapped != text
    assert swap_candidates(swapped) == text
    before = parse_judgment(text, task, family=family)
    after = parse_judgment(swapped, task, family=family)
    assert before.ok and after.ok, (before.reason, after.reason)
    assert before.winner in (1, 2) and after.winner == 3 - before.winner
    assert after.totals == _flip(before.totals)
    assert {k: _flip(v) for k, v in before.scores.items()} == after.scores
    assert after.overall == _flip(before.overall)
    assert after.totals_consistent == before.totals_consistent


@pytest.mark.parametrize("task", list(THINK_TASKS))
def test_swapped_think_examples_stay_strict_and_keep_reading_order(task: Task) -> None:
    text = official_example(task)
    swapped = swap_candidates(text)
    assert parse_judgment(swapped, task, strict=True).ok
    lines = swapped.splitlines()
    # the Total score lines keep "1" before "2"; their sums moved with the candidates
    i = lines.index("Total score:")
    assert lines[i + 1].split(":")[0].endswith("1") and lines[i + 2].split(":")[0].endswith("2")
    assert lines[i + 1].split(":")[1] == text.splitlines()[i + 2].split(":")[1]


def test_swapping_the_scripted_teachers_chain_of_thought_equals_what_it_writes_for_the_swapped_pair() -> None:
    from unireward.demo.teacher import synthetic_cot

    cases = [
        (Task.IMAGE_GENERATION, "Text Caption: [a red circle]", [["blue"], ["red"]], [["red"], ["blue"]]),
        (Task.VIDEO_GENERATION, "Text Caption: [a square turning from red to blue]",
         [["red", "red"], ["red", "blue"]], [["red", "blue"], ["red", "red"]]),
        (Task.IMAGE_UNDERSTANDING, "about the image\nAnswer 1: [The star is red.]\nAnswer 2: [The star is blue.]",
         [["blue"]], "about the image\nAnswer 1: [The star is blue.]\nAnswer 2: [The star is red.]"),
    ]  # fmt: skip
    for task, text, seen, other in cases:
        for correct in (True, False):
            cot = synthetic_cot(task, text, seen, correct)
            # generation: the candidates' pixels trade places; understanding: the answers in the prompt
            want = synthetic_cot(task, other, seen, correct) if isinstance(other, str) else synthetic_cot(task, text, other, correct)
            assert swap_candidates(cot) == want
