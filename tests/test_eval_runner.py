"""The runner end to end with baseline judges: resume, order handling, error rows, reports,
and the GenAI-Bench, VideoGen-RewardBench and ShareGPTVideo loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import VIDEOALIGN

from unireward.cli import main
from unireward.data.schema import PreferencePair, write_pairs
from unireward.eval.baselines import BaselineJudge
from unireward.eval.runner import EvalConfig, run_eval


def _understanding_pairs(path: Path, image: Path, n: int = 12) -> Path:
    pairs = [
        PreferencePair(id=f"u{i}", task="image_understanding", prompt=f"What colour is shape {i}?",
                       candidates=("red" * (1 + i % 3), "a much longer answer " * 2), label=1 + i % 2,
                       reference=str(image), source="synthetic")  # fmt: skip
        for i in range(n)
    ]
    write_pairs(pairs, path)
    return path


class Interrupted(Exception):
    pass


class CountingJudge(BaselineJudge):
    """The 'first' baseline, counting the pairs it sees and optionally failing after a budget."""

    def __init__(self, budget: int | None = None):
        super().__init__("first")
        self.seen: list[str] = []
        self.budget = budget

    def compare_batch(self, pairs, media_root=None):
        if self.budget is not None and len(self.seen) + len(pairs) > self.budget:
            raise Interrupted
        self.seen += [p.id for p in pairs]
        return super().compare_batch(pairs, media_root)


def test_resume_skips_done_ids(tmp_path, tiny_images):
    data = _understanding_pairs(tmp_path / "pairs.jsonl", tiny_images[0])
    cfg = EvalConfig("pairs", str(data), str(tmp_path / "out"), judge="baseline:first", batch_size=4, data_kind="synthetic")
    with pytest.raises(Interrupted):
        run_eval(cfg, judge=CountingJudge(budget=8))
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8
    second = CountingJudge()
    report = run_eval(cfg, judge=second)
    assert len(second.seen) == 4  # only the rest
    keys = [json.loads(x)["key"] for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 12
    third = CountingJudge()
    assert run_eval(cfg, judge=third) == report and third.seen == []
    for name in ("report.json", "report.md", "report.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert (tmp_path / "out" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "synthetic" in md and "baseline:first" in md and "human ties dropped" in md


def test_changed_settings_are_refused(tmp_path, tiny_images):
    data = _understanding_pairs(tmp_path / "pairs.jsonl", tiny_images[0])
    run_eval(EvalConfig("pairs", str(data), str(tmp_path / "out"), judge="baseline:first"))
    with pytest.raises(ValueError, match="judge"):
        run_eval(EvalConfig("pairs", str(data), str(tmp_path / "out"), judge="baseline:longer"))


def test_both_orders_report_swap_consistency(tmp_path, tiny_images):
    data = _understanding_pairs(tmp_path / "pairs.jsonl", tiny_images[0])
    first = run_eval(EvalConfig("pairs", str(data), str(tmp_path / "f"), judge="baseline:first", order="both"))
    shorter = run_eval(EvalConfig("pairs", str(data), str(tmp_path / "s"), judge="baseline:shorter", order="both"))
    assert first["swap_consistency"]["percent"] == 0.0  # pure position bias
    assert first["results"]["accuracy"] == 50.0
    assert shorter["swap_consistency"]["percent"] == 100.0
    assert shorter["n_judgments"] == 24


def test_missing_media_becomes_an_error_row(tmp_path, tiny_images):
    pairs = [
        PreferencePair(id="ok", task="image_generation", prompt="a red square", candidates=(str(tiny_images[0]), str(tiny_images[1])), label=1),
        PreferencePair(id="gone", task="image_generation", prompt="a blue square", candidates=(str(tiny_images[1]), "nowhere/missing.png"), label=2),
    ]
    write_pairs(pairs, tmp_path / "p.jsonl")
    judge = BaselineJudge("first")
    judge.needs_media = True  # as a model judge would
    r = run_eval(EvalConfig("pairs", str(tmp_path / "p.jsonl"), str(tmp_path / "o"), order="as-is"), judge=judge)
    preds = {json.loads(x)["id"]: json.loads(x) for x in open(tmp_path / "o" / "predictions.jsonl")}
    assert preds["gone"]["status"] == "error" and "missing.png" in preds["gone"]["reason"]
    assert preds["gone"]["winner"] is None
    # a failed judgment is neither unparsed nor wrong: its pair is left out and counted apart
    assert r["errors"]["judgments"] == 1 and r["unparsed_judgments"] == 0 and r["n_scored"] == 1
    assert r["results"]["accuracy"] == 100.0


def test_genai_bench_local_file(tmp_path, tiny_images, capsys):
    votes = ["leftvote", "rightvote", "tievote", "bothbad_vote"]
    rows = [{"prompt": f"p{i}", "left_image": tiny_images[i].name, "right_image": tiny_images[(i + 1) % 4].name,
             "vote_type": v} for i, v in enumerate(votes)]  # fmt: skip
    data = tmp_path / "genai.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["eval", "genai-bench", "--data", str(data), "--images", str(tiny_images[0].parent), "--judge", "baseline:first",
            "--order", "as-is", "--split", "test_v1", "--synthetic", "--out", str(tmp_path / "o"), "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    res = out["results"]
    assert res["accuracy"] == 25.0 and res["tau"] == 25.0 and res["diff"] == 50.0
    assert out["labels"]["split"] == "test_v1" and out["labels"]["data"] == "synthetic"


def test_videogen_example_both_orders(shared_data, tmp_path):
    cfg = EvalConfig("videogen-rewardbench", str(VIDEOALIGN / "example.csv"), str(tmp_path / "v"),
                     judge="baseline:first", media_root=str(VIDEOALIGN), order="both")  # fmt: skip
    r = run_eval(cfg)
    # 'first' contradicts itself across orders: every margin is 0, so w/o ties is 0 and
    # w/ ties is the share of human ties (all pairs predicted tied).
    for dim, ties in (("VQ", 1), ("MQ", 2), ("TA", 1)):
        d = r["results"][dim]
        assert d["n"] == 12 and d["human_ties"] == 4 * ties
        assert d["accuracy_without_ties"] == 0.0
        assert d["accuracy_with_ties"] == pytest.approx(100 * ties / 3, abs=1e-3) and d["epsilon"] == 0.0
    compat = run_eval(EvalConfig(**{**cfg.__dict__, "out_dir": str(tmp_path / "c"), "official_compat": True}))
    assert "VideoAlign's loop" in compat["labels"]["tie_convention"]
    # Every margin is 0, so the loop never reaches the "no model ties" state, and its epsilon is 0 too.
    assert compat["results"]["VQ"]["accuracy_with_ties"] == pytest.approx(100 / 3, abs=1e-3)
    assert compat["results"]["TA"]["accuracy_without_ties"] == 0.0


def test_sharegptvideo_pairs(tmp_path, videoalign_videos):
    rows = [{"id": f"s{i}", "video": str(videoalign_videos[i]), "prompt": "What happens?", "chosen": "A girl sits down on a chair.",
             "rejected": "Nothing.", "chosen_score": 5, "rejected_score": 1} for i in range(3)]  # fmt: skip
    data = tmp_path / "dpo.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_eval(EvalConfig("sharegptvideo", str(data), str(tmp_path / "o"), judge="baseline:longer"))
    assert r["results"] == {"accuracy": 100.0, "n": 3, "unparsed": 0}


def test_config_validation():
    with pytest.raises(ValueError):
        EvalConfig("nope", "x", "y")
    with pytest.raises(ValueError):
        EvalConfig("pairs", "x", "y", order="backwards")
    with pytest.raises(ValueError):
        EvalConfig("pairs", "x", "y", samples=0)
    assert EvalConfig("vl-rewardbench", "x", "y").unparsed == "exclude"
    assert EvalConfig("genai-bench", "x", "y").unparsed == "wrong"
