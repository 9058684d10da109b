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
from unireward.train.recipe import load_recipe, resolve

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "OPENAI_API_KEY" or (env or {}).get(k)}
    return subprocess.run([sys.executable, "-m", "unireward.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The CLI in this process (TRL's import is paid once per test session)."""
    from unireward.cli import main

    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_dry_run_prints_the_paper_recipe_without_loading_a_model(tmp_path: Path) -> None:
    proc = _cli("pipeline", "--recipe", "paper-qwen25vl-7b", "--out", str(tmp_path / "run"), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the shipped recipe names data that is not here, and no API key is set
    cfg = json.loads(proc.stdout)
    check = cfg["preflight"]
    assert any("data.cold_start" in p for p in check["problems"]) and any("OPENAI_API_KEY" in p for p in check["problems"])
    assert check["downloads"] == [{"model": "CodeGoat24/UnifiedReward-qwen-7b", "from": "the Hugging Face hub", "cached": False}]
    # the shipped DeepSpeed configs resolve against the recipe's folder, from any working directory
    assert Path(cfg["grpo"]["deepspeed"]).name == "zero3_offload.json" and Path(cfg["grpo"]["deepspeed"]).is_file()
    assert not any("deepspeed" in p for p in check["problems"])
    assert cfg["cold_start"]["learning_rate"] == 2.5e-6 and cfg["cold_start"]["gradient_accumulation_steps"] == 16
    assert cfg["cold_start"]["warmup_ratio"] == 0.3 and cfg["cold_start"]["freeze_vision"] is True
    g = cfg["grpo"]
    assert (g["num_generations"], g["beta"], g["learning_rate"], g["temperature"], g["top_p"]) == (8, 0.04, 1e-6, 1.0, 0.95)
    assert g["rewards"] == ["format", "accuracy"] and g["model"].endswith("rejection_sampling/final")
    assert cfg["sample"]["model"].endswith("cold_start/final") and cfg["distill"]["tasks"] == ["image_generation"]
    assert cfg["model"]["base"] == "CodeGoat24/UnifiedReward-qwen-7b"
    assert not (tmp_path / "run" / "models").exists()


def test_a_shipped_recipe_reads_its_data_under_data_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A shipped recipe's folder is inside the installed package: with ``--data-root`` its relative data
    paths resolve under the user's folder, and the dry run finds the files there."""
    raw = yaml.safe_load((REPO / "src/unireward/configs/recipes/paper-qwen25vl-7b.yaml").read_text())["data"]
    root = tmp_path / "mine"
    for key in ("cold_start", "train", "test"):
        (root / raw[key]).parent.mkdir(parents=True, exist_ok=True)
        (root / raw[key]).write_text("")
    (root / raw["media_root"]).mkdir(parents=True)
    rc, out, _ = _run(["pipeline", "--recipe", "paper-qwen25vl-7b", "--out", str(tmp_path / "run"), "--dry-run",
                       "--data-root", str(root)], capsys)  # fmt: skip
    problems = json.loads(out)["preflight"]["problems"]
    assert not any(p.startswith("data.") or "data." in p.split(":")[0] for p in problems), problems
    assert load_recipe("paper-qwen25vl-7b", data_root=root).data.train == str(root / raw["train"])
    shipped = load_recipe("paper-qwen25vl-7b").data.train
    assert "configs" in shipped and shipped != str(root / raw["train"])  # without it: next to the recipe


def test_dry_run_of_the_paper_llava_ov_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The paper's main model: UnifiedReward-7b (LLaVA-NeXT) is converted into models/base and every stage
    trains from there, with LLaVA-OV's 14-px grid and a pair-wide pixel budget."""
    rc, out, err = _run(["pipeline", "--recipe", "paper-llava-ov-7b", "--out", str(tmp_path / "run"), "--dry-run"], capsys)
    assert rc == 1, err  # no data here
    cfg = json.loads(out)
    assert cfg["model"]["base"] == "CodeGoat24/UnifiedReward-7b" and cfg["model"]["convert"] == "llava_qwen"
    assert cfg["cold_start"]["model"] == str(tmp_path / "run" / "models" / "base")
    assert cfg["cold_start"]["budget"]["factor"] == 14 and cfg["cold_start"]["budget"]["max_total_pixels"] == 524288
    assert (cfg["grpo"]["num_generations"], cfg["grpo"]["beta"], cfg["grpo"]["learning_rate"]) == (8, 0.04, 1e-6)
    assert not (tmp_path / "run" / "models").exists()


def test_dry_run_of_the_demo_recipe_and_bad_recipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["pipeline", "--recipe", "tiny-cpu", "--out", str(tmp_path / "d"), "--dry-run"], capsys)[0] == 0
    # --seed reseeds training (every stage) but not the data, so runs share their test set
    seeded = json.loads(_run(["pipeline", "--recipe", "tiny-cpu", "--out", str(tmp_path / "s"), "--dry-run", "--seed", "3"], capsys)[1])
    assert {seeded[s]["seed"] for s in ("cold_start", "sample", "rs_sft", "grpo")} == {3}
    assert seeded["data"]["synthetic"]["seed"] == 0
    bad = tmp_path / "bad.yaml"
    scripted = {"kind": "scripted"}
    bad.write_text(yaml.safe_dump({"data": {"synthetic": {}}, "teacher": scripted, "grpo": {"num_generations": 8, "lerning_rate": 1}}))
    rc, _, err = _run(["pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run"], capsys)
    assert rc == 2 and "lerning_rate" in err
    bad.write_text(yaml.safe_dump({"data": {"synthetic": {}}, "teacher": scripted, "grpo": {"num_generations": 1}}))
    rc, _, err = _run(["pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run"], capsys)
    assert rc == 2 and "num_generations" in err
    bad.write_text(yaml.safe_dump({"data": {"synthetic": {}}}))
    rc, _, err = _run(["pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run"], capsys)
    assert rc == 2 and "base_url" in err
    rc, _, err = _run(["pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run"], capsys)
    files = {"cold_start": "c.jsonl", "train": "t.jsonl", "test": "h.jsonl"}
    bad.write_text(yaml.safe_dump({"data": files, "teacher": scripted, "base_style": "rationale"}))
    rc, _, err = _run(["pipeline", "--recipe", str(bad), "--out", str(tmp_path / "b"), "--dry-run"], capsys)
    assert rc == 2 and "synthetic" in err


def test_dry_run_checks_files_relative_to_the_recipe_and_the_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copied recipe finds its data, media and DeepSpeed config beside itself, from another directory."""
    project = tmp_path / "project"
    (project / "data" / "media").mkdir(parents=True)
    for name in ("cold.jsonl", "train.jsonl", "test.jsonl"):
        (project / "data" / name).write_text("")
    recipe = {"data": {"cold_start": "data/cold.jsonl", "train": "data/train.jsonl", "test": "data/test.jsonl",
                       "media_root": "data/media"},
              "model": {"base": "Org/some-judge"},
              "teacher": {"kind": "openai", "base_url": "https://example.invalid/v1", "api_key_env": "UR_TEST_KEY"},
              "grpo": {"deepspeed": "ds/zero3.json", "num_generations": 8, "per_device_train_batch_size": 8},
              "report_to": "tensorboard"}  # fmt: skip
    path = project / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("UR_TEST_KEY", raising=False)
    dry = ["pipeline", "--recipe", str(path), "--out", "run", "--dry-run"]
    rc, out, _ = _run(dry, capsys)
    assert rc == 1
    problems = json.loads(out)["preflight"]["problems"]
    assert problems == [f"grpo.deepspeed: no file {project / 'ds' / 'zero3.json'}", "teacher: the API key variable UR_TEST_KEY is not set"]
    (project / "ds").mkdir()
    (project / "ds" / "zero3.json").write_text((REPO / "configs" / "deepspeed" / "zero3_offload.json").read_text())
    monkeypatch.setenv("UR_TEST_KEY", "k")
    rc, out, err = _run(dry, capsys)
    assert rc == 0, err
    cfg = json.loads(out)
    assert cfg["cold_start"]["media_root"] == str(project / "data" / "media")
    assert cfg["grpo"]["report_to"] == ["tensorboard"] and cfg["cold_start"]["report_to"] == ["tensorboard"]
    assert cfg["preflight"]["downloads"][0]["model"] == "Org/some-judge"
    # an explicit flag beats the recipe
    cfg = json.loads(_run([*dry, "--report-to", "none"], capsys)[1])
    assert cfg["grpo"]["report_to"] == ["none"]


def test_recipe_trl_block_takes_any_trl_field_and_names_bad_keys(tmp_path: Path) -> None:
    base = {"data": {"synthetic": {}}, "teacher": {"kind": "scripted"}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**base, "cold_start": {"max_grad_norm": 0.5, "trl": {"optim": "adafactor", "learning_rate": 1e-4}},
                                    "grpo": {"trl": {"epsilon_high": 0.28}}}))  # fmt: skip
    res = resolve(load_recipe(str(path)), str(tmp_path / "run"))
    assert res["cold_start"].trl == {"max_grad_norm": 0.5, "optim": "adafactor"} and res["cold_start"].learning_rate == 1e-4
    args = res["cold_start"].trl_args()
    assert (args.max_grad_norm, args.optim, args.learning_rate) == (0.5, "adafactor", 1e-4)
    assert res["grpo"].trl_args().epsilon_high == 0.28
    for section, message in (({"grpo": {"trl": {"num_generation": 8}}}, "num_generation. \\(did you mean .num_generations."),
                             ({"cold_start": {"trl": {"output_dir": "x"}}}, "trl.output_dir is managed"),
                             ({"cold_start": {"max_grad_norm": 1.0, "trl": {"max_grad_norm": 0.5}}}, "both directly and in the trl block"),
                             ({"cold_start": {"num_generations": 8}}, "unknown setting 'num_generations'")):  # fmt: skip
        path.write_text(yaml.safe_dump({**base, **section}))
        with pytest.raises(ValueError, match=message):
            resolve(load_recipe(str(path)), str(tmp_path / "run"))


def test_shipped_configs_are_package_data(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(["configs"], capsys)
    assert rc == 0, err
    listed = json.loads(out)
    assert {Path(p).name for p in listed["deepspeed"]} == {"zero2.json", "zero3_offload.json"}
    assert all("unireward/configs" in p for kind in listed.values() for p in kind)
    path = Path(_run(["configs", "accelerate/zero2-8gpu.yaml"], capsys)[1].strip())
    assert path.is_file() and yaml.safe_load(path.read_text())["distributed_type"] == "DEEPSPEED"
    assert _run(["configs", "../cli.py"], capsys)[0] == 2
    build = REPO / "pyproject.toml"
    assert "configs/recipes/*.yaml" in build.read_text()  # shipped in the wheel


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
        # every held-out pair judged in both orders; accuracy is the mean of the two orders' accuracies
        pos = s["position"]
        assert s["judgments"] == 16 and pos["label_first_rate"] is not None
        assert s["accuracy"] == pytest.approx((pos["accuracy_forward"] + pos["accuracy_reverse"]) / 2, abs=1e-4)
    # the SFT sets were balanced before training: per task, each label in each slot equally (to one pair)
    cold = json.loads((out / "stages" / "cold_start.json").read_text())["order_balance"]
    assert cold["mode"] == "swap_half" and all(abs(c["label_1"] - c["label_2"]) <= 1 for c in cold["after"].values())
    assert "first slot %" in (out / "report.md").read_text()
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
