"""benchmarks/group_rewards.py still runs (tiny model, a few tokens): one Pref-GRPO group of 8 through
/v1/rewards and as 28 chat requests, identical rewards, 8 vs 56 images encoded. Timings not checked."""

from __future__ import annotations

import json
from pathlib import Path

from test_benchmark_scripts import run, written


def test_group_rewards_benchmark_runs(tmp_path: Path) -> None:
    proc = run("group_rewards.py", "--config", "tiny", "--max-new-tokens", "4", "--repeats", "1",
               "--out", str(tmp_path), "--json-out", str(tmp_path / "flat.json"), timeout=600)  # fmt: skip
    assert "group of 8 (28 pairs): speed-up x" in proc.stdout
    assert "rewards identical 1/1, every pair's text identical 1/1" in proc.stdout
    result = written(tmp_path, "group_rewards_tiny")
    assert result["values"]["vision_encoded_per_group"] == {"official": 56.0, "grouped": 8.0}
    assert json.loads((tmp_path / "flat.json").read_text())["identical_rewards"] == "1/1"
