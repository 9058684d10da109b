"""Numbers other people published for named judges, with where they were read.

They are printed beside our measurements, marked "published, not measured here". Only numbers
read in a benchmark's own README are listed; a row holds percent values keyed like our results.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    judge: str
    values: dict[str, float]
    source: str
    note: str = ""


_MMRB2 = "facebookresearch/MMRB2 README, 'Model Performance Results'"
_MMRB1 = "facebookresearch/multimodal_rewardbench README, 'Leaderboard' (fractions shown as percent)"
_HPS = "tgxs002/HPSv2 README, 'Preference Model Evaluation' (accuracy on the HPD v2 test set)"
_VLRB = "UnifiedReward-Think paper (legacy category mapping)"
_GENAI = "GenAI-Bench published 'Merged Results' (pairwise template, test_v1, official 4-way accuracy); our replay reproduces them"
_UR_THINK = "UnifiedReward-Think paper (split test, 'diff' accuracy: left/right votes only)"

PUBLISHED: dict[str, tuple[Published, ...]] = {
    "mmrb2": (
        Published("UnifiedReward (Qwen2.5-VL-7B)", {"t2i": 59.8, "reasoning": 55.1}, _MMRB2,
                  "reasoning on the single-image subset"),  # fmt: skip
        Published("GPT-4o", {"t2i": 60.3, "edit": 65.0, "interleaved": 61.5, "reasoning": 51.9, "mean_of_tasks": 59.7}, _MMRB2),
        Published("Qwen2.5-VL-7B", {"t2i": 50.4, "edit": 57.1, "interleaved": 48.4, "reasoning": 47.5, "mean_of_tasks": 50.9}, _MMRB2),
        Published("Qwen3-VL-8B", {"t2i": 59.4, "edit": 61.7, "interleaved": 61.5, "reasoning": 54.6, "mean_of_tasks": 59.3}, _MMRB2),
        Published("HPSv2", {"t2i": 54.7}, _MMRB2),
    ),
    "multimodal-rewardbench": (
        Published("GPT-4o (Dec 2024)", {"overall": 71.5}, _MMRB1),
        Published("Claude 3.5 Sonnet (Dec 2024)", {"overall": 72.0}, _MMRB1),
        Published("Gemini 1.5 Pro (Dec 2024)", {"overall": 72.0}, _MMRB1),
        Published("Llama-3.2-11B-Vision-Instruct", {"overall": 52.4}, _MMRB1),
    ),
    "hpdv2": (
        Published("HPS v2", {"overall": 83.3}, _HPS),
        Published("PickScore", {"overall": 79.8}, _HPS),
        Published("ImageReward", {"overall": 74.0}, _HPS),
        Published("Single human", {"overall": 78.1}, _HPS),
    ),
    "genai-bench": (
        Published("gpt4o", {"image_generation": 45.59, "image_edition": 53.54, "video_generation": 48.46}, _GENAI),
        Published("gemini-1.5-pro", {"image_generation": 44.67, "image_edition": 55.93, "video_generation": 46.21}, _GENAI),
        Published("random", {"image_generation": 25.36, "image_edition": 25.9, "video_generation": 25.16}, _GENAI),
        Published("UnifiedReward-Think", {"image_generation diff": 72.5, "video_generation diff": 82.3}, _UR_THINK),
    ),
    "vl-rewardbench": (Published("UnifiedReward-Think", {"overall": 73.8, "macro": 72.3}, _VLRB),),
}


def published_rows(benchmark: str) -> tuple[Published, ...]:
    """The published rows of a benchmark (empty when none was read).

    >>> published_rows("mmrb2")[1].values["mean_of_tasks"], published_rows("nothing")
    (59.7, ())
    """
    return PUBLISHED.get(benchmark, ())
