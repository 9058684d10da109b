"""The released UnifiedReward judges' protocols (2.0, Edit, Flex): their shipped prompts, the one
parser on the official example outputs (and on outputs written to each prompt's stated format where
the official scripts show none), and the [0, 1] rewards built on them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unireward.protocol import Task, get_family, parse_judgment, render_messages
from unireward.protocol.parser import relabel_swapped
from unireward.protocol.templates import family_modes, list_families
from unireward.rewards import get_reward_functions, make_protocol_reward, protocol_reward

# Example outputs printed in the official UnifiedReward-2.0 inference scripts.
PAIR_SCORE_IMAGE = """Alignment Score:
 Image 1: 0.435699999332428
 Image 2: 0.564300000667572

Coherence Score:
 Image 1: 0.4180000126361847
 Image 2: 0.5820000171661377

Style Score:
 Image 1: 0.40790000557899475
 Image 2: 0.5921000242233276
"""
PAIR_SCORE_VIDEO = """Alignment Score:
 Video 1: 0.4736
 Video 2: 0.5264

Coherence Score:
 Video 1: 0.5981
 Video 2: 0.4019

Style Score:
 Video 1: 0.3484
 Video 2: 0.6516

"""
POINT_ACS_IMAGE = """Alignment Score (1-5): 2.694700002670288
Coherence Score (1-5): 2.371500015258789
Style Score (1-5): 2.802500009536743
"""
POINT_APS_VIDEO = """Alignment Score (1-5): 2.4036
Physics Score (1-5): 3.0987
Style Score (1-5): 3.3889
"""


def _flex(winner: str = "Image 2", s: tuple[float, float] = (3, 7), extra: str = "") -> str:
    """A Flex answer in the layout its prompt asks for (a fenced JSON object)."""
    obj = {
        "prompt": "a red cube",
        "categories": [
            {"name": "Semantic Alignment & Accuracy", "dims": [
                {"name": "Colour", "reason_1": "pink", "reason_2": "red", "score_1": s[0], "score_2": s[1]},
                {"name": "Shape", "reason_1": "cube", "reason_2": "cube", "score_1": 5, "score_2": 5}],
             "cat_reason": "2 has the colour", "cat_winner": "Image 2"},
            {"name": "Aesthetics & Artistry", "dims": [
                {"name": "Lighting", "reason_1": "flat", "reason_2": "soft", "score_1": 4, "score_2": 6}],
             "cat_reason": "2 is nicer", "cat_winner": "Image 2"},
        ],
        "reason": "Image 2 follows the prompt", "winner": winner,
    }  # fmt: skip
    return "```json\n" + json.dumps(obj, indent=2) + extra + "\n```"


def test_every_zoo_family_is_registered_with_its_modes() -> None:
    assert family_modes("unifiedreward-2.0") == ["pairwise", "pointwise"]
    assert family_modes("unifiedreward-edit") == ["pairwise", "pointwise"]
    assert family_modes("unifiedreward-flex") == ["pairwise"]
    assert {"unifiedreward-2.0-pair-score", "unifiedreward-edit-pair-score"} <= set(list_families())
    for name in list_families():
        for mode in family_modes(name):
            fam = get_family(name, mode)
            if fam.verdict != "think":
                assert (fam.directory.parent / "LICENSE").exists() or (fam.directory / "LICENSE").exists(), name
                assert "Yibin Wang" in next(fam.directory.parent.glob("LICENSE"), fam.directory / "LICENSE").read_text()


def test_edit_prompts_send_the_source_first_and_keep_the_official_text() -> None:
    msgs = render_messages("image_editing", "turn the cube blue", ["src", "e1", "e2"], family="unifiedreward-edit")
    parts = msgs[0]["content"]
    assert [p.get("image") for p in parts[:3]] == ["src", "e1", "e2"] and parts[3]["type"] == "text"
    text = parts[3]["text"]
    assert text.startswith("You are tasked with comparing two edited images")
    assert "- Source Image (before editing)\n- Edited Image 1" in text
    assert text.endswith("Text instruction - turn the cube blue\n")
    point = render_messages("image_editing", "turn it blue", ["src", "e1"], family="unifiedreward-edit", mode="pointwise")
    assert [p.get("image") for p in point[0]["content"][:2]] == ["src", "e1"]
    assert point[0]["content"][2]["text"].endswith("Editing instruction:turn it blue\n")
    quality = render_messages("image_generation", "unused", ["e1"], family="unifiedreward-edit", mode="pointwise")
    assert "score = [naturalness, artifacts]" in quality[0]["content"][1]["text"]
    with pytest.raises(ValueError, match="needs 3 source \\+ edited"):
        render_messages("image_editing", "x", ["e1", "e2"], family="unifiedreward-edit")
    with pytest.raises(FileNotFoundError, match="no prompt for image_editing"):
        render_messages("image_editing", "x", ["s", "e1", "e2"])  # Think has no official editing prompt


def test_zoo_prompts_fill_the_caption_and_keep_their_json() -> None:
    flex = render_messages("video_generation", "a {R1} fox", ["v1", "v2"], family="unifiedreward-flex")[0]["content"][-1]["text"]
    assert "**Prompt:** [a {R1} fox]" in flex and '"cat_winner": "Video 1/2"' in flex and "{\n  \"prompt\"" in flex
    score = render_messages("image_generation", "a cat", ["a", "b"], family="unifiedreward-2.0-pair-score")[0]["content"][-1]["text"]
    assert score.endswith("Text Caption: [a cat]") and "sum to exactly 1.0" in score
    point = render_messages("video_generation", "a cat", ["v"], family="unifiedreward-2.0", mode="pointwise")
    assert "Physics Score (1-5): Y" in point[0]["content"][-1]["text"]


@pytest.mark.parametrize("strict", [False, True])
def test_pair_score_official_examples(strict: bool) -> None:
    j = parse_judgment(PAIR_SCORE_IMAGE, "image_generation", strict=strict, family="unifiedreward-2.0-pair-score")
    assert j.ok and j.winner == 2 and not j.tie
    assert j.scores == {"Alignment": {1: 0.435699999332428, 2: 0.564300000667572},
                        "Coherence": {1: 0.4180000126361847, 2: 0.5820000171661377},
                        "Style": {1: 0.40790000557899475, 2: 0.5921000242233276}}  # fmt: skip
    assert j.overall[2] == pytest.approx((0.5643 + 0.582 + 0.5921) / 3, abs=1e-4)
    assert j.overall[1] + j.overall[2] == pytest.approx(1.0)
    v = parse_judgment(PAIR_SCORE_VIDEO, "video_generation", strict=strict, family="unifiedreward-2.0-pair-score")
    assert v.ok and v.winner == 2 and v.overall[1] == pytest.approx((0.4736 + 0.5981 + 0.3484) / 3)
    assert [d.name for d in v.dimensions] == ["Alignment", "Coherence", "Style"]


def test_pair_score_strict_refuses_what_lenient_reads() -> None:
    family = "unifiedreward-2.0-pair-score"
    no_style = PAIR_SCORE_IMAGE.split("Style Score:")[0]
    off_sum = PAIR_SCORE_IMAGE.replace("0.564300000667572", "0.9")
    for text, why in ((no_style, "expected"), (off_sum, "sum to 1")):
        assert parse_judgment(text, "image_generation", family=family).ok
        j = parse_judgment(text, "image_generation", strict=True, family=family)
        assert not j.ok and why in j.reason
    assert parse_judgment(PAIR_SCORE_IMAGE, "video_generation", family=family).reason.startswith("no dimension")


@pytest.mark.parametrize("strict", [False, True])
def test_point_score_official_examples(strict: bool) -> None:
    j = parse_judgment(POINT_ACS_IMAGE, "image_generation", strict=strict, mode="pointwise", family="unifiedreward-2.0")
    assert j.ok and j.score == pytest.approx((2.6947 + 2.3715 + 2.8025) / 3, abs=1e-4)
    assert j.scores["Coherence"] == {1: 2.371500015258789} and j.overall[1] == pytest.approx((j.score - 1) / 4)
    v = parse_judgment(POINT_APS_VIDEO, "video_generation", strict=strict, mode="pointwise", family="unifiedreward-2.0")
    assert v.ok and list(v.scores) == ["Alignment", "Physics", "Style"]
    # the image prompt's dimensions are not the video prompt's: strict notices, lenient reads what is there
    wrong = parse_judgment(POINT_ACS_IMAGE, "video_generation", strict=strict, mode="pointwise", family="unifiedreward-2.0")
    assert wrong.ok is (not strict)
    bad = parse_judgment(POINT_APS_VIDEO.replace("3.0987", "7.5"), "video_generation", strict=strict, mode="pointwise",
                         family="unifiedreward-2.0")  # fmt: skip
    assert bad.ok is (not strict) and (strict or list(bad.scores) == ["Alignment", "Style"])


def test_pair_rank_free_text_verdicts_and_ties() -> None:
    fam = "unifiedreward-2.0"
    j = parse_judgment("Image 1 keeps the cube's shape, but Image 2 is better.", "image_generation", family=fam)
    assert j.ok and j.winner == 2 and j.overall == {1: 0.0, 2: 1.0}
    tie = parse_judgment("Both images are equally good.", "image_generation", strict=True, family=fam)
    assert tie.ok and tie.tie and tie.winner is None and tie.overall == {1: 0.5, 2: 0.5}
    video = parse_judgment("Video 1 is better,", "video_generation", strict=True, family=fam)
    assert video.ok and video.winner == 1
    mixed = "Image 1 is better at first sight. On reflection, Image 2 is better."
    assert parse_judgment(mixed, "image_generation", family=fam).winner == 2  # the conclusion counts
    assert not parse_judgment(mixed, "image_generation", strict=True, family=fam).ok
    assert parse_judgment("Image 3 is better", "image_generation", family=fam).reason.startswith("no verdict")
    edit = parse_judgment("Edited Image 1 is better.", "image_editing", family="unifiedreward-edit")
    assert edit.ok and edit.winner == 1


def test_edit_pair_scores_signed_and_the_official_fallback() -> None:
    fam = "unifiedreward-edit-pair-score"
    j = parse_judgment("Image 1: 7.50\nImage 2: -2.25", "image_editing", strict=True, family=fam)
    assert j.ok and j.winner == 1 and j.scores == {"score": {1: 7.5, 2: -2.25}}
    assert j.overall[1] == pytest.approx(1 / (1 + 2.718281828459045 ** -9.75)) and sum(j.overall.values()) == pytest.approx(1)
    loose = "The first edit earns 6.5 while the second earns 3.25."  # no labels: the official regex
    assert not parse_judgment(loose, "image_editing", strict=True, family=fam).ok
    assert parse_judgment(loose, "image_editing", family=fam).scores == {"score": {1: 6.5, 2: 3.25}}
    same = parse_judgment("Image 1: 4.0\nImage 2: 4.0", "image_editing", family=fam)
    assert same.ok and same.tie and same.winner is None


def test_edit_pointwise_viescore_layout() -> None:
    fam = "unifiedreward-edit"
    official = '{\n\n"reasoning" : "The cube is blue; the background changed.",\n"score" : [21, 14],\n}'
    j = parse_judgment(official, "image_editing", strict=True, mode="pointwise", family=fam)
    assert j.ok and j.scores == {"editing success": {1: 21.0}, "overediting": {1: 14.0}}
    assert j.score == 14.0 and j.overall == {1: 14 / 25}
    q = parse_judgment(official, "image_generation", strict=True, mode="pointwise", family=fam)
    assert list(q.scores) == ["naturalness", "artifacts"]
    assert not parse_judgment(official.replace("21", "30"), "image_editing", mode="pointwise", family=fam).ok
    bare = "output score = [20, 18]"
    assert parse_judgment(bare, "image_editing", mode="pointwise", family=fam).score == 18.0
    assert not parse_judgment(bare, "image_editing", strict=True, mode="pointwise", family=fam).ok


def test_flex_json_verdict_strict_and_lenient() -> None:
    fam = "unifiedreward-flex"
    j = parse_judgment(_flex(), "image_generation", strict=True, family=fam)
    assert j.ok and j.winner == 2 and j.totals_consistent
    assert j.scores["Semantic Alignment & Accuracy / Colour"] == {1: 3.0, 2: 7.0}
    assert j.overall == {1: pytest.approx(12 / 30), 2: pytest.approx(18 / 30)}
    assert [c["winner"] for c in j.details["categories"]] == [2, 2]
    broken_sum = _flex(s=(3, 8))
    assert parse_judgment(broken_sum, "image_generation", family=fam).ok
    assert "sum-of-10" in parse_judgment(broken_sum, "image_generation", strict=True, family=fam).reason
    trailing = _flex().replace('"winner": "Image 2"\n}', '"winner": "Image 2",\n}')
    assert parse_judgment(trailing, "image_generation", family=fam).winner == 2
    assert not parse_judgment(trailing, "image_generation", strict=True, family=fam).ok
    cut = _flex().rsplit("}", 1)[0]  # the object never closed (max_new_tokens): what it named still counts
    assert parse_judgment(cut, "image_generation", family=fam).winner == 2
    assert parse_judgment(_flex()[:-60], "image_generation", family=fam).reason == "no winner 'Image 1' or 'Image 2'"
    inconsistent = parse_judgment(_flex(winner="Image 1"), "image_generation", family=fam)
    assert inconsistent.winner == 1 and inconsistent.totals_consistent is False
    assert not parse_judgment(_flex(winner="Image 1/2"), "image_generation", family=fam).ok
    video = parse_judgment(_flex().replace("Image", "Video"), "video_generation", strict=True, family=fam)
    assert video.ok and video.winner == 2


def test_relabelling_a_swapped_judgment_gives_the_original_order() -> None:
    swapped = parse_judgment(_flex(), "image_generation", family="unifiedreward-flex")
    back = parse_judgment(relabel_swapped(_flex()), "image_generation", family="unifiedreward-flex")
    assert back.winner == 3 - swapped.winner and back.overall == {1: swapped.overall[2], 2: swapped.overall[1]}
    assert relabel_swapped(relabel_swapped(PAIR_SCORE_VIDEO)) == PAIR_SCORE_VIDEO


def test_protocol_rewards_map_every_verdict_into_unit_range() -> None:
    n = 5
    completions = [PAIR_SCORE_IMAGE, "Both images are equally good.", _flex(), "Image 1: 1.0\nImage 2: 3.0", "nonsense"]
    families = ["unifiedreward-2.0-pair-score", "unifiedreward-2.0", "unifiedreward-flex",
                "unifiedreward-edit-pair-score", "unifiedreward-flex"]  # fmt: skip
    tasks = ["image_generation"] * 3 + ["image_editing", "image_generation"]
    got = protocol_reward(completions, task=tasks, label=[2] * n, template_family=families)
    assert got[0] == pytest.approx((0.5643 + 0.582 + 0.5921) / 3, abs=1e-4) and got[1] == 0.5
    assert got[2] == pytest.approx(0.6) and got[3] > 0.85 and got[4] == 0.0
    assert protocol_reward([PAIR_SCORE_IMAGE], task=["image_generation"], label=["Image 1 is better"],
                           template_family=["unifiedreward-2.0-pair-score"])[0] == pytest.approx(1 - got[0])  # fmt: skip
    edit = make_protocol_reward("unifiedreward-edit", "pointwise")
    assert edit(['{"reasoning": "ok", "score": [25, 20]}'], task=["image_editing"]) == [0.8]
    assert get_reward_functions(["protocol"]) == [protocol_reward]
    with pytest.raises(ValueError, match="'label'"):
        protocol_reward([PAIR_SCORE_IMAGE], task=["image_generation"], template_family=["unifiedreward-2.0-pair-score"],
                        mode=["pairwise"])  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.sampled_from([(n, m) for n in list_families() for m in family_modes(n)]),
       st.sampled_from(list(Task)), st.booleans())  # fmt: skip
def test_parser_never_raises_for_any_family(text: str, fam_mode: tuple[str, str], task: Task, strict: bool) -> None:
    name, mode = fam_mode
    j = parse_judgment(text, task, strict=strict, mode=mode, family=name)
    assert (j.status == "ok") == (j.reason == "")  # every refusal says why
    assert j.ok or (j.winner is None and j.overall is None)
    assert j.status != "truncated" or "<think>" in text or "<answer>" in text
    if j.ok and j.overall is not None:
        assert all(0.0 <= v <= 1.0 for v in j.overall.values())
