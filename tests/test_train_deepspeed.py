"""The shipped DeepSpeed configs, for real: ZeRO-2 and ZeRO-3 with CPU offload, 2 CPU processes through
``accelerate launch`` with the shipped accelerate configs, for SFT and for GRPO.

The accelerate configs are written for 8 GPUs; the launch line overrides the process count and mixed
precision, and ``--use-cpu`` is the one flag that differs from a GPU run (without it accelerate counts
1 process while DeepSpeed runs 2). DeepSpeed's ops compile once into ``TORCH_EXTENSIONS_DIR``, kept
between test sessions, so a launch costs its imports and a few steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from unireward.data.schema import read_pairs
from unireward.demo.synthetic import SyntheticConfig, generate
from unireward.protocol.tasks import THINK_TASKS
from unireward.rows import append_rows
from unireward.train.recipe import CONFIGS

pytest.importorskip("deepspeed", reason="deepspeed is in the dev dependencies: pip install -e '.[dev]'")

FAMILY = "unireward-compact"
EXTENSIONS = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path(tempfile.gettempdir()) / "unireward-test-cache" / "torch_extensions")

# A GRPO run needs rewards that vary on a random model (the paper's are all 0 there): the share of
# sampled tokens in the lower half of the vocabulary. The driver is the stage's Python API under launch.
GRPO_DRIVER = '''
import json, sys
from unireward.train.grpo import GRPOStageConfig, run_grpo
from unireward.train.cli import _end_process_group

def below_half(completions, completion_ids, **kwargs):
    return [sum(t < 512 for t in ids) / max(len(ids), 1) for ids in completion_ids]

try:
    run_grpo(GRPOStageConfig(**json.loads(sys.argv[1])), reward_funcs=[below_half])
finally:
    _end_process_group()
'''


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    generate(root / "syn", SyntheticConfig(n_per_task={t.value: 2 for t in THINK_TASKS}, seed=11), "train")
    pairs = read_pairs(root / "syn" / "train.jsonl")
    append_rows(root / "sft.jsonl", [{"pair": p.to_dict(), "completion": f"<think>{p.prompt}</think><answer>{p.label_text}</answer>"} for p in pairs])
    append_rows(root / "grpo.jsonl", [{"pair": p.to_dict()} for p in pairs])
    (root / "grpo_driver.py").write_text(GRPO_DRIVER)
    return root


def _launch(accelerate_cfg: str, deepspeed_cfg: str, argv: list[str], cwd: Path) -> None:
    EXTENSIONS.mkdir(parents=True, exist_ok=True)
    launcher = Path(sys.executable).with_name("accelerate")
    cmd = [str(launcher), "launch", "--config_file", str(CONFIGS / "accelerate" / accelerate_cfg), "--num_processes", "2",
           "--mixed_precision", "no", "--deepspeed_config_file", str(CONFIGS / "deepspeed" / deepspeed_cfg),
           "--main_process_port", "0", *argv]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TORCH_EXTENSIONS_DIR": str(EXTENSIONS)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize(
    ("accelerate_cfg", "deepspeed_cfg", "stage", "optimizer"),
    [("zero2-8gpu.yaml", "zero2.json", 2, "AdamW"), ("zero3-offload-8gpu.yaml", "zero3_offload.json", 3, "DeepSpeedCPUAdam")],
)
def test_deepspeed_configs_train_sft_and_grpo_on_two_processes(
    tiny_model: Path, data: Path, tmp_path: Path, accelerate_cfg: str, deepspeed_cfg: str, stage: int, optimizer: str
) -> None:
    sft_out = tmp_path / "sft"
    _launch(accelerate_cfg, deepspeed_cfg, ["-m", "unireward.cli", "sft", str(data / "sft.jsonl"), "--model", str(tiny_model),
            "--out", str(sft_out), "--media-root", str(data / "syn"), "--template-family", FAMILY, "--max-steps", "3",
            "--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "1", "--learning-rate", "0.01",
            "--warmup-ratio", "0", "--lr-scheduler-type", "constant", "--logging-steps", "1", "--use-cpu"], tmp_path)  # fmt: skip
    summary = json.loads((sft_out / "sft_summary.json").read_text())
    launch = summary["launch"]
    assert (launch["distributed_type"], launch["num_processes"], launch["zero_stage"]) == ("DEEPSPEED", 2, stage)
    assert launch["optimizer"] == optimizer  # CPU Adam really steps under optimizer offload
    losses = [h["loss"] for h in summary["log_history"] if "loss" in h]
    assert len(losses) == 3 and losses[-1] < losses[0]

    grpo_out = tmp_path / "grpo"
    cfg = {"model": str(sft_out / "final"), "train_file": str(data / "grpo.jsonl"), "output_dir": str(grpo_out),
           "media_root": str(data / "syn"), "template_family": FAMILY, "num_generations": 4, "per_device_train_batch_size": 4,
           "max_completion_length": 8, "learning_rate": 0.01, "beta": 0.04, "max_steps": 2, "use_cpu": True,
           "freeze_vision": False, "logging_steps": 1}  # fmt: skip
    _launch(accelerate_cfg, deepspeed_cfg, [str(data / "grpo_driver.py"), json.dumps(cfg)], tmp_path)
    summary = json.loads((grpo_out / "grpo_summary.json").read_text())
    assert (summary["launch"]["distributed_type"], summary["launch"]["zero_stage"]) == ("DEEPSPEED", stage)
    assert summary["launch"]["optimizer"] == optimizer
    kl = [h["kl"] for h in summary["log_history"] if "kl" in h]
    assert len(kl) == 2 and kl[0] == 0 and kl[-1] > 0  # the policy left its reference after the first update

    from unireward.judge import Judge

    judge = Judge.from_pretrained(grpo_out / "final", template_family=FAMILY, max_new_tokens=8, video_as="frames")
    pair = read_pairs(data / "syn" / "train.jsonl")[0]
    (judgment,) = judge.compare_batch([pair], media_root=data / "syn")
    assert isinstance(judgment.text, str) and judgment.text
