"""SFT, rejection sampling and GRPO on the tiny model: weights move, images matter, runs resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unireward.data.schema import read_pairs
from unireward.demo.synthetic import SyntheticConfig, generate
from unireward.demo.teacher import synthetic_cot
from unireward.judge.request import load_pair_media
from unireward.media import VisionBudget
from unireward.protocol.tasks import THINK_TASKS
from unireward.rows import append_rows
from unireward.train.grpo import GRPOStageConfig, run_grpo
from unireward.train.sample import SampleConfig, sample
from unireward.train.sft import SFTStageConfig, latest_checkpoint, run_sft

FAMILY = "unireward-compact"


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    generate(root, SyntheticConfig(n_per_task={t.value: 4 for t in THINK_TASKS}, seed=11), "train")
    return root


@pytest.fixture(scope="module")
def sft_records(syn: Path) -> Path:
    from unireward.demo.synthetic import read_colour
    from unireward.protocol.templates import render_text

    recs = []
    for p in read_pairs(syn / "train.jsonl"):
        media = load_pair_media(p, syn, VisionBudget())
        seen = [[read_colour(f) for f in m] if isinstance(m, list) else [read_colour(m)] for m in media]
        text = render_text(p.task, p.prompt, () if p.task.is_generation else tuple(p.candidates), family=FAMILY)
        recs.append({"pair": p.to_dict(), "completion": synthetic_cot(p.task, text, seen)})
    path = syn / "sft.jsonl"
    append_rows(path, recs)
    return path


def _params(model_dir: str | Path) -> dict[str, torch.Tensor]:
    from unireward.models import load_model

    model, _, _ = load_model(str(model_dir))
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], vision: bool) -> bool:
    keys = [k for k in before if k.startswith(("model.visual", "visual")) == vision]
    return any(not torch.equal(before[k], after[k]) for k in keys)


def _sft_cfg(tiny_model: Path, records: Path, syn: Path, out: Path, **kw: object) -> SFTStageConfig:
    base = {"model": str(tiny_model), "train_file": str(records), "output_dir": str(out), "media_root": str(syn),
            "template_family": FAMILY, "learning_rate": 1e-2, "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1, "warmup_ratio": 0.0, "lr_scheduler_type": "constant",
            "max_steps": 3, "save_steps": 100, "logging_steps": 1}  # fmt: skip
    return SFTStageConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_sft_trains_language_model_and_keeps_the_vision_tower_frozen(tiny_model: Path, sft_records: Path, syn: Path, tmp_path: Path) -> None:
    before = _params(tiny_model)
    frozen = run_sft(_sft_cfg(tiny_model, sft_records, syn, tmp_path / "frozen"))
    after = _params(frozen)
    assert _changed(before, after, vision=False)
    assert not _changed(before, after, vision=True)
    trained = run_sft(_sft_cfg(tiny_model, sft_records, syn, tmp_path / "open", freeze_vision=False))
    assert _changed(before, _params(trained), vision=True)  # the images reach the loss


def test_sft_loss_depends_on_the_images(tiny_model: Path, sft_records: Path, syn: Path) -> None:
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from unireward.models import load_model
    from unireward.rows import read_rows
    from unireward.train.records import iter_rows

    model, processor, _ = load_model(str(tiny_model))
    rows = list(iter_rows(read_rows(sft_records)[:4], str(syn), VisionBudget(), True, family=FAMILY))
    collate = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    batch = collate([dict(r) for r in rows])
    blank = {**batch, "pixel_values": torch.zeros_like(batch["pixel_values"])}
    with torch.no_grad():
        assert not torch.isclose(model(**batch).loss, model(**blank).loss)
        assert (batch["labels"] != -100).sum() < batch["attention_mask"].sum()  # loss on completions only


class _Interrupt(Exception):
    pass


def test_killed_sft_resumes_from_its_checkpoint(tiny_model: Path, sft_records: Path, syn: Path, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            if state.global_step == 5:
                raise _Interrupt

    class FirstStep(TrainerCallback):
        first: int | None = None

        def on_step_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            if FirstStep.first is None:
                FirstStep.first = state.global_step

    cfg = _sft_cfg(tiny_model, sft_records, syn, tmp_path / "run", max_steps=6, save_steps=4)
    with pytest.raises(_Interrupt):
        run_sft(cfg, callbacks=[KillAt()])
    assert latest_checkpoint(tmp_path / "run", ).endswith("checkpoint-4")
    assert not (tmp_path / "run" / "final").exists()
    final = run_sft(cfg, callbacks=[FirstStep()])
    assert FirstStep.first == 4  # continued after the checkpoint instead of starting over
    summary = json.loads((tmp_path / "run" / "sft_summary.json").read_text())
    assert summary["steps"] == 6 and (final / "config.json").exists()
    assert run_sft(cfg) == final  # a finished stage is not trained again


def test_rejection_sampling_routes_pairs_and_resumes(tiny_model: Path, syn: Path, tmp_path: Path) -> None:
    cfg = SampleConfig(model=str(tiny_model), pairs=str(syn / "train.jsonl"), out_dir=str(tmp_path / "rs"),
                       media_root=str(syn), template_family=FAMILY, k=2, max_new_tokens=8, chunk_size=5)  # fmt: skip
    stats = sample(cfg)
    n = len(read_pairs(syn / "train.jsonl"))
    assert stats["pairs"] == n and stats["grpo_pairs"] + sum(t["judged_correct"] for t in stats["per_task"].values()) == n
    rows = [json.loads(x) for x in (tmp_path / "rs" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == n and all(len(r["texts"]) == 2 for r in rows)
    grpo = (tmp_path / "rs" / "grpo.jsonl").read_text().splitlines()
    assert len(grpo) == stats["grpo_pairs"]  # a random model judges (almost) everything wrongly
    again = sample(cfg)  # resumes: nothing re-sampled, same routing
    assert again["pairs"] == n
    assert len((tmp_path / "rs" / "samples.jsonl").read_text().splitlines()) == n


def _below_half(completions, completion_ids, **kwargs):  # type: ignore[no-untyped-def]
    """A reward that varies on a random model: the share of sampled tokens in the lower half of the vocabulary."""
    return [sum(t < 512 for t in ids) / max(len(ids), 1) for ids in completion_ids]


def _grpo_cfg(tiny_model: Path, syn: Path, tmp_path: Path, name: str, **kw: object) -> GRPOStageConfig:
    records = tmp_path / "grpo.jsonl"
    if not records.exists():
        append_rows(records, [{"pair": p.to_dict()} for p in read_pairs(syn / "train.jsonl")])
    base = {"model": str(tiny_model), "train_file": str(records), "output_dir": str(tmp_path / name),
            "media_root": str(syn), "template_family": FAMILY, "num_generations": 4,
            "per_device_train_batch_size": 8, "max_completion_length": 12, "learning_rate": 3e-3, "beta": 0.0,
            "max_steps": 2, "save_steps": 100}  # fmt: skip
    return GRPOStageConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_grpo_with_varying_rewards_raises_the_mean_reward(tiny_model: Path, syn: Path, tmp_path: Path) -> None:
    cfg = _grpo_cfg(tiny_model, syn, tmp_path, "learn", max_steps=16, learning_rate=2e-2, seed=1)
    run_grpo(cfg, reward_funcs=[_below_half])
    hist = json.loads((tmp_path / "learn" / "grpo_summary.json").read_text())["log_history"]
    rewards = [h["reward"] for h in hist if "reward" in h]
    assert len(rewards) == 16
    assert sum(rewards[-4:]) / 4 > sum(rewards[:4]) / 4 + 0.1


def test_grpo_updates_reach_the_vision_tower(tiny_model: Path, syn: Path, tmp_path: Path) -> None:
    before = _params(tiny_model)
    final = run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "vision", freeze_vision=False), reward_funcs=[_below_half])
    after = _params(final)
    assert _changed(before, after, vision=False) and _changed(before, after, vision=True)
    summary = json.loads((tmp_path / "vision" / "grpo_summary.json").read_text())
    assert summary["mean_frac_reward_zero_std"] is not None


def test_grpo_paper_rewards_run_on_all_tasks(tiny_model: Path, syn: Path, tmp_path: Path) -> None:
    final = run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "paper", rewards=("format", "accuracy", "strict_format", "consistency")))
    summary = json.loads((tmp_path / "paper" / "grpo_summary.json").read_text())
    keys = {k for h in summary["log_history"] for k in h}
    assert {"rewards/format_reward/mean", "rewards/accuracy_reward/mean", "frac_reward_zero_std"} <= keys
    assert (final / "config.json").exists()


def _scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar series in the TensorBoard event files under ``run_dir``, read back with TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(run_dir.rglob("events.out.tfevents.*"))
    assert files, f"no event files under {run_dir}"
    out: dict[str, list[float]] = {}
    for f in files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def test_tensorboard_tracks_sft_and_grpo_and_a_stuck_grpo_warns(
    tiny_model: Path, sft_records: Path, syn: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    run_sft(_sft_cfg(tiny_model, sft_records, syn, tmp_path / "sft", report_to="tensorboard", max_steps=3))
    sft = _scalars(tmp_path / "sft" / "runs")
    assert len(sft["train/loss"]) == 3 and sft["train/loss"][-1] < sft["train/loss"][0]
    # the paper's rewards on a random model: every completion scores 0, so every group has one reward
    with caplog.at_level(logging.WARNING, logger="unireward.train.callbacks"):
        run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "grpo", report_to="tensorboard", beta=0.04, max_steps=3,
                           zero_std_patience=2))  # fmt: skip
    grpo = _scalars(tmp_path / "grpo" / "runs")
    assert {"train/loss", "train/reward", "train/kl", "train/frac_reward_zero_std"} <= set(grpo)
    assert grpo["train/frac_reward_zero_std"] == [1.0, 1.0, 1.0] and len(grpo["train/kl"]) == 3
    assert "frac_reward_zero_std was 1.0 for 2 logged steps" in caplog.text
    summary = json.loads((tmp_path / "grpo" / "grpo_summary.json").read_text())
    assert summary["zero_std_warning"].startswith("frac_reward_zero_std was 1.0")


def test_grpo_reads_the_canonical_pair_schema(tiny_model: Path, syn: Path, tmp_path: Path) -> None:
    """The pairs file every other stage takes (no ``{"pair": ...}`` wrapper) trains as it is."""
    canonical = syn / "train.jsonl"
    assert "pair" not in json.loads(canonical.read_text().splitlines()[0])
    final = run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "canon", train_file=str(canonical), max_steps=1),
                     reward_funcs=[_below_half])  # fmt: skip
    summary = json.loads((tmp_path / "canon" / "grpo_summary.json").read_text())
    assert (final / "config.json").exists() and summary["steps"] == 1
    assert summary["prompts"] == len(read_pairs(canonical)) and not summary["load_errors"]


def test_grpo_never_reports_success_after_zero_steps(tiny_model: Path, syn: Path, tmp_path: Path) -> None:
    """One prompt where a generation batch takes two (8 completions / 4 per prompt): TRL would train 0
    steps. The stage refuses before loading the model, the command exits non-zero, no final/ appears;
    rows that cannot be used are named with their reason."""
    from unireward.cli import main

    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"pair": read_pairs(syn / "train.jsonl")[0].to_dict()}) + "\n")
    with pytest.raises(ValueError, match=r"1 usable GRPO prompts, fewer than the 2 .* 0 steps"):
        run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "short", train_file=str(one)), reward_funcs=[_below_half])
    rc = main(["grpo", str(one), "--model", str(tiny_model), "--out", str(tmp_path / "cli"), "--media-root", str(syn),
               "--num-generations", "4", "--per-device-train-batch-size", "8", "--max-steps", "1"])  # fmt: skip
    assert rc != 0 and not (tmp_path / "cli" / "final").exists() and not (tmp_path / "short" / "final").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"caption": "x", "images": ["a.png"]}) + "\n")
    with pytest.raises(ValueError, match="missing"):
        run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "bad", train_file=str(bad)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="holds no rows"):
        run_grpo(_grpo_cfg(tiny_model, syn, tmp_path, "empty", train_file=str(empty)))


def test_grpo_config_validation() -> None:
    with pytest.raises(ValueError, match="multiple of num_generations"):
        GRPOStageConfig(model="m", train_file="f", output_dir="o", num_generations=8, per_device_train_batch_size=6)
    with pytest.raises(ValueError, match="unknown reward"):
        GRPOStageConfig(model="m", train_file="f", output_dir="o", rewards=("format", "vibes"))


def _accelerate(args: list[str], cwd: Path) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    launcher = Path(sys.executable).with_name("accelerate")
    cmd = [str(launcher), "launch", "--config_file", str(repo / "configs" / "accelerate" / "cpu-2proc.yaml"),
           "--main_process_port", "0", "-m", "unireward.cli", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_sft_and_grpo_run_under_accelerate_with_two_processes(tiny_model: Path, sft_records: Path, syn: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "sft.yaml"
    cfg.write_text("per_device_train_batch_size: 2\ngradient_accumulation_steps: 1\nlearning_rate: 0.001\nlogging_steps: 1\n")
    _accelerate(["sft", str(sft_records), "--model", str(tiny_model), "--out", str(tmp_path / "sft"),
                 "--media-root", str(syn), "--template-family", FAMILY, "--max-steps", "2", "--config", str(cfg)], tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "sft" / "sft_summary.json").read_text())
    assert summary["steps"] == 2 and (tmp_path / "sft" / "final" / "config.json").exists()

    records = tmp_path / "grpo.jsonl"
    append_rows(records, [{"pair": p.to_dict()} for p in read_pairs(syn / "train.jsonl")])
    gcfg = tmp_path / "grpo.yaml"
    gcfg.write_text("num_generations: 4\nper_device_train_batch_size: 4\nmax_completion_length: 8\nbeta: 0.04\n")
    _accelerate(["grpo", str(records), "--model", str(tiny_model), "--out", str(tmp_path / "grpo"), "--media-root", str(syn),
                 "--template-family", FAMILY, "--max-steps", "2", "--config", str(gcfg)], tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "grpo" / "grpo_summary.json").read_text())
    assert summary["steps"] == 2 and (tmp_path / "grpo" / "final" / "config.json").exists()


def test_lora_sft_saves_a_merged_model_that_loads_without_peft(tiny_model: Path, sft_records: Path, syn: Path, tmp_path: Path) -> None:
    from unireward.train.sft import LoraSettings

    before = _params(tiny_model)
    final = run_sft(_sft_cfg(tiny_model, sft_records, syn, tmp_path / "lora", lora=LoraSettings(r=4, alpha=8, dropout=0.0)))
    after = _params(final)  # a plain checkpoint: the adapters were merged on save
    assert set(after) == set(before)
    assert _changed(before, after, vision=False) and not _changed(before, after, vision=True)


def test_lazy_dataset_gives_the_eager_rows_and_batches(tiny_model: Path, sft_records: Path, syn: Path, tmp_path: Path, caplog) -> None:
    """Streaming changes where rows live, not what the trainer sees: same rows, same pixels, same batch tensors."""
    import logging

    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from unireward.models import load_model
    from unireward.rows import read_rows
    from unireward.train.records import iter_rows, to_dataset
    from unireward.train.stream import lazy_dataset

    budget = VisionBudget()
    eager = to_dataset(list(iter_rows(read_rows(sft_records), str(syn), budget, True, family=FAMILY)))
    errors: list[str] = []
    lazy = lazy_dataset(sft_records, tmp_path / "rows.arrow", "sft", str(syn), budget, FAMILY, errors)
    assert len(lazy) == len(eager) and errors == []
    idx = [0, 3, 5, 1]
    a, b = [eager[i] for i in idx], lazy[idx]
    b = [{k: b[k][j] for k in b} for j in range(len(idx))]
    for x, y in zip(a, b, strict=True):
        assert x["prompt"] == y["prompt"] and x["completion"] == y["completion"]
        assert [im.tobytes() for im in x["images"]] == [im.tobytes() for im in y["images"]]
    _, processor, _ = load_model(str(tiny_model))
    collate = DataCollatorForVisionLanguageModeling(processor=processor, completion_only_loss=True)
    ba, bb = collate(a), collate(b)
    assert set(ba) == set(bb) and all(torch.equal(ba[k], bb[k]) for k in ba)

    # a missing file is left out when indexing, named; a file that fails to decode is dropped from its batch
    rows = [json.loads(x) for x in sft_records.read_text().splitlines()]
    missing = json.loads(json.dumps(rows[0]))
    missing["pair"]["id"], missing["pair"]["candidates"] = "gone", ["nope.png", "nope2.png"]
    broken_file = syn / "broken.png"
    broken_file.write_bytes(b"not a png")
    broken = json.loads(json.dumps(rows[1]))
    broken["pair"]["id"], broken["pair"]["candidates"] = "broken", ["broken.png", "broken.png"]
    path = tmp_path / "mixed.jsonl"
    append_rows(path, [missing, broken, rows[2]])
    errors = []
    lazy = lazy_dataset(path, tmp_path / "mixed.arrow", "sft", str(syn), budget, FAMILY, errors)
    assert len(lazy) == 2 and len(errors) == 1 and "nope.png" in errors[0]
    with caplog.at_level(logging.WARNING, logger="unireward.train.stream"):
        batch = lazy[[0, 1]]
    assert len(batch["prompt"]) == 1 and "broken" in caplog.text
