"""The server load benchmark runs end to end at tiny sizes (its numbers are not checked here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_serve_load_benchmark_runs(tiny_model: Path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "serve_load.py"), "--model", str(tiny_model), "--batch-size", "4",
           "--concurrency", "1", "2", "--requests", "1", "--max-new-tokens", "2", "--image-size", "56",
           "--heavy-images", "2", "--heavy-size", "1024", "--repeats", "2", "--group-size", "3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    for side in ("batched", "batch_size_1"):
        clients = out[side]["clients"]
        # pairs: one request per client; group: every pair of a client's 3 images (3 requests each)
        assert [(c["pattern"], c["pairs"]) for c in clients] == [("pairs", 1), ("pairs", 2), ("group", 3), ("group", 6)]
        assert all(len(c["pairs_per_s_runs"]) == 2 for c in clients)
        assert out[side]["health_during_heavy"]["heavy_status"] == 200
        assert out[side]["peak_rss_growth_mb"] >= 0
        # each group image is encoded once and reused from the cache in its other pair
        assert out[side]["counters"]["media_cache_hits_total"] > 0
    assert {p: set(v) for p, v in out["speedup_pairs_per_s"].items()} == {"pairs": {"1", "2"}, "group": {"1", "2"}}
