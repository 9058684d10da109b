"""Replay of real GenAI-Bench judge outputs reproduces the published table."""

from __future__ import annotations

import json
import re

import pytest
from conftest import GENAI_REPLAY

from unireward.cli import main
from unireward.eval.replay import replay

TASKS = {"Image Generation": "image_generation", "Image Editing": "image_edition", "Video Generation": "video_generation"}


def published() -> dict[tuple[str, str], float]:
    """The table in published_results.md, read rather than copied into the test."""
    lines = [ln for ln in (GENAI_REPLAY / "published_results.md").read_text().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for ln in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True))
        for col, task in TASKS.items():
            out[(cells["Model"], task)] = float(cells[col])
    return out


@pytest.mark.parametrize("model", ["gpt4o", "gemini-1.5-pro", "random", "llava", "idefics2"])
@pytest.mark.parametrize("task", sorted(TASKS.values()))
def test_replay_reproduces_published_accuracy(shared_data, model, task):
    result = replay(GENAI_REPLAY / task / model / "pairwise.jsonl", "genai-bench")
    assert round(result["accuracy"], 2) == pytest.approx(published()[(model, task)], abs=1e-9)
    assert result["n"] == sum(1 for _ in open(GENAI_REPLAY / task / model / "pairwise.jsonl"))


def test_replay_ignores_stored_verdicts(shared_data, tmp_path):
    """Corrupt model_vote/correct: the score must not move; corrupt the response: it must."""
    src = GENAI_REPLAY / "image_generation" / "gpt4o" / "pairwise.jsonl"
    rows = [json.loads(x) for x in open(src)]
    lying = tmp_path / "lying.jsonl"
    lying.write_text("".join(json.dumps({**r, "model_vote": "[[A>B]]", "correct": True}) + "\n" for r in rows))
    assert replay(lying)["accuracy"] == replay(src)["accuracy"]
    blank = tmp_path / "blank.jsonl"
    blank.write_text("".join(json.dumps({**r, "response": "no verdict"}) + "\n" for r in rows))
    assert replay(blank)["accuracy"] == 0.0 and replay(blank)["unparsed"] == len(rows)


def test_greedy_match_and_tie_votes(tmp_path):
    rows = [
        {"response": "x [[A=B]] y", "human_vote": "bothbad_vote"},  # right for both tie votes
        {"response": "[[A=B]]", "human_vote": "tievote"},
        {"response": "[[A=B=Good]]", "human_vote": "bothbad_vote"},  # wrong tie flavour
        {"response": "Model A: [[A>B]] or [[B>A]]", "human_vote": "leftvote"},  # greedy: not a vote
        {"response": "[[A>B]]\n[[B>A]]", "human_vote": "leftvote"},  # one line: first wins
    ]
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = replay(f)
    assert r["accuracy"] == pytest.approx(60.0)
    assert r["tau"] == pytest.approx(80.0)  # 3-way: all three tie outputs count for tie votes


def test_replay_cli_json(shared_data, capsys):
    path = GENAI_REPLAY / "video_generation" / "gpt4o" / "pairwise.jsonl"
    assert main(["eval", "replay", "--protocol", "genai-bench", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["accuracy"], 2) == published()[("gpt4o", "video_generation")]
    assert re.search("unparsed = wrong", out["convention"])
