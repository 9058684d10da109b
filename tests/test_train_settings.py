"""Trainer settings: TRL fields passed through, one precedence rule, TRL's batch rule, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from unireward.cli import build_parser, main
from unireward.train.cli import _stage_values
from unireward.train.grpo import GRPOStageConfig
from unireward.train.sft import SFTStageConfig


def _values(argv: list[str], cls: type, kind: str) -> dict:
    args = build_parser().parse_args(argv)
    fixed = {"rewards": tuple(args.rewards.split(","))} if kind == "grpo" and args.rewards else {}
    return _stage_values(args, cls, kind, **fixed)


def test_precedence_is_flags_then_config_file_then_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "grpo.yaml"
    cfg.write_text(yaml.safe_dump({"learning_rate": 0.1, "rewards": ["format"], "beta": 0.5, "max_grad_norm": 0.9,
                                   "trl": {"epsilon": 0.3}}))  # fmt: skip
    base = ["grpo", "r.jsonl", "--model", "m", "--out", "o", "--config", str(cfg)]
    v = _values([*base, "--learning-rate", "0.2", "--rewards", "format,accuracy", "--trl", "max_grad_norm=0.4"], GRPOStageConfig, "grpo")
    assert v["learning_rate"] == 0.2 and v["rewards"] == ("format", "accuracy")  # explicit flags win
    assert v["beta"] == 0.5 and v["trl"] == {"max_grad_norm": 0.4, "epsilon": 0.3}  # the file beats the defaults
    g = GRPOStageConfig(model="m", train_file="r.jsonl", output_dir=str(tmp_path / "o"), **v)
    args = g.trl_args()
    assert (args.learning_rate, args.beta, args.max_grad_norm, args.epsilon) == (0.2, 0.5, 0.4, 0.3)
    v = _values([*base], GRPOStageConfig, "grpo")
    assert v["rewards"] == ["format"] and v["learning_rate"] == 0.1  # no --rewards flag: the file's value stands


def test_trl_named_flags_reach_trl(tmp_path: Path) -> None:
    v = _values(["sft", "r.jsonl", "--model", "m", "--out", "o", "--num-train-epochs", "2", "--per-device-train-batch-size", "3",
                 "--report-to", "tensorboard", "--use-cpu", "--no-bf16", "--trl", "optim=adafactor"], SFTStageConfig, "sft")  # fmt: skip
    cfg = SFTStageConfig(model="m", train_file="r.jsonl", output_dir=str(tmp_path / "o"), **v)
    args = cfg.trl_args()
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.report_to, args.use_cpu, args.optim) == (
        2.0, 3, ["tensorboard"], True, "adafactor")  # fmt: skip


def test_unknown_or_managed_settings_are_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("lerning_rate: 0.1\n")
    rc = main(["sft", "r.jsonl", "--model", "m", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "'lerning_rate'" in err and "did you mean 'learning_rate'" in err and "Traceback" not in err
    rc = main(["grpo", "r.jsonl", "--model", "m", "--out", str(tmp_path / "o"), "--trl", "output_dir=/elsewhere"])
    assert rc == 2 and "output_dir is managed by the stage" in capsys.readouterr().err
    with pytest.raises(ValueError, match="report_to: unknown tracker"):
        SFTStageConfig(model="m", train_file="f", output_dir="o", report_to="tensorbored")
    with pytest.raises(ValueError, match="rejected by TRL"):  # a value TRL itself refuses, named as ours
        SFTStageConfig(model="m", train_file="f", output_dir="o", trl={"lr_scheduler_type": "sideways"}).trl_args()


def test_grpo_batch_rule_counts_processes_as_trl_does(monkeypatch: pytest.MonkeyPatch) -> None:
    paper = {"model": "m", "train_file": "f", "output_dir": "o", "num_generations": 8, "per_device_train_batch_size": 1,
             "gradient_accumulation_steps": 1}  # fmt: skip
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ValueError, match=r"processes \(1\)"):
        GRPOStageConfig(**paper)
    monkeypatch.setenv("WORLD_SIZE", "8")  # the paper: batch 1 x G=8, one completion per GPU
    cfg = GRPOStageConfig(**paper)
    cfg.check_batch(64)
    with pytest.raises(ValueError, match="not a multiple of num_generations"):
        cfg.check_batch(4)
    monkeypatch.setenv("WORLD_SIZE", "2")  # TRL's steps_per_generation in the trl block counts too
    GRPOStageConfig(**{**paper, "trl": {"steps_per_generation": 4}})


def test_gradient_checkpointing_does_not_use_the_deprecated_name(tmp_path: Path) -> None:
    cfg = SFTStageConfig(model="m", train_file="f", output_dir=str(tmp_path), gradient_checkpointing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        args = cfg.trl_args()
    assert args.gradient_checkpointing is True
