"""Recipes and the pipeline: dry runs of the shipped recipes, and a small end-to-end run that resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unireward.manifest import SettingsChanged
from unireward.train.pipeline import Pipeline
from unireward.train.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unireward.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_dry_run_prints_the_paper_recipe_without_loading_a_model(tmp_path: Path) -> None:
    proc = _cli("pipeline", "--recipe", "paper-qwen25vl-7b", "--out", str(tmp_path / "run"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert cfg["cold_start"]["learning_rate"] == 2.5e-6 and cfg["cold_start"]["gradient_accumulation_steps"] == 16
    assert cfg["cold_start"]["warmup_ratio"] == 0.3 and cfg["cold_start"]["freeze_vision"] is True
    g = cfg["grpo"]
    assert (g["num_generations"], g["beta"], g["learning_rate"], g["temperature"], g["top_p"]) == (8, 0.04, 1e-6, 1.0, 0.95)
    assert g["rewards"] == ["format", "accuracy"] and g["model"].endswith("rejection_sampling/final")
    assert cfg["sample"]["model"].endswith("cold_start/final") and cfg["distill"]["tasks"] == ["image_generation"]
    assert cfg["model"]["base"] == "CodeGoat24/UnifiedReward-qwen-7b"
    assert not (tmp_path / "run" / "models").exists()


def test_dry_run_of_the_paper_llava_ov_recipe(tmp_path: Path) -> None:
    """The paper's main model: UnifiedReward-7b (LLaVA-NeXT) is converted into models/base and every stage
    trains from there, with LLaVA-OV's 14-px grid and a pair-wide pixel budget."""
    proc = _cli("pipeline", "--recipe", "paper-llava-ov-7b", "--out", str(tmp_path / "run"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert cfg["model"]["base"] == "CodeGoat24/UnifiedReward-7b" and cfg["model"]["convert"] == "llava_qwen"
    assert cfg["cold_start"]["model"] == str(tmp_path / "run" / "models" / "base")
    assert cfg["cold_start"]["budget"]["factor"] == 14 and cfg["cold_start"]["budget"]["max_total_pixels"] == 524288
    assert (cfg["grpo"]["num_generations"], cfg["grpo"]["beta"], cfg["grpo"]["learning_rate"]) == (8, 0.04, 1e-6)
    assert not (tmp_path / "run" / "models").exists()


def test_dry_run_of_the_demo_recipe_and_bad_recipes(tmp_path: Path) -> None:
    assert _cli("pipeline", "--recipe", "tiny-cpu", "--out", str(tmp_path / "d"), "--dry-run").returncode == 0
    # --seed reseeds training (every stage) but not the data, so runs share their test set
    seeded = json.loads(_cli("pipeline", "--recipe", "tiny-cpu", "--out", str(tmp_path / "s"), "--dry-run", "--seed", "3").stdout)
    assert {seeded[s]["seed"] for s in ("cold_start", "sample", "rs_sft", "grpo")} == {3}
    assert seeded["data"]["synthetic"]["seed"] == 0
    bad = tmp_path / "bad.yaml"
    scripted = {"kind": "scripted"}
    bad.write_text(yaml.safe_dump({"data": {"synthetic": {}}, "teacher": scripted, "grpo": {"num_generations": 8, "lerning_rate": 1}}))
    proc = _cli("pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run")
    assert proc.returncode == 2 and "lerning_rate" in proc.stderr
    bad.write_text(yaml.safe_dump({"data": {"synthetic": {}}, "teacher": scripted, "grpo": {"num_generations": 1}}))
    proc = _cli("pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run")
    assert proc.returncode == 2 and "num_generations" in proc.stderr
    bad.write_text(yaml.safe_dump({"data": {"synthetic": {}}}))
    proc = _cli("pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run")
    assert proc.returncode == 2 and "base_url" in proc.stderr
    proc = _cli("pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run")
    files = {"cold_start": "c.jsonl", "train": "t.jsonl", "test": "h.jsonl"}
    bad.write_text(yaml.safe_dump({"data": files, "teacher": scripted, "base_style": "rationale"}))
    proc = _cli("pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run")
    assert proc.returncode == 2 and "synthetic" in proc.stderr


MICRO = {
    "data": {"synthetic": {"cold_start_pairs": 8, "train_per_task": 3, "test_per_task": 2, "seed": 4}},
    "model": {"base": "tiny", "tiny": {"hidden_size": 64}},
    "teacher": {"kind": "scripted", "accuracy": 0.8},
    "template_family": "unireward-compact",
    "base_style": "rationale",
    "base_sft": {"learning_rate": 0.005, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                 "warmup_ratio": 0.0, "max_steps": 2},
    "cold_start": {"learning_rate": 0.005, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
                   "warmup_ratio": 0.0, "max_steps": 3},
    "sample": {"k": 2, "max_new_tokens": 16},
    "rs_sft": {"learning_rate": 0.005, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
               "warmup_ratio": 0.0, "max_steps": 2},
    "grpo": {"num_generations": 4, "per_device_train_batch_size": 4, "max_completion_length": 16,
             "learning_rate": 0.001, "max_steps": 2},
    "eval": {"max_new_tokens": 16, "batch_size": 8},
}  # fmt: skip


def test_micro_pipeline_runs_every_stage_reports_and_resumes(tmp_path: Path) -> None:
    recipe_path = tmp_path / "micro.yaml"
    recipe_path.write_text(yaml.safe_dump(MICRO))
    out = tmp_path / "run"
    report = Pipeline(load_recipe(str(recipe_path)), str(out), stop_after="sample").run(progress=lambda s: None)
    assert [s["name"] for s in report["stages"]] == ["base", "cold_start"]
    report = Pipeline(load_recipe(str(recipe_path)), str(out)).run(progress=lambda s: None)
    saved = json.loads((out / "report.json").read_text())
    assert saved["data"] == "synthetic"
    assert [s["name"] for s in saved["stages"]] == ["base", "cold_start", "rejection_sampling", "grpo"]
    for s in saved["stages"]:
        assert 0 <= s["accuracy"] <= 1 and 0 <= s["format_validity"] <= 1 and s["n"] == 8
        assert set(s["per_task"]) == {"image_generation", "video_generation", "image_understanding", "video_understanding"}
    assert saved["distill"]["kept"] + saved["distill"]["wrong_verdict"] + saved["distill"]["bad_format"] == 8
    assert "synthetic" in (out / "report.md").read_text()
    assert (out / "accuracy_by_stage.png").stat().st_size > 0
    assert report["stages"] == saved["stages"]
    # a rerun finds every stage done and only rewrites the report
    markers = {p.name: p.stat().st_mtime for p in (out / "stages").iterdir()}
    Pipeline(load_recipe(str(recipe_path)), str(out)).run(progress=lambda s: None)
    assert {p.name: p.stat().st_mtime for p in (out / "stages").iterdir()} == markers
    # an edited recipe is refused, naming what changed; --overwrite redoes only the stages it touches
    recipe_path.write_text(yaml.safe_dump({**MICRO, "rs_sft": {**MICRO["rs_sft"], "learning_rate": 0.01}}))
    with pytest.raises(SettingsChanged, match=r"stage rs_sft .*learning_rate: 0.005 -> 0.01"):
        Pipeline(load_recipe(str(recipe_path)), str(out)).run(progress=lambda s: None)
    recipe_path.write_text(yaml.safe_dump({**MICRO, "eval": {"max_new_tokens": 12, "batch_size": 8}}))
    with pytest.raises(SettingsChanged, match=r"stage eval_base .*max_new_tokens"):
        Pipeline(load_recipe(str(recipe_path)), str(out)).run(progress=lambda s: None)
    Pipeline(load_recipe(str(recipe_path)), str(out), overwrite=True).run(progress=lambda s: None)
    redone = {p.name for p in (out / "stages").iterdir() if p.stat().st_mtime != markers[p.name]}
    assert redone == {"eval_base.json", "eval_cold_start.json", "eval_rejection_sampling.json", "eval_grpo.json"}


@pytest.mark.parametrize("name", ["paper-qwen25vl-7b", "tiny-cpu"])
def test_shipped_recipes_validate(name: str) -> None:
    load_recipe(name)


@pytest.mark.parametrize("family", ["qwen3_vl", "llava_onevision"])
def test_micro_pipeline_runs_for_every_model_family(family: str, tmp_path: Path) -> None:
    recipe_path = tmp_path / "micro.yaml"
    recipe_path.write_text(yaml.safe_dump({**MICRO, "base_sft": {}}))  # the base_sft stage is covered above
    proc = _cli("pipeline", "--recipe", str(recipe_path), "--out", str(tmp_path / "run"), "--family", family)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == ["base", "cold_start", "rejection_sampling", "grpo"]
    config = json.loads((tmp_path / "run" / "models" / "grpo" / "final" / "config.json").read_text())
    assert config["model_type"] == family
    assert "grpo" in proc.stdout  # the results table is printed
