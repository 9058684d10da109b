"""The benchmark scripts still run (tiny sizes; the numbers they print are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_convert_llava_memory_benchmark_runs(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "convert_llava_memory.py"), "--hidden", "64", "--layers", "1",
           "--shards", "2", "--vision-layers", "1", "--keep", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["same_tensors"] is True and out["shards"] == 2
    assert out["ours"]["peak_rss_gb"] > 0 and out["load_everything"]["peak_rss_gb"] > 0
